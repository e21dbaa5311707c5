//! Tests for the formula language: reference examples, precedence, every
//! error message with its position, size limits, and property tests for
//! print/re-parse round trips and for never panicking.

use super::*;
use crate::features::Agg;
use proptest::prelude::*;

// ------------------------------------------------------------------ helpers

fn ok(text: &str) -> Formula {
    match parse(text) {
        Ok(f) => f,
        Err(e) => panic!("{text:?} should parse:\n{}", e.render(text)),
    }
}

fn fail(text: &str) -> FormulaError {
    match parse(text) {
        Ok(f) => panic!("{text:?} should not parse, got {f:?}"),
        Err(e) => e,
    }
}

fn only_clause(text: &str) -> Clause {
    match ok(text) {
        Formula::Clause(c) => c.strip_spans(),
        other => panic!("{text:?} is not a single clause: {other:?}"),
    }
}

fn unspanned(value: &str) -> Spanned<String> {
    Spanned { value: value.to_string(), span: Span::new(0, 0) }
}

fn metric(name: &str, op: CmpOp, value: f64) -> Formula {
    let name = unspanned(name);
    Formula::Clause(Clause::Metric { name, op, value })
}

fn avatar(value: bool) -> Formula {
    Formula::Clause(Clause::AvatarChanged { op: CmpOp::Eq, value })
}

fn and(l: Formula, r: Formula) -> Formula {
    Formula::And(Box::new(l), Box::new(r))
}

fn or(l: Formula, r: Formula) -> Formula {
    Formula::Or(Box::new(l), Box::new(r))
}

fn not(x: Formula) -> Formula {
    Formula::Not(Box::new(x))
}

fn a() -> Formula {
    metric("a", CmpOp::Ge, 1.0)
}

fn b() -> Formula {
    metric("b", CmpOp::Ge, 2.0)
}

fn c() -> Formula {
    metric("c", CmpOp::Ge, 3.0)
}

fn assert_error(text: &str, column: usize, message: &str) {
    let e = fail(text);
    assert_eq!(e.message, message, "message for {text:?}");
    assert_eq!(e.column(text), column, "column for {text:?}:\n{}", e.render(text));
}

// ------------------------------------------------------------- operators

#[test]
fn a_negated_operator_holds_exactly_when_the_operator_does_not() {
    let holds = |op: CmpOp, a: f64, b: f64| match op {
        CmpOp::Ge => a >= b,
        CmpOp::Gt => a > b,
        CmpOp::Le => a <= b,
        CmpOp::Lt => a < b,
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
    };
    for op in [CmpOp::Ge, CmpOp::Gt, CmpOp::Le, CmpOp::Lt, CmpOp::Eq, CmpOp::Ne] {
        assert_eq!(op.negated().negated(), op);
        for (a, b) in [(1.0, 2.0), (2.0, 2.0), (3.0, 2.0)] {
            assert_ne!(holds(op, a, b), holds(op.negated(), a, b), "{a} {op} {b}");
        }
    }
}

// ------------------------------------------------------- reference examples

#[test]
fn three_metrics_joined_by_and_parse_left_associated() {
    let f = ok("metric.net_overall_threads >= 5 AND metric.net_kudos_weight_received >= 20 \
                AND metric.net_accepted_solutions >= 3");
    let expected = and(
        and(metric("net_overall_threads", CmpOp::Ge, 5.0), metric("net_kudos_weight_received", CmpOp::Ge, 20.0)),
        metric("net_accepted_solutions", CmpOp::Ge, 3.0),
    );
    assert_eq!(f.strip_spans(), expected);
}

#[test]
fn roles_in_a_list_of_quoted_names_parses() {
    let roles = vec!["Administrator".to_string(), "Khoros".to_string()];
    assert_eq!(only_clause("roles in ['Administrator', 'Khoros']"), Clause::RolesIn { roles });
}

#[test]
fn roles_accept_typographic_quotes_pasted_from_docs() {
    let roles = vec!["Admin".to_string(), "Moderator".to_string()];
    assert_eq!(only_clause("roles in [‘Admin’, ‘Moderator’]"), Clause::RolesIn { roles: roles.clone() });
    assert_eq!(only_clause("roles in [“Admin”, \"Moderator\"]"), Clause::RolesIn { roles });
}

#[test]
fn user_ids_parse_with_or_without_spaces() {
    let expected = Clause::UserIdIn { ids: vec![10, 2, 5] };
    assert_eq!(only_clause("user_id in [10, 2, 5]"), expected);
    assert_eq!(only_clause("user_id in [10,2,5]"), expected);
    assert_eq!(only_clause("user_id in[-3]"), Clause::UserIdIn { ids: vec![-3] });
}

#[test]
fn settings_compare_with_equal_or_not_equal_to_a_string() {
    assert_eq!(
        only_clause("setting.profile.location != 'default'"),
        Clause::Setting { key: unspanned("profile.location"), op: CmpOp::Ne, value: "default".to_string() }
    );
    assert_eq!(
        only_clause("setting.profile.location = 'Argentina'"),
        Clause::Setting { key: unspanned("profile.location"), op: CmpOp::Eq, value: "Argentina".to_string() }
    );
}

#[test]
fn avatar_changed_compares_with_a_boolean() {
    assert_eq!(ok("avatar_changed = true").strip_spans(), avatar(true));
    assert_eq!(ok("avatar_changed = FALSE").strip_spans(), avatar(false));
    assert_eq!(only_clause("avatar_changed != false"), Clause::AvatarChanged { op: CmpOp::Ne, value: false });
}

#[test]
fn max_consecutive_logins_is_its_own_numeric_clause() {
    assert_eq!(
        only_clause("setting.user.max_consecutive_logins >= 2"),
        Clause::MaxConsecutiveLogins { op: CmpOp::Ge, value: 2.0 }
    );
}

#[test]
fn dates_and_durations_keep_their_raw_text() {
    assert_eq!(
        only_clause("registration_date > \"2015-01-01\""),
        Clause::RegistrationDate { op: CmpOp::Gt, date: unspanned("2015-01-01") }
    );
    assert_eq!(
        only_clause("signin_date > \"2015-01-01\""),
        Clause::SigninDate { op: CmpOp::Gt, date: unspanned("2015-01-01") }
    );
    assert_eq!(
        only_clause("time_since_registration >= \"1 years\""),
        Clause::TimeSinceRegistration { op: CmpOp::Ge, duration: unspanned("1 years") }
    );
}

#[test]
fn metric_numbers_may_be_decimal_or_negative() {
    assert_eq!(ok("metric.x < 2.5").strip_spans(), metric("x", CmpOp::Lt, 2.5));
    assert_eq!(ok("metric.x<=-1").strip_spans(), metric("x", CmpOp::Le, -1.0));
    assert_eq!(ok("metric.a-b = 0").strip_spans(), metric("a-b", CmpOp::Eq, 0.0));
}

#[test]
fn keywords_are_case_insensitive() {
    let lower = ok("metric.a >= 1 or metric.b >= 2 and not metric.c >= 3");
    let mixed = ok("metric.a >= 1 Or metric.b >= 2 AnD NoT metric.c >= 3");
    assert!(lower.same_tree(&mixed));
    assert_eq!(only_clause("roles IN ['x']"), Clause::RolesIn { roles: vec!["x".to_string()] });
}

#[test]
fn whitespace_including_newlines_is_free() {
    let f = ok("\n\tmetric.a>=1\n  AND\r\n(metric.b >= 2)  ");
    assert_eq!(f.strip_spans(), and(a(), b()));
}

#[test]
fn strings_unescape_backslashed_quotes_and_backslashes() {
    let clause = only_clause(r"setting.k = 'it\'s a \\ path'");
    let Clause::Setting { value, .. } = clause else {
        panic!("not a setting: {clause:?}");
    };
    assert_eq!(value, r"it's a \ path");
    let clause = only_clause(r#"setting.k = "O\'Brien \"x\"""#);
    let Clause::Setting { value, .. } = clause else {
        panic!("not a setting: {clause:?}");
    };
    assert_eq!(value, r#"O'Brien "x""#);
}

#[test]
fn spans_point_at_names_keys_and_whole_date_literals() {
    let text = "metric.posts >= 1 AND setting.a.b = 'x' AND signin_date < 'ü2020'";
    let clauses: Vec<Clause> = ok(text).clauses().into_iter().cloned().collect();
    let [Clause::Metric { name, .. }, Clause::Setting { key, .. }, Clause::SigninDate { date, .. }] =
        clauses.as_slice()
    else {
        panic!("unexpected clauses {clauses:?}");
    };
    assert_eq!(&text[name.span.start..name.span.end], "posts");
    assert_eq!(&text[key.span.start..key.span.end], "a.b");
    assert_eq!(&text[date.span.start..date.span.end], "'ü2020'");
}

#[test]
fn clauses_lists_every_clause_from_left_to_right() {
    let f = ok("NOT (metric.a >= 1 OR avatar_changed = true) AND roles in ['r']");
    let printed: Vec<String> = f.clauses().iter().map(|c| c.to_string()).collect();
    assert_eq!(printed, ["metric.a >= 1", "avatar_changed = true", "roles in ['r']"]);
}

// ---------------------------------------------------------------- precedence

#[test]
fn not_binds_tighter_than_and_which_binds_tighter_than_or() {
    let f = ok("metric.a >= 1 OR metric.b >= 2 AND NOT metric.c >= 3");
    assert_eq!(f.strip_spans(), or(a(), and(b(), not(c()))));
}

#[test]
fn parentheses_override_precedence() {
    let f = ok("(metric.a >= 1 OR metric.b >= 2) AND NOT (metric.c >= 3 OR metric.a >= 1)");
    assert_eq!(f.strip_spans(), and(or(a(), b()), not(or(c(), a()))));
}

#[test]
fn or_chains_are_left_associative() {
    let f = ok("metric.a >= 1 OR metric.b >= 2 OR metric.c >= 3");
    assert_eq!(f.strip_spans(), or(or(a(), b()), c()));
}

// ------------------------------------------------------------------ printing

#[test]
fn clauses_print_in_canonical_form() {
    let cases = [
        ("metric.net_accepted_solutions>=3", "metric.net_accepted_solutions >= 3"),
        ("metric.x != 2.50", "metric.x != 2.5"),
        ("roles in [\"A'b\",‘c\\\\d’]", r"roles in ['A\'b', 'c\\d']"),
        ("user_id in [1,2]", "user_id in [1, 2]"),
        ("setting.user.language='es'", "setting.user.language = 'es'"),
        ("setting.user.max_consecutive_logins<3", "setting.user.max_consecutive_logins < 3"),
        ("avatar_changed=TRUE", "avatar_changed = true"),
        ("registration_date <= \"2015-01-01\"", "registration_date <= '2015-01-01'"),
        ("time_since_registration > “1 years”", "time_since_registration > '1 years'"),
    ];
    for (input, printed) in cases {
        assert_eq!(ok(input).to_string(), printed, "printing {input:?}");
    }
}

#[test]
fn formulas_print_parentheses_only_where_precedence_needs_them() {
    let cases = [
        (and(and(a(), b()), c()), "metric.a >= 1 AND metric.b >= 2 AND metric.c >= 3"),
        (and(a(), and(b(), c())), "metric.a >= 1 AND (metric.b >= 2 AND metric.c >= 3)"),
        (and(or(a(), b()), c()), "(metric.a >= 1 OR metric.b >= 2) AND metric.c >= 3"),
        (or(and(a(), b()), c()), "metric.a >= 1 AND metric.b >= 2 OR metric.c >= 3"),
        (or(a(), or(b(), c())), "metric.a >= 1 OR (metric.b >= 2 OR metric.c >= 3)"),
        (not(and(a(), b())), "NOT (metric.a >= 1 AND metric.b >= 2)"),
        (not(not(a())), "NOT NOT metric.a >= 1"),
        (and(not(a()), b()), "NOT metric.a >= 1 AND metric.b >= 2"),
    ];
    for (tree, printed) in cases {
        assert_eq!(tree.to_string(), printed);
        assert_eq!(ok(printed).strip_spans(), tree, "re-parsing {printed:?}");
    }
}

// -------------------------------------------------------------------- errors

#[test]
fn a_missing_number_is_reported_under_the_next_token() {
    let text = "metric.posts >= AND roles in ['Admin']";
    let e = fail(text);
    assert_eq!(e.message, "expected a number after '>='");
    assert_eq!(e.column(text), 17);
    assert_eq!(
        e.render(text),
        "metric.posts >= AND roles in ['Admin']\n                ^ expected a number after '>='"
    );
    assert_eq!(e.to_string(), "column 17: expected a number after '>='");
}

#[test]
fn an_unterminated_string_is_reported_at_its_opening_quote_in_characters() {
    let text = "roles in ['Ádmin', 'Mod";
    let e = fail(text);
    assert_eq!(e.message, "unterminated string starting here");
    assert_eq!(e.column(text), 20);
    assert_eq!(e.render(text), format!("{text}\n{}^ unterminated string starting here", " ".repeat(19)));
    // Display has no text to count characters in, so it counts bytes.
    assert_eq!(e.to_string(), "column 21: unterminated string starting here");
    assert_error("roles in [‘Admin]", 11, "unterminated string starting here");
    assert_error(r"roles in ['Admin\']", 11, "unterminated string starting here");
}

#[test]
fn an_unknown_clause_is_underlined_and_lists_the_clause_kinds() {
    let text = "foo > 1";
    let e = fail(text);
    let message = "unknown clause 'foo': expected metric.NAME, roles in [...], user_id in [...], \
                   setting.KEY, avatar_changed, registration_date, signin_date, \
                   time_since_registration, user.NAME or an aggregate such as count(SOURCE)";
    assert_eq!(e.message, message);
    assert_eq!(e.render(text), format!("foo > 1\n^^^ {message}"));
}

#[test]
fn a_wrongly_cased_clause_name_gets_a_suggestion() {
    assert!(fail("Roles in ['a']").message.ends_with("(did you mean 'roles'?)"));
    assert!(fail("role in ['a']").message.ends_with("(did you mean 'roles'?)"));
    let e = fail("Metric.posts > 1");
    assert!(e.message.ends_with("(did you mean 'metric.posts'?)"), "{}", e.message);
}

#[test]
fn a_missing_operator_names_the_operators_and_the_metric() {
    assert_error("metric.posts 5", 14, "expected a comparison operator (>=, >, <=, <, =, !=) after 'metric.posts'");
    assert_error("metric.posts", 13, "expected a comparison operator (>=, >, <=, <, =, !=) after 'metric.posts'");
    assert_error("metric.posts == 5", 14, "'==' is not an operator: use '=' to compare");
}

#[test]
fn an_operator_written_backwards_or_from_another_language_gets_the_right_one() {
    assert_error("metric.posts => 7", 14, "'=>' is not an operator: use '>=' for at least");
    assert_error("metric.posts =< 7", 14, "'=<' is not an operator: use '<=' for at most");
    assert_error("metric.posts <> 7", 14, "'<>' is not an operator: use '!=' for not equal");
    assert_error("metric.posts ≥ 7", 14, "unexpected character '≥': write '>='");
}

#[test]
fn roles_need_in_a_bracketed_list_and_at_least_one_role() {
    assert_error("roles ['a']", 7, "expected 'in' after 'roles'");
    assert_error("roles in 'a'", 10, "expected '[' after 'in'");
    assert_error("roles in []", 10, "'roles in' needs at least one role");
    assert_error("roles in [Admin]", 11, "expected a quoted role name like 'Admin' in the list");
    assert_error("roles in ['a' 'b']", 15, "expected ']' or ',' in the list");
    assert_error("roles in ['a'", 14, "expected ']' or ',' in the list");
    assert_error("roles in ['a',]", 14, "trailing ',' before ']': remove it or add another item");
}

#[test]
fn user_ids_must_be_whole_numbers_that_fit_in_i64() {
    assert_error("user_id in []", 12, "'user_id in' needs at least one id");
    assert_error("user_id in [1, 2,]", 17, "trailing ',' before ']': remove it or add another item");
    assert_error("user_id in ['1']", 13, "expected a user id (a whole number) in the list");
    assert_error("user_id in [1, 2.5]", 16, "user id '2.5' must be a whole number");
    assert_error(
        "user_id in [1, 99999999999999999999]",
        16,
        "user id '99999999999999999999' does not fit in a 64-bit integer",
    );
    assert_eq!(
        only_clause("user_id in [-9223372036854775808, 9223372036854775807]"),
        Clause::UserIdIn { ids: vec![i64::MIN, i64::MAX] }
    );
}

#[test]
fn settings_take_only_equal_or_not_equal_and_a_string() {
    let text = "setting.profile.location >= 'x'";
    let e = fail(text);
    assert_eq!(e.message, "setting.profile.location takes only = or !=");
    assert_eq!(e.render(text), format!("{text}\n{}^^ {}", " ".repeat(25), e.message));
    assert_error("setting.a 'x'", 11, "expected = or != after 'setting.a'");
    assert_error("setting.a = yes", 13, "expected a quoted string or a number after '='");
    assert_error("setting.user.max_consecutive_logins >= '2'", 40, "expected a number after '>=', not a quoted string");
    assert_error("setting = 'x'", 8, "expected '.' and a setting key after 'setting', like setting.profile.location");
    assert_error("setting. = 'x'", 9, "expected a name after 'setting.'");
}

#[test]
fn avatar_changed_needs_equal_or_not_equal_and_a_boolean() {
    assert_error("avatar_changed > true", 16, "avatar_changed takes only = or !=");
    assert_error("avatar_changed = yes", 18, "expected true or false after '='");
}

#[test]
fn dates_and_durations_must_be_quoted() {
    assert_error("registration_date > 2015", 21, "expected a quoted date like '2015-01-01' after '>'");
    assert_error("time_since_registration >= 1", 28, "expected a quoted duration like '1 years' after '>='");
}

#[test]
fn parentheses_must_balance() {
    assert_error("(metric.a >= 1 AND metric.b >= 2", 33, "expected ')' to close '(' at column 1");
    assert_error(
        "avatar_changed = true AND ((metric.a >= 1) xyz",
        44,
        "unexpected 'xyz' after a complete clause: expected AND, OR or ')' to close '(' at column 27",
    );
    assert_error("metric.a >= 1)", 14, "unmatched ')': there is no '(' to close");
    assert_error("()", 2, "expected a clause after '(' but found ')'");
}

#[test]
fn trailing_text_after_a_clause_is_reported() {
    let text = "metric.a >= 1 xyz";
    let e = fail(text);
    assert_eq!(e.message, "unexpected 'xyz' after a complete clause: expected AND, OR or the end");
    assert_eq!(e.render(text), format!("{text}\n{}^^^ {}", " ".repeat(14), e.message));
}

#[test]
fn empty_and_dangling_formulas_are_reported() {
    assert_error("", 1, "empty formula");
    assert_error("  \n ", 1, "empty formula");
    assert_error("metric.a >= 1 AND", 18, "expected a clause after 'AND'");
    assert_error("NOT", 4, "expected a clause after 'NOT'");
    assert_error("AND metric.a >= 1", 1, "expected a clause but found 'AND'");
    assert_error("metric.a >= 1 OR OR", 18, "expected a clause after 'OR' but found 'OR'");
}

#[test]
fn bad_characters_and_numbers_are_reported() {
    assert_error("metric.a >= 5abc", 13, "invalid number '5abc'");
    assert_error("metric.a >= 1.2.3", 13, "invalid number '1.2.3'");
    assert_error("metric.a >= -", 14, "expected a digit after '-'");
    assert_error("metric.a >= 1 & metric.b >= 2", 15, "unexpected character '&'");
    assert_error("metric.a >= 1 AND é", 19, "unexpected character 'é'");
    assert_error(
        r"setting.a = 'x\n'",
        15,
        r"unknown escape '\n': a backslash may only escape a quote or another backslash",
    );
    assert_error("metric", 7, "expected '.' and a metric name after 'metric', like metric.posts");
    let huge = format!("metric.a >= 1{}", "0".repeat(400));
    assert!(fail(&huge).message.starts_with("number '1000"));
}

#[test]
fn long_user_text_is_cut_short_in_messages() {
    let text = "x".repeat(10_000);
    let e = fail(&text);
    assert!(e.message.len() < 300, "message is {} bytes", e.message.len());
    assert_eq!(e.span, Span::new(0, 10_000));
}

#[test]
fn render_survives_spans_from_another_text() {
    let e = FormulaError::new(Span::new(3, 99), "elsewhere");
    assert_eq!(e.render("é"), "é\n ^ elsewhere");
    assert_eq!(e.column("é"), 2);
    let e = FormulaError::new(Span::new(usize::MAX, usize::MAX), "far");
    assert_eq!(e.to_string(), format!("column {}: far", usize::MAX));
}

// --------------------------------------------------------------------- sizes

#[test]
fn a_list_of_100000_user_ids_parses_in_linear_time() {
    let ids: Vec<String> = (0..100_000).map(|i| (i * 7919).to_string()).collect();
    let text = format!("user_id in [{}] AND avatar_changed = true", ids.join(", "));
    let start = std::time::Instant::now();
    let f = ok(&text);
    let elapsed = start.elapsed();
    let Some(Clause::UserIdIn { ids }) = f.clauses().first().copied() else {
        panic!("first clause is not user_id in");
    };
    assert_eq!(ids.len(), 100_000);
    assert_eq!(ids[99_999], 99_999 * 7919);
    // Generous for a debug build on a busy machine; quadratic would take minutes.
    assert!(elapsed.as_secs() < 5, "took {elapsed:?}");
}

#[test]
fn nesting_up_to_the_limit_parses_prints_and_drops() {
    let parens = format!("{}avatar_changed = true{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert_eq!(ok(&parens).strip_spans(), avatar(true));
    let nots = format!("{}avatar_changed = true", "NOT ".repeat(MAX_DEPTH - 1));
    let f = ok(&nots);
    assert!(ok(&f.to_string()).same_tree(&f));
    let chain = vec!["avatar_changed = true"; MAX_DEPTH].join(" AND ");
    let f = ok(&chain);
    assert_eq!(f.clauses().len(), MAX_DEPTH);
    assert_eq!(f.to_string(), chain);
}

#[test]
fn nesting_past_the_limit_is_an_error_not_a_stack_overflow() {
    let parens = format!("{}avatar_changed = true", "(".repeat(100_000));
    assert!(fail(&parens).message.starts_with("too many nested '(' or NOT"));
    let nots = format!("{}avatar_changed = true", "NOT ".repeat(100_000));
    assert!(fail(&nots).message.starts_with("too many nested '(' or NOT"));
    let chain = vec!["avatar_changed = true"; 100_000].join(" OR ");
    let e = fail(&chain);
    assert!(e.message.starts_with("formula is too big"), "{}", e.message);
    assert_eq!(&chain[e.span.start..e.span.end], "OR");
}

// ---------------------------------------------------------------- properties

fn arb_name() -> impl Strategy<Value = String> {
    prop::collection::vec("[A-Za-z_][A-Za-z0-9_-]{0,6}", 1..4).prop_map(|s| s.join("."))
}

fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[a-zA-Z0-9 '\"\\\\‘’“”é漢🎉\n-]{0,12}",]
}

fn arb_number() -> impl Strategy<Value = f64> {
    prop_oneof![any::<i32>().prop_map(f64::from), -1e6..1e6f64, any::<f64>().prop_filter("finite", |v| v.is_finite()),]
}

fn arb_op() -> impl Strategy<Value = CmpOp> {
    prop::sample::select(vec![CmpOp::Ge, CmpOp::Gt, CmpOp::Le, CmpOp::Lt, CmpOp::Eq, CmpOp::Ne])
}

fn arb_eq_ne() -> impl Strategy<Value = CmpOp> {
    prop::sample::select(vec![CmpOp::Eq, CmpOp::Ne])
}

fn spanless(s: String) -> Spanned<String> {
    Spanned { value: s, span: Span::new(0, 0) }
}

fn arb_clause() -> impl Strategy<Value = Clause> {
    let key = arb_name().prop_filter("reserved key", |k| k != "user.max_consecutive_logins");
    prop_oneof![
        (arb_name(), arb_op(), arb_number()).prop_map(|(n, op, value)| Clause::Metric { name: spanless(n), op, value }),
        prop::collection::vec(arb_text(), 1..4).prop_map(|roles| Clause::RolesIn { roles }),
        prop::collection::vec(any::<i64>(), 1..5).prop_map(|ids| Clause::UserIdIn { ids }),
        (key, arb_eq_ne(), arb_text()).prop_map(|(k, op, value)| Clause::Setting { key: spanless(k), op, value }),
        (arb_op(), arb_number()).prop_map(|(op, value)| Clause::MaxConsecutiveLogins { op, value }),
        (arb_eq_ne(), any::<bool>()).prop_map(|(op, value)| Clause::AvatarChanged { op, value }),
        (arb_op(), arb_text()).prop_map(|(op, d)| Clause::RegistrationDate { op, date: spanless(d) }),
        (arb_op(), arb_text()).prop_map(|(op, d)| Clause::SigninDate { op, date: spanless(d) }),
        (arb_op(), arb_text()).prop_map(|(op, d)| Clause::TimeSinceRegistration { op, duration: spanless(d) }),
        (arb_numeric_agg(), arb_source(), arb_filters(), arb_op(), arb_number()).prop_map(
            |(agg, source, filters, op, value)| Clause::Aggregate { agg, source: spanless(source), filters, op, value }
        ),
        (prop::sample::select(vec![Agg::First, Agg::Last]), arb_source(), arb_filters(), arb_op(), arb_text())
            .prop_map(|(agg, source, filters, op, d)| Clause::EventDate {
                agg,
                source: spanless(source),
                filters,
                op,
                date: spanless(d)
            }),
        ("[A-Za-z_][A-Za-z0-9_]{0,8}", arb_attribute()).prop_map(|(name, (op, value))| Clause::Attribute {
            name: spanless(name),
            op,
            value
        }),
        (arb_name().prop_filter("reserved key", |k| k != "user.max_consecutive_logins"), arb_op(), arb_number())
            .prop_map(|(k, op, value)| Clause::SettingNumber { key: spanless(k), op, value }),
    ]
}

fn arb_numeric_agg() -> impl Strategy<Value = Agg> {
    prop::sample::select(Agg::ALL.into_iter().filter(|a| !a.is_date()).collect::<Vec<_>>())
}

fn arb_source() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,8}"
}

fn arb_filters() -> impl Strategy<Value = Vec<Filter>> {
    let filter = prop_oneof![
        prop::collection::vec(arb_text(), 1..3).prop_map(Filter::Kind),
        arb_text().prop_map(|t| Filter::Within(spanless(t))),
        arb_text().prop_map(|t| Filter::Since(spanless(t))),
    ];
    prop::collection::vec(filter, 0..3)
}

fn arb_attribute() -> impl Strategy<Value = (CmpOp, AttributeValue)> {
    prop_oneof![
        (arb_op(), arb_number()).prop_map(|(op, n)| (op, AttributeValue::Number(n))),
        (arb_eq_ne(), arb_text()).prop_map(|(op, t)| (op, AttributeValue::Text(t))),
        prop::collection::vec(arb_text(), 1..3).prop_map(|items| (CmpOp::Eq, AttributeValue::TextIn(items))),
        (arb_eq_ne(), any::<bool>()).prop_map(|(op, b)| (op, AttributeValue::Bool(b))),
        (prop::sample::select(vec![CmpOp::Ge, CmpOp::Gt, CmpOp::Le, CmpOp::Lt]), arb_text())
            .prop_map(|(op, d)| (op, AttributeValue::Date(spanless(d)))),
    ]
}

fn arb_formula() -> impl Strategy<Value = Formula> {
    arb_clause().prop_map(Formula::Clause).prop_recursive(4, 32, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(l, r)| and(l, r)),
            (inner.clone(), inner.clone()).prop_map(|(l, r)| or(l, r)),
            inner.prop_map(not),
        ]
    })
}

const TOKENS: &[&str] = &[
    "metric.x",
    "metric.",
    "metric",
    ">=",
    ">",
    "<=",
    "<",
    "=",
    "!=",
    "==",
    "!",
    "(",
    ")",
    "AND",
    "or",
    "NOT",
    "'",
    "\"",
    "‘",
    "’",
    "“",
    "\\",
    "[",
    "]",
    ",",
    "0",
    "-1",
    "2.5",
    "-",
    ".",
    "99999999999999999999",
    "'a'",
    "\"b\"",
    "é",
    "漢",
    "roles",
    "in",
    "user_id",
    "setting.a",
    "setting.user.max_consecutive_logins",
    "avatar_changed",
    "true",
    "false",
    "registration_date",
    "signin_date",
    "time_since_registration",
    "'2015-01-01'",
    "\n",
    "\t",
];

fn arb_token_soup() -> impl Strategy<Value = String> {
    let piece = (prop::sample::select(TOKENS), any::<bool>());
    prop::collection::vec(piece, 0..40).prop_map(|pieces| {
        pieces.into_iter().map(|(t, space)| if space { format!("{t} ") } else { t.to_string() }).collect()
    })
}

/// Everything a caller may do with an error must be safe, and its span must
/// be usable to slice the text it came from.
fn check_never_panics(text: &str) {
    if let Err(e) = parse(text) {
        assert!(e.span.start <= e.span.end && e.span.end <= text.len(), "{e:?}");
        assert!(text.is_char_boundary(e.span.start) && text.is_char_boundary(e.span.end));
        let rendered = e.render(text);
        let caret_line = rendered.lines().last().unwrap_or_default();
        let pad = caret_line.chars().take_while(|c| *c == ' ').count();
        assert_eq!(pad + 1, e.column(text), "{rendered}");
        let _ = e.to_string();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn printed_formulas_reparse_to_the_same_tree(f in arb_formula()) {
        let printed = f.to_string();
        let reparsed = parse(&printed)
            .map_err(|e| TestCaseError::fail(e.render(&printed)))?;
        prop_assert_eq!(reparsed.strip_spans(), f.strip_spans());
        prop_assert_eq!(reparsed.to_string(), printed);
    }

    #[test]
    fn formulas_in_words_never_begin_a_phrase_with_a_bare_not(f in arb_formula()) {
        let text = words::in_words(&f);
        for bare in ["not ", "(not "] {
            prop_assert!(!text.starts_with(bare), "{}", text);
        }
        for joined in [" and not ", " or not ", "(not "] {
            prop_assert!(!text.contains(joined), "{}", text);
        }
        let twice_negated = Formula::Not(Box::new(Formula::Not(Box::new(f.clone()))));
        prop_assert_eq!(words::in_words(&twice_negated), text);
    }

    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>()) {
        check_never_panics(&text);
    }

    #[test]
    fn token_soup_never_panics(text in arb_token_soup()) {
        check_never_panics(&text);
    }
}

// ------------------------------------------------------- aggregates and attributes

#[test]
fn an_aggregate_reads_its_source_and_each_filter() {
    assert_eq!(
        only_clause("count(posts, kind = 'reply', within = '30 days', since = '2026-01-01') >= 10"),
        Clause::Aggregate {
            agg: Agg::Count,
            source: unspanned("posts"),
            filters: vec![
                Filter::Kind(vec!["reply".to_string()]),
                Filter::Within(unspanned("30 days")),
                Filter::Since(unspanned("2026-01-01")),
            ],
            op: CmpOp::Ge,
            value: 10.0,
        }
    );
    assert_eq!(
        only_clause("distinct(videos, kind in ['a', 'b']) = 2"),
        Clause::Aggregate {
            agg: Agg::Distinct,
            source: unspanned("videos"),
            filters: vec![Filter::Kind(vec!["a".to_string(), "b".to_string()])],
            op: CmpOp::Eq,
            value: 2.0,
        }
    );
    assert_eq!(
        only_clause("last(logins) < '2026-01-01'"),
        Clause::EventDate {
            agg: Agg::Last,
            source: unspanned("logins"),
            filters: vec![],
            op: CmpOp::Lt,
            date: unspanned("2026-01-01"),
        }
    );
}

#[test]
fn every_aggregate_name_parses_and_prints_as_written() {
    for agg in Agg::ALL {
        let text = if agg.is_date() {
            format!("{}(likes_received) >= '2026-01-01'", agg.name())
        } else {
            format!("{}(likes_received) >= 3", agg.name())
        };
        assert_eq!(ok(&text).to_string(), text);
    }
}

#[test]
fn a_malformed_aggregate_says_what_is_missing_and_where() {
    assert_error("count >= 1", 7, "expected '(' and a source after 'count', like count(posts)");
    assert_error("count(posts >= 1", 13, "expected ',' and a filter, or ')' to close 'count(' at column 6");
    assert_error("count(posts", 12, "expected ')' to close 'count(' at column 6");
    assert_error(
        "count() >= 1",
        7,
        "expected a source after 'count(': posts, connections, logins or a name of [sources.events]",
    );
    assert_error(
        "count(posts, kinds = 'a') >= 1",
        14,
        "unknown filter 'kinds': expected kind = 'K', kind in ['A', 'B'], within = 'N days' or since = 'DATE'",
    );
    assert_error("count(posts, within 30) >= 1", 21, "expected '=' after 'within'");
    assert_error("count(posts, within = 30) >= 1", 23, "expected a quoted span like '30 days' after '='");
    assert_error("count(posts, kind != 'a') >= 1", 19, "filter 'kind' takes only =");
    assert_error("count(posts) 'x'", 14, "expected a comparison operator (>=, >, <=, <, =, !=) after 'count(posts)'");
    assert_error("last(logins) >= 3", 17, "expected a quoted date like '2015-01-01' after '>='");
    assert_error(
        "Count(posts) >= 1",
        1,
        "unknown clause 'Count': expected metric.NAME, roles in [...], user_id in [...], setting.KEY, avatar_changed, registration_date, signin_date, time_since_registration, user.NAME or an aggregate such as count(SOURCE) (did you mean 'count'?)",
    );
}

#[test]
fn a_member_attribute_is_typed_by_what_it_is_compared_with() {
    let attribute = |text: &str| match only_clause(text) {
        Clause::Attribute { value, op, .. } => (op, value),
        other => panic!("{text}: {other:?}"),
    };
    assert_eq!(attribute("user.trust_level >= 2"), (CmpOp::Ge, AttributeValue::Number(2.0)));
    assert_eq!(attribute("user.locale != 'en'"), (CmpOp::Ne, AttributeValue::Text("en".to_string())));
    assert_eq!(
        attribute("user.locale in ['en', 'de']"),
        (CmpOp::Eq, AttributeValue::TextIn(vec!["en".to_string(), "de".to_string()]))
    );
    assert_eq!(attribute("user.active = TRUE"), (CmpOp::Eq, AttributeValue::Bool(true)));
    assert_eq!(
        attribute("user.approved_at < '2026-01-01'"),
        (CmpOp::Lt, AttributeValue::Date(unspanned("2026-01-01")))
    );
    assert_error("user.active > true", 13, "user.active compared with true or false takes only = or !=");
    assert_error(
        "user.a-b = 1",
        6,
        "'a-b' is not a column name: user.NAME takes a column of the users source (letters, digits and '_')",
    );
    assert_error("user = 1", 5, "expected '.' and a column of the users source after 'user', like user.trust_level");
    assert_error("user.x = yes", 10, "expected a number, a quoted text or date, or true or false after '='");
}

#[test]
fn a_setting_compared_with_a_number_takes_every_operator() {
    assert_eq!(
        only_clause("setting.level >= 3.5"),
        Clause::SettingNumber { key: unspanned("level"), op: CmpOp::Ge, value: 3.5 }
    );
    assert_eq!(ok("setting.level != 3").to_string(), "setting.level != 3");
}
