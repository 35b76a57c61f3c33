//! Audience checks as jwt_verify_lib's `CheckAudience`: any-of, with a leading `http://` or
//! `https://` and one trailing `/` ignored on both sides, because users often get those wrong.

/// The audiences a rule accepts, normalised once at configuration time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audiences(Vec<String>);

impl Audiences {
    /// From a rule's `audiences`.
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(configured: I) -> Audiences {
        Audiences(
            configured
                .into_iter()
                .map(|a| normalize(a.as_ref()).to_owned())
                .collect(),
        )
    }

    /// The configured audiences, normalised (empty: any audience passes).
    pub fn configured(&self) -> &[String] {
        &self.0
    }

    /// Whether a token with these `aud` values passes: always when none are configured,
    /// otherwise when any token audience equals any configured one.
    pub fn allows(&self, token_audiences: &[String]) -> bool {
        self.0.is_empty()
            || token_audiences.iter().any(|aud| {
                let aud = normalize(aud).as_bytes();
                self.0.iter().any(|c| crate::bytes::same(c.as_bytes(), aud))
            })
    }
}

fn normalize(aud: &str) -> &str {
    let aud = aud
        .strip_prefix("http://")
        .or_else(|| aud.strip_prefix("https://"))
        .unwrap_or(aud);
    aud.strip_suffix('/').unwrap_or(aud)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn any_of_with_scheme_and_trailing_slash_ignored() {
        let a = Audiences::new(["https://example_service/", "other"]);
        assert!(a.allows(&list(&["example_service"])));
        assert!(a.allows(&list(&["http://example_service"])));
        assert!(a.allows(&list(&["x", "https://other/"])));
        assert!(!a.allows(&list(&["example_service2"])));
        assert!(!a.allows(&list(&["ftp://other"])));
        assert!(!a.allows(&[]));
    }

    #[test]
    fn nothing_configured_allows_anything() {
        assert!(Audiences::new::<[&str; 0], _>([]).allows(&[]));
        assert!(Audiences::default().allows(&list(&["x"])));
    }
}
