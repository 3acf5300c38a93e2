//! Keeping secrets out of what is shown and recorded. A store URL may carry a key pair
//! (`s3://b?endpoint=...&access_key_id=...&secret_access_key=...`, the R2 form) or a
//! password (`redis://:pw@host`); every URL a store shows, every error it returns and every
//! record that names a store goes through these first.

/// What a redacted value reads as.
pub const REDACTED: &str = "REDACTED";

/// Query or form parameter names whose values are secrets (compared lowercased, as parts).
const SECRET_NAMES: &[&str] = &[
    "secret",
    "token",
    "password",
    "passwd",
    "signature",
    "credential",
    "access_key",
    "api_key",
    "apikey",
    "sig",
];

fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_NAMES.iter().any(|s| name.contains(s))
}

/// A URL with the password of its user info and the values of secret-named query
/// parameters replaced by `REDACTED`. Anything that is not a URL comes back unchanged.
pub fn redact_url(url: &str) -> String {
    redact_text(url)
}

/// Redacts every URL user-info password and every `name=value` whose name is secret-like
/// (see [`redact_url`]) found anywhere in `text`, such as a backend's error message that
/// quotes a request URL.
pub fn redact_text(text: &str) -> String {
    let with_userinfo = redact_userinfo(text);
    redact_pairs(&with_userinfo)
}

/// `scheme://user:password@host` -> `scheme://user:REDACTED@host`.
fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let authority_end = after
            .find(|c: char| {
                c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '\'' || c == '"'
            })
            .unwrap_or(after.len());
        let authority = &after[..authority_end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.split_once(':') {
                    Some((user, _)) => {
                        out.push_str(user);
                        out.push(':');
                        out.push_str(REDACTED);
                    }
                    // A lone user-info part is a token in some URLs (`https://TOKEN@host`).
                    None if !userinfo.is_empty() => out.push_str(REDACTED),
                    None => {}
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[authority_end..];
    }
    out.push_str(rest);
    out
}

/// `name=value` with a secret-like name -> `name=REDACTED` (value up to `&`, whitespace or a
/// quote).
fn redact_pairs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(eq) = rest.find('=') {
        let (before, after) = rest.split_at(eq);
        let name_start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'))
            .map_or(0, |i| i + 1);
        out.push_str(before);
        out.push('=');
        let after = &after[1..];
        let value_end = after
            .find(|c: char| {
                c == '&' || c.is_whitespace() || c == '\'' || c == '"' || c == ',' || c == ')'
            })
            .unwrap_or(after.len());
        if is_secret_name(&before[name_start..]) && value_end > 0 {
            out.push_str(REDACTED);
        } else {
            out.push_str(&after[..value_end]);
        }
        rest = &after[value_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_urls_are_redacted_and_the_rest_kept() {
        assert_eq!(
            redact_url(
                "s3://b/p?endpoint=https://acc.r2.cloudflarestorage.com&region=auto&access_key_id=AKID&secret_access_key=S3CR3T"
            ),
            "s3://b/p?endpoint=https://acc.r2.cloudflarestorage.com&region=auto&access_key_id=REDACTED&secret_access_key=REDACTED"
        );
        assert_eq!(
            redact_url("redis://:pw@host:6379/0"),
            "redis://:REDACTED@host:6379/0"
        );
        assert_eq!(
            redact_url("s3://b?endpoint=http://user:pw@127.0.0.1:5000"),
            "s3://b?endpoint=http://user:REDACTED@127.0.0.1:5000"
        );
        assert_eq!(
            redact_url("https://TOKEN@host/x"),
            "https://REDACTED@host/x"
        );
        assert_eq!(redact_url("/tmp/dir"), "/tmp/dir");
        assert_eq!(redact_url("file:///tmp/a=b"), "file:///tmp/a=b");
        assert_eq!(redact_url("memory://"), "memory://");
        assert_eq!(
            redact_url("s3://b?endpoint=http://127.0.0.1:5000&region=us-east-1"),
            "s3://b?endpoint=http://127.0.0.1:5000&region=us-east-1"
        );
    }

    #[test]
    fn secrets_quoted_in_messages_are_redacted() {
        let msg = "Error performing PUT https://h/b/k?X-Amz-Credential=AKID%2F1&X-Amz-Signature=abc123 in 1s - 403 (token=xyz)";
        let out = redact_text(msg);
        assert!(
            !out.contains("AKID") && !out.contains("abc123") && !out.contains("xyz"),
            "{out}"
        );
        assert!(out.contains("PUT https://h/b/k?"), "{out}");
    }
}
