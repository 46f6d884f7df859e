//! `headroom watch` as a user runs it on a machine without a GPU: a usage error without a
//! command, a clear error for bad --plan arguments, and exit 3 without NVML before the command
//! is ever started.

use assert_cmd::Command;
use predicates::prelude::*;

fn no_gpu_here() -> bool {
    // When a driver is present, the exit-3 test does not apply.
    !std::path::Path::new("/dev/nvidiactl").exists()
}

#[test]
fn watch_without_a_command_is_a_usage_error() {
    Command::cargo_bin("headroom")
        .unwrap()
        .args(["watch", "--interval-ms", "50"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("CMD"));
}

#[test]
fn watch_without_nvml_exits_3_and_never_starts_the_command() {
    if !no_gpu_here() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    Command::cargo_bin("headroom")
        .unwrap()
        .args(["watch", "--", "touch"])
        .arg(&marker)
        .assert()
        .code(3)
        .stderr(predicate::str::contains("NVML").and(predicate::str::contains("panicked").not()))
        .stderr(predicate::function(|s: &str| s.trim_end().lines().count() == 1));
    assert!(!marker.exists(), "the command ran although NVML is missing");
}

#[test]
fn watch_with_bad_plan_arguments_fails_before_starting_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    Command::cargo_bin("headroom")
        .unwrap()
        .args(["watch", "--plan", "no-such-model --gpu h100-sxm", "--", "touch"])
        .arg(&marker)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--plan \"no-such-model --gpu h100-sxm\""));
    assert!(!marker.exists());
}
