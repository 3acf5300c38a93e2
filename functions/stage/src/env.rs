//! Settings from the environment, read one way everywhere: a variable that is unset, empty or
//! only whitespace is absent (a Terraform variable left empty must mean "not configured",
//! not "configured as the empty string"), and values are trimmed.

/// The value of `name`, trimmed; `None` when unset, empty or not Unicode.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The value of `name`, or an error that names it and shows an example value.
pub fn required(name: &str, example: &str) -> Result<String, String> {
    var(name).ok_or_else(|| format!("{name} is not set (e.g. {example})"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn blank_values_are_absent_and_errors_name_the_variable() {
        // A name no environment sets.
        let name = "MLPIPE_STAGE_ENV_TEST_UNSET_0B2F";
        assert_eq!(super::var(name), None);
        let err = super::required(name, "s3://bucket").unwrap_err();
        assert!(err.contains(name) && err.contains("s3://bucket"), "{err}");
        assert_eq!(super::var("PATH").map(|p| p.is_empty()), Some(false));
    }
}
