//! "Did you mean": the name most likely meant, for a misspelt one.

/// The candidate closest to `given` by Damerau-Levenshtein distance, if it
/// is within a typo's distance (a third of its length, at least 1).
pub(crate) fn suggest<'c>(
    given: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(given, c), c))
        .filter(|(distance, c)| *distance <= (c.len() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// `"; did you mean `x`?"` for the candidate [`suggest`] finds, else nothing.
pub(crate) fn did_you_mean<'c>(
    given: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> String {
    suggest(given, candidates).map_or_else(String::new, |s| format!("; did you mean `{s}`?"))
}
