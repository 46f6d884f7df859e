//! A Hugging Face repo id (`meta-llama/Llama-2-7b-hf`, optionally `@revision`) as the MODEL
//! argument. headroom reads no network: the repo's snapshot in the local Hub cache, where
//! `hf download` or transformers put it, is planned as its directory would be (config.json, and
//! the safetensors or GGUF headers when the weights are there too); otherwise the built-in model
//! published under that repo.
//!
//! The cache's layout (huggingface_hub's "Manage your cache" guide):
//! `<cache>/models--meta-llama--Llama-2-7b-hf/refs/main` holds the commit that `main` pointed at
//! when it was downloaded, and `snapshots/<commit>/` holds that revision's files.

use anyhow::bail;
use std::path::{Path, PathBuf};

/// `owner/name[@revision]`, as the Hub spells repo ids.
#[derive(Debug, PartialEq)]
pub struct RepoId<'a> {
    pub owner: &'a str,
    pub name: &'a str,
    pub revision: Option<&'a str>,
}

impl<'a> RepoId<'a> {
    /// Recognises a repo id: two non-empty parts of letters, digits, `-`, `_` and `.`, neither
    /// starting with `.` (so `./model` and `../x` stay paths), not ending like a model file
    /// (`models/config.json`, `dir/model.gguf` are mistyped paths).
    pub fn parse(input: &'a str) -> Option<Self> {
        if [".json", ".gguf", ".safetensors"].iter().any(|e| input.ends_with(e)) {
            return None;
        }
        let (repo, revision) = match input.split_once('@') {
            Some((repo, rev)) if !rev.is_empty() && !rev.contains(['/', '\\']) => (repo, Some(rev)),
            Some(_) => return None,
            None => (input, None),
        };
        let (owner, name) = repo.split_once('/')?;
        let part_ok = |p: &str| {
            !p.is_empty() && !p.starts_with('.') && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        (part_ok(owner) && part_ok(name)).then_some(RepoId { owner, name, revision })
    }

    /// `owner/name` without the revision.
    pub fn repo(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    fn folder(&self) -> String {
        format!("models--{}--{}", self.owner, self.name)
    }
}

/// Where huggingface_hub keeps downloaded repos: `HF_HUB_CACHE`, the legacy
/// `HUGGINGFACE_HUB_CACHE`, `HF_HOME/hub`, `XDG_CACHE_HOME/huggingface/hub`, else
/// `~/.cache/huggingface/hub` (huggingface_hub's environment-variable reference).
pub fn cache_dir(env: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let set = |key: &str| env(key).filter(|v| !v.is_empty()).map(PathBuf::from);
    set("HF_HUB_CACHE")
        .or_else(|| set("HUGGINGFACE_HUB_CACHE"))
        .or_else(|| set("HF_HOME").map(|h| h.join("hub")))
        .or_else(|| set("XDG_CACHE_HOME").map(|x| x.join("huggingface").join("hub")))
        .or_else(|| {
            set("HOME").or_else(|| set("USERPROFILE")).map(|h| h.join(".cache").join("huggingface").join("hub"))
        })
}

/// The snapshot directory of `repo` in `cache`, or `None` when the repo was never downloaded.
/// Without a revision: the commit `refs/main` names, else the only (or most recently written)
/// snapshot. With one: the commit a branch or tag of that name points at, or a commit hash (or
/// its prefix) among the snapshots; a revision not downloaded is an error, since planning another
/// one would answer a different question.
pub fn find_snapshot(cache: &Path, repo: &RepoId) -> anyhow::Result<Option<PathBuf>> {
    // The Hub's own repo names keep their case; a repo id typed in another case still finds them.
    let root = std::fs::read_dir(cache)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().eq_ignore_ascii_case(&repo.folder())))
        .unwrap_or_else(|| cache.join(repo.folder()));
    let snapshots = root.join("snapshots");
    let commits = snapshot_commits(&snapshots);
    if commits.is_empty() {
        return Ok(None);
    }
    let by_ref = |name: &str| {
        let commit = std::fs::read_to_string(root.join("refs").join(name)).ok()?;
        let dir = snapshots.join(commit.trim());
        dir.is_dir().then_some(dir)
    };
    match repo.revision {
        Some(rev) => {
            if let Some(dir) = by_ref(rev) {
                return Ok(Some(dir));
            }
            let matching: Vec<&(String, _)> = commits.iter().filter(|(c, _)| c.starts_with(rev)).collect();
            match matching.as_slice() {
                [(commit, _)] => Ok(Some(snapshots.join(commit))),
                [] => bail!(
                    "{}@{rev}: that revision is not in the Hugging Face cache ({}), which holds {}; download it (hf download {} --revision {rev} config.json) or name a cached one",
                    repo.repo(),
                    root.display(),
                    commits.iter().map(|(c, _)| short(c)).collect::<Vec<_>>().join(", "),
                    repo.repo()
                ),
                _ => bail!("{}@{rev}: several cached commits start with '{rev}'; give more of the hash", repo.repo()),
            }
        }
        None => Ok(by_ref("main").or_else(|| {
            let newest = commits.iter().max_by_key(|(_, modified)| *modified)?;
            Some(snapshots.join(&newest.0))
        })),
    }
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// The commit folders under `snapshots/` with when each was last written.
fn snapshot_commits(snapshots: &Path) -> Vec<(String, std::time::SystemTime)> {
    let Ok(entries) = std::fs::read_dir(snapshots) else { return Vec::new() };
    entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| {
            let modified = e.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH);
            (e.file_name().to_string_lossy().into_owned(), modified)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids_are_told_from_paths() {
        let id = RepoId::parse("meta-llama/Llama-2-7b-hf").unwrap();
        assert_eq!((id.owner, id.name, id.revision), ("meta-llama", "Llama-2-7b-hf", None));
        let pinned = RepoId::parse("Qwen/Qwen2.5-7B@a09a354").unwrap();
        assert_eq!((pinned.repo().as_str(), pinned.revision), ("Qwen/Qwen2.5-7B", Some("a09a354")));
        let mistyped = ["models/config.json", "dir/model.gguf", "d/m.safetensors"];
        for path in ["./model", "../x/y", "/abs/model", "a/b/c", "owner/", "/name", "a/b@", "a/b@x/y", "a b/c"]
            .iter()
            .chain(&mistyped)
        {
            assert_eq!(RepoId::parse(path), None, "{path}");
        }
    }

    #[test]
    fn cache_dir_follows_huggingface_hubs_precedence() {
        fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
            move |k| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| v.to_string())
        }
        const ALL: &[(&str, &str)] =
            &[("HF_HUB_CACHE", "/a"), ("HF_HOME", "/b"), ("XDG_CACHE_HOME", "/c"), ("HOME", "/d")];
        assert_eq!(cache_dir(env(ALL)), Some(PathBuf::from("/a")));
        assert_eq!(cache_dir(env(&ALL[1..])), Some(PathBuf::from("/b/hub")));
        assert_eq!(cache_dir(env(&ALL[2..])), Some(PathBuf::from("/c/huggingface/hub")));
        assert_eq!(cache_dir(env(&ALL[3..])), Some(PathBuf::from("/d/.cache/huggingface/hub")));
        assert_eq!(
            cache_dir(env(&[("HF_HUB_CACHE", ""), ("HOME", "/d")])),
            Some(PathBuf::from("/d/.cache/huggingface/hub"))
        );
        assert_eq!(cache_dir(env(&[])), None);
    }

    /// A cache with two snapshots of one repo, `main` pointing at the older one.
    fn cache_with_two_snapshots() -> tempfile::TempDir {
        let cache = tempfile::tempdir().unwrap();
        let root = cache.path().join("models--org--tiny");
        for commit in ["aaaa1111", "bbbb2222"] {
            std::fs::create_dir_all(root.join("snapshots").join(commit)).unwrap();
        }
        std::fs::create_dir_all(root.join("refs")).unwrap();
        std::fs::write(root.join("refs/main"), "aaaa1111\n").unwrap();
        std::fs::write(root.join("refs/v2"), "bbbb2222").unwrap();
        cache
    }

    #[test]
    fn snapshots_are_found_by_main_branch_tag_and_hash() {
        let cache = cache_with_two_snapshots();
        let find = |input: &str| find_snapshot(cache.path(), &RepoId::parse(input).unwrap());
        let snapshot = |commit: &str| Some(cache.path().join("models--org--tiny/snapshots").join(commit));
        assert_eq!(find("org/tiny").unwrap(), snapshot("aaaa1111"));
        assert_eq!(find("org/tiny@v2").unwrap(), snapshot("bbbb2222"));
        assert_eq!(find("org/tiny@bbbb").unwrap(), snapshot("bbbb2222"));
        assert_eq!(find("org/other").unwrap(), None);
        let missing = find("org/tiny@cccc").unwrap_err().to_string();
        assert!(
            missing.contains("not in the Hugging Face cache") && missing.contains("aaaa1111, bbbb2222"),
            "{missing}"
        );
        std::fs::create_dir_all(cache.path().join("models--org--tiny/snapshots/bbbb3333")).unwrap();
        assert!(find("org/tiny@bbbb").unwrap_err().to_string().contains("several cached commits"));
    }

    #[test]
    fn without_refs_main_the_newest_snapshot_is_planned() {
        let cache = cache_with_two_snapshots();
        std::fs::remove_file(cache.path().join("models--org--tiny/refs/main")).unwrap();
        let newer = cache.path().join("models--org--tiny/snapshots/bbbb2222");
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
        std::fs::File::open(&newer).unwrap().set_modified(later).unwrap();
        assert_eq!(find_snapshot(cache.path(), &RepoId::parse("org/tiny").unwrap()).unwrap(), Some(newer));
    }
}
