//! How errors read on one line: each cause once, outermost first.
//!
//! `{error:#}` joins every cause of an error chain with `: `; database drivers wrap their own
//! message in an error that repeats it (`error returned from database: (code: 1) no such
//! column: x: (code: 1) no such column: x`). [`text`] keeps the chain but drops a cause that
//! the text before it already says, and the drivers' generic preamble.

/// The error and its causes as one line, nothing said twice.
pub fn text(error: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in error.chain() {
        let own = cause.to_string();
        let own = own.strip_prefix("error returned from database: ").unwrap_or(&own).trim();
        if own.is_empty() || out.contains(own) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(own);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::text;

    #[derive(Debug, thiserror::Error)]
    #[error("error returned from database: (code: 1) no such column: sentat")]
    struct Wrapped(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("(code: 1) no such column: sentat")]
    struct Inner;

    #[test]
    fn a_database_message_repeated_by_its_wrapper_appears_once() {
        let error = anyhow::Error::new(Wrapped(Inner)).context("source 'posts': the query failed");
        assert_eq!(text(&error), "source 'posts': the query failed: (code: 1) no such column: sentat");
    }

    #[test]
    fn distinct_causes_are_all_kept_in_order() {
        let error = anyhow::anyhow!("disk full").context("writing awards").context("run 7");
        assert_eq!(text(&error), "run 7: writing awards: disk full");
    }
}
