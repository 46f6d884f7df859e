//! GPU commands on a machine without a usable GPU stack (CI, this repository's dev machines):
//! exit 3 with a one-line message naming what is missing, never a panic.

use assert_cmd::Command;
use predicates::prelude::*;

fn no_gpu_here() -> bool {
    // When a driver is present, these tests do not apply.
    !std::path::Path::new("/dev/nvidiactl").exists()
}

#[test]
fn bench_without_a_driver_exits_3_with_a_hint() {
    if !no_gpu_here() {
        return;
    }
    Command::cargo_bin("headroom")
        .unwrap()
        .args(["bench", "--quick"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("error: ").and(predicate::str::contains("panicked").not()))
        .stderr(predicate::str::is_match("(?i)(driver|nvml|nvrtc|cublas)").unwrap())
        .stderr(predicate::function(|s: &str| s.trim_end().lines().count() == 1));
}

#[test]
fn gpus_local_without_a_driver_exits_3() {
    if !no_gpu_here() {
        return;
    }
    Command::cargo_bin("headroom")
        .unwrap()
        .args(["gpus", "--local"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("NVML").and(predicate::str::contains("panicked").not()));
}

#[test]
fn gpus_without_local_still_lists_the_catalog() {
    Command::cargo_bin("headroom")
        .unwrap()
        .args(["gpus"])
        .assert()
        .success()
        .stdout(predicate::str::contains("h100-sxm"));
}

#[test]
fn validate_without_a_driver_exits_3_after_checking_its_input() {
    if !no_gpu_here() {
        return;
    }
    Command::cargo_bin("headroom")
        .unwrap()
        .args(["validate", "llama-2-7b", "--weights", "awq"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("driver").and(predicate::str::contains("panicked").not()))
        .stderr(predicate::function(|s: &str| s.trim_end().lines().count() == 1));
}

/// Input the engine cannot run is an input error (exit 1), GPU or not.
#[test]
fn validate_refuses_what_its_engine_cannot_run_with_exit_1() {
    for args in [["validate", "mixtral-8x7b", "--weights", "bf16"], ["validate", "llama-2-7b", "--weights", "q4_k_m"]] {
        Command::cargo_bin("headroom")
            .unwrap()
            .args(args)
            .assert()
            .code(1)
            .stderr(predicate::str::contains("validate").and(predicate::str::contains("panicked").not()))
            .stderr(predicate::function(|s: &str| s.trim_end().lines().count() == 1));
    }
}
