//! "Did you mean" suggestions for unknown ids.

/// Up to three candidates closest to `input`, from the first of these tiers that has any: ids
/// that contain it; ids it contains as whole words (of three characters or more: `gemma-2-27b`
/// in `gemma-2-27b-it`, not `a10` in `a100-pcie`); ids sharing a model token
/// with it (`h100` in `h100-80gb`); ids within a normalized Levenshtein similarity of 0.6.
/// Within a tier, the closer length (or similarity) first.
pub fn closest<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let needle = input.to_ascii_lowercase();
    let needle_tokens = model_tokens(&needle);
    let mut scored: Vec<(u8, f64, &str)> = candidates
        .into_iter()
        .filter_map(|c| {
            let hay = c.to_ascii_lowercase();
            let length_gap = -(hay.len() as f64 - needle.len() as f64).abs();
            if hay.contains(&needle) {
                return Some((3, length_gap, c));
            }
            if hay.len() >= 3 && contains_as_words(&needle, &hay) {
                return Some((2, length_gap, c));
            }
            // The costlier scores only for what the containment tiers leave.
            let similarity = strsim::normalized_levenshtein(&needle, &hay);
            let shared = model_tokens(&hay).iter().filter(|t| needle_tokens.contains(t)).count();
            if shared > 0 {
                Some((1, shared as f64 + similarity, c))
            } else {
                (similarity >= 0.6).then_some((0, similarity, c))
            }
        })
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.total_cmp(&a.1)).then(a.2.cmp(b.2)));
    if let Some(best) = scored.first().map(|s| s.0) {
        scored.retain(|s| s.0 == best);
    }
    scored.into_iter().take(3).map(|(_, _, c)| c.to_string()).collect()
}

/// Whether `part` occurs in `text` between word boundaries (the ends, or non-alphanumerics).
fn contains_as_words(text: &str, part: &str) -> bool {
    let edge = |c: Option<char>| c.is_none_or(|c| !c.is_ascii_alphanumeric());
    text.match_indices(part)
        .any(|(i, _)| edge(text[..i].chars().next_back()) && edge(text[i + part.len()..].chars().next()))
}

/// The parts of an id that name a product rather than a size: those with a digit and at least
/// three characters (`h100`, `4090`, `qwen3`), except memory and parameter sizes (`80gb`, `70b`,
/// `a3b`).
fn model_tokens(id: &str) -> Vec<&str> {
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    let size = |t: &str| {
        let n = t.strip_suffix("gb").or_else(|| t.strip_suffix('b')).unwrap_or("");
        digits(n) || n.strip_prefix('a').is_some_and(digits)
    };
    id.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| t.len() >= 3 && t.chars().any(|c| c.is_ascii_digit()) && !size(t))
        .collect()
}

/// An id with its separators (`-`, `_`, `.`, spaces) dropped, except between two digits, where
/// they become one `.`: `llama2-7b`, `Llama 2 7B` and `llama-2-7b` are all `llama2.7b`, while
/// `qwen2-57b` (`qwen2.57b`) stays apart from `qwen2.5-7b` (`qwen2.5.7b`).
pub fn loose_key(id: &str) -> String {
    let mut key = String::new();
    let mut pending = false;
    for c in id.trim().chars().map(|c| c.to_ascii_lowercase()) {
        if c.is_ascii_alphanumeric() {
            if pending && c.is_ascii_digit() && key.ends_with(|p: char| p.is_ascii_digit()) {
                key.push('.');
            }
            pending = false;
            key.push(c);
        } else {
            pending = true;
        }
    }
    key
}

/// The one item of `items`, or `None` for none or several.
pub fn unique<T>(mut items: impl Iterator<Item = T>) -> Option<T> {
    match (items.next(), items.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    }
}

/// Formats suggestions as "; did you mean a or b?" (empty when there are none).
pub fn did_you_mean(suggestions: &[String]) -> String {
    match suggestions {
        [] => String::new(),
        [one] => format!("; did you mean {one}?"),
        [init @ .., last] => format!("; did you mean {} or {last}?", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substring_matches_come_first() {
        let s = closest("a100", ["a10", "a100-40gb", "a100-80gb", "h100-sxm", "a10g"]);
        assert_eq!(s, vec!["a100-40gb", "a100-80gb"]);
        assert_eq!(did_you_mean(&s), "; did you mean a100-40gb or a100-80gb?");
    }

    #[test]
    fn typos_are_caught() {
        assert_eq!(closest("llama-2-7bb", ["llama-2-7b", "mistral-7b"]), vec!["llama-2-7b"]);
        assert!(closest("zzzz", ["llama-2-7b"]).is_empty());
    }

    #[test]
    fn a_shared_model_token_beats_a_shared_memory_size() {
        let ids = ["a100-80gb", "a100-40gb", "h100-sxm", "h100-pcie", "h200"];
        assert_eq!(closest("h100-80gb", ids), vec!["h100-pcie", "h100-sxm"]);
        // Containment still comes first, and parameter sizes are no model tokens.
        let models = ["gemma-2-27b", "gemma-3-27b", "qwen3.6-27b", "llama-3.1-70b", "mixtral-8x7b"];
        assert_eq!(closest("gemma-2-27b-it", models), vec!["gemma-2-27b"]);
        assert!(!closest("mixtral-70b", models).contains(&"llama-3.1-70b".to_string()));
    }

    #[test]
    fn loose_keys_keep_numbers_apart() {
        assert_eq!(loose_key("Llama 2 7B"), "llama2.7b");
        assert_eq!(loose_key("llama2-7b"), loose_key("llama-2-7b"));
        assert_eq!(loose_key("RTX_4090"), loose_key("rtx-4090"));
        assert_ne!(loose_key("qwen2-57b"), loose_key("qwen2.5-7b"));
        assert_eq!(loose_key("a100 80gb"), "a100.80gb");
    }
}
