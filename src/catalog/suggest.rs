//! "Did you mean" suggestions for unknown ids.

/// Up to three candidates closest to `input`: those that contain it or are contained by it when
/// there are any, then those sharing a model token with it (`h100` in `h100-80gb`), else those
/// within a normalized Levenshtein similarity of 0.6.
pub fn closest<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let needle = input.to_ascii_lowercase();
    let needle_tokens = model_tokens(&needle);
    let mut scored: Vec<(f64, &str)> = candidates
        .into_iter()
        .filter_map(|c| {
            let hay = c.to_ascii_lowercase();
            let shared = model_tokens(&hay).iter().filter(|t| needle_tokens.contains(t)).count();
            let score = if hay.contains(&needle) {
                3.0 - (hay.len() as f64 - needle.len() as f64).abs() / 100.0
            } else if hay.len() >= 3 && needle.contains(&hay) {
                2.0 - (needle.len() as f64 - hay.len() as f64).abs() / 100.0
            } else if shared > 0 {
                2.0 + shared as f64 / 10.0 + strsim::normalized_levenshtein(&needle, &hay) / 100.0
            } else {
                strsim::normalized_levenshtein(&needle, &hay)
            };
            (score >= 0.6).then_some((score, c))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    // Ids that contain the input beat ids the input contains, which beat typos.
    if let Some(tier) = scored.first().map(|(score, _)| score.floor()).filter(|t| *t >= 2.0) {
        scored.retain(|(score, _)| score.floor() == tier);
    }
    scored.into_iter().take(3).map(|(_, c)| c.to_string()).collect()
}

/// The parts of an id that name a product rather than a size: those with a digit and at least
/// three characters (`h100`, `4090`, `7b`-like sizes are too short), except memory sizes (`80gb`).
fn model_tokens(id: &str) -> Vec<&str> {
    id.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| t.len() >= 3 && t.chars().any(|c| c.is_ascii_digit()))
        .filter(|t| !t.strip_suffix("gb").is_some_and(|n| n.chars().all(|c| c.is_ascii_digit())))
        .collect()
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
    }
}
