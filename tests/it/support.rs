//! A throwaway host database and the helpers every integration test uses.
//!
//! Tests talk to the host only through [`TestHost`]: setup SQL goes through [`TestHost::exec`]
//! and stays portable (plain `CREATE TABLE` with INTEGER/TEXT/BOOLEAN columns, `INSERT ...
//! VALUES`); the one dialect-specific value, a native timestamp, comes from
//! [`TestHost::native_timestamp`]. Tests of rule semantics run once per [`Backend`]: each
//! takes a `backend` parameter (rstest `#[values]`) and calls [`use_backend`] first, which
//! makes [`TestHost::new`] create its database there, or skips the test with a message when
//! that server is not reachable (and fails it instead when `CI` is set).
//!
//! PostgreSQL and MySQL hosts are fresh databases created through the admin URLs
//! `ACCOLADE_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`) and
//! `ACCOLADE_TEST_MYSQL_URL` (default `mysql://root@127.0.0.1:3306/mysql`), dropped when the
//! host is dropped.

use accolade::commands::award::{AwardReport, award};
use accolade::commands::run::{RunOptions, RunReport, execute, execute_with};
use accolade::config::plan::{Plan, compile};
use accolade::db::Db;
use accolade::evaluate::BadgeExplanation;
use accolade::features::Context;
use accolade::store::{Store, StoredAward, StoredBadge};
use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tempfile::TempDir;

/// The kind of database a [`TestHost`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in the host's temporary directory.
    Sqlite,
    /// A fresh database on the PostgreSQL server.
    Postgres,
    /// A fresh database on the MySQL/MariaDB server.
    MySql,
}

thread_local! {
    /// The backend [`TestHost::new`] uses on this thread (the test's own thread runs the
    /// test body under `#[tokio::test]`).
    static CURRENT: Cell<Backend> = const { Cell::new(Backend::Sqlite) };
}

/// Restores the previous backend when the test ends.
pub struct BackendGuard(Backend);

impl Drop for BackendGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// Makes `backend` the one [`TestHost::new`] uses, or returns `None` (the caller returns,
/// skipping the test) when its server is unreachable and `CI` is not set.
pub fn use_backend(backend: Backend) -> Option<BackendGuard> {
    if !reachable(backend) {
        let url = redacted_admin_url(backend);
        if std::env::var_os("CI").is_some() {
            panic!("{backend:?} is not reachable at {url}, and CI is set: the server must be up");
        }
        announce_skip(&format!("no {backend:?} server at {url} (start it, or set ACCOLADE_TEST_*_URL)"));
        return None;
    }
    Some(BackendGuard(CURRENT.with(|c| c.replace(backend))))
}

/// Says, in plain `cargo test` output, that the running test skipped its work and why: the
/// line goes straight to the process's standard error, past the test harness's capture, so
/// a skipped test is never mistaken for a pass.
pub fn announce_skip(why: &str) {
    use std::io::Write;
    let test = std::thread::current().name().unwrap_or("a test").to_string();
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test}: {why}");
}

/// The admin URL of a server backend (empty for SQLite).
pub fn admin_url(backend: Backend) -> String {
    let (var, default) = match backend {
        Backend::Sqlite => return String::new(),
        Backend::Postgres => ("ACCOLADE_TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        Backend::MySql => ("ACCOLADE_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/mysql"),
    };
    std::env::var(var).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_string())
}

fn redacted_admin_url(backend: Backend) -> String {
    accolade::db::redact(&admin_url(backend))
}

/// Whether the backend's server accepts TCP connections (checked once per process).
fn reachable(backend: Backend) -> bool {
    static PG: OnceLock<bool> = OnceLock::new();
    static MY: OnceLock<bool> = OnceLock::new();
    let cell = match backend {
        Backend::Sqlite => return true,
        Backend::Postgres => &PG,
        Backend::MySql => &MY,
    };
    *cell.get_or_init(|| {
        let url = admin_url(backend);
        let authority = url.split("://").nth(1).unwrap_or_default();
        let host_port = authority.rsplit('@').next().unwrap_or_default().split('/').next().unwrap_or_default();
        use std::net::ToSocketAddrs;
        host_port
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .is_some_and(|addr| std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok())
    })
}

/// A URL like `admin` but naming database `name`.
fn with_database(admin: &str, name: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let root = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    format!("{root}/{name}{query}")
}

/// A fresh, empty host database that is also the awards database (as in production, unless
/// configured apart). Dropped with its temporary directory (SQLite) or by `DROP DATABASE`.
pub struct TestHost {
    dir: TempDir,
    backend: Backend,
    url: String,
    db: Db,
    /// The server database to drop, for PostgreSQL and MySQL.
    database: Option<String>,
}

impl Drop for TestHost {
    fn drop(&mut self) {
        let Some(name) = self.database.take() else { return };
        let admin = admin_url(self.backend);
        let backend = self.backend;
        // Drop runs outside any async context we can await in: do it on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async move {
                let admin = Db::connect(&admin).await.ok()?;
                let sql = match backend {
                    Backend::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                    _ => format!("DROP DATABASE IF EXISTS {name}"),
                };
                let result = run_sql(&admin, &sql).await;
                admin.close().await;
                result.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("warning: could not drop test database {}", self.url);
        }
    }
}

/// Runs one statement through the backend's admin URL (e.g. `CREATE ROLE`, `DROP ROLE`).
pub async fn admin_exec(backend: Backend, sql: &str) {
    let admin = Db::connect(&admin_url(backend)).await.expect("connecting to the test server");
    let result = run_sql(&admin, sql).await;
    admin.close().await;
    if let Err(error) = result {
        panic!("admin SQL failed on {backend:?}: {error}\n{sql}");
    }
}

async fn run_sql(db: &Db, sql: &str) -> Result<(), sqlx::Error> {
    let sql = AssertSqlSafe(sql.to_string());
    match db {
        Db::Sqlite(pool) => sqlx::raw_sql(sql).execute(pool).await.map(|_| ()),
        Db::Postgres(pool) => sqlx::raw_sql(sql).execute(pool).await.map(|_| ()),
        Db::MySql(pool) => sqlx::raw_sql(sql).execute(pool).await.map(|_| ()),
    }
}

/// Splits setup SQL into statements at semicolons outside quotes.
fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    for ch in sql.chars() {
        match (quote, ch) {
            (None, '\'' | '"') => quote = Some(ch),
            (Some(q), c) if c == q => quote = None,
            (None, ';') => {
                if !current.trim().is_empty() {
                    out.push(current.trim().to_string());
                }
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(ch);
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

/// The canonical schema: accolade's own column names, portable SQL types. Timestamps are
/// ISO-8601 text in UTC; booleans are BOOLEAN (written TRUE/FALSE).
pub const CANONICAL_SCHEMA: &str = "
CREATE TABLE users (user_id INTEGER NOT NULL, created_at TEXT NOT NULL, blocked BOOLEAN NOT NULL);
CREATE TABLE posts (user_id INTEGER NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE connections (user_id INTEGER NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE trainings (user_id INTEGER NOT NULL, training_id TEXT NOT NULL, enrolled_at TEXT, progress INTEGER, passed BOOLEAN);
";

/// `[sources]` for [`CANONICAL_SCHEMA`].
pub const CANONICAL_SOURCES: &str = r#"
users = "SELECT user_id, created_at, blocked FROM users"
posts = "SELECT user_id, created_at FROM posts"
connections = "SELECT user_id, created_at FROM connections"
trainings = "SELECT user_id, training_id, enrolled_at, progress, passed FROM trainings"
"#;

/// A schema with every source a formula can read: the canonical tables plus `kind` and
/// `thread_id` on posts, `avatar_changed` (nullable) on users, sign-ins, roles, profile
/// settings and counters. Settings and counters use their own column names, mapped to
/// `key`/`value` and `name`/`value` by [`TestHost::formula_sources`].
pub const FORMULA_SCHEMA: &str = "
CREATE TABLE users (user_id INTEGER NOT NULL, created_at TEXT NOT NULL, blocked BOOLEAN NOT NULL, avatar_changed BOOLEAN);
CREATE TABLE posts (user_id INTEGER NOT NULL, created_at TEXT NOT NULL, kind TEXT, thread_id INTEGER);
CREATE TABLE connections (user_id INTEGER NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE sign_ins (user_id INTEGER NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE trainings (user_id INTEGER NOT NULL, training_id TEXT NOT NULL, enrolled_at TEXT, progress INTEGER, passed BOOLEAN);
CREATE TABLE member_roles (user_id INTEGER NOT NULL, role TEXT NOT NULL);
CREATE TABLE profile_settings (user_id INTEGER NOT NULL, setting_key TEXT NOT NULL, setting_value TEXT);
CREATE TABLE counters (user_id INTEGER NOT NULL, counter TEXT NOT NULL, amount INTEGER);
";

impl TestHost {
    /// A host with [`FORMULA_SCHEMA`] created.
    pub async fn for_formulas() -> TestHost {
        let host = TestHost::new().await;
        host.exec(FORMULA_SCHEMA).await;
        host
    }

    /// `[sources]` for [`FORMULA_SCHEMA`], every source configured. Queries are TOML literal
    /// strings, so identifiers quoted by [`Self::ident`] need no escaping.
    pub fn formula_sources(&self) -> String {
        let (key, value) = (self.ident("key"), self.ident("value"));
        format!(
            "users = 'SELECT user_id, created_at, blocked, avatar_changed FROM users'
posts = 'SELECT user_id, created_at, kind, thread_id FROM posts'
connections = 'SELECT user_id, created_at FROM connections'
logins = 'SELECT user_id, created_at FROM sign_ins'
trainings = 'SELECT user_id, training_id, enrolled_at, progress, passed FROM trainings'
roles = 'SELECT user_id, role FROM member_roles'
settings = 'SELECT user_id, setting_key AS {key}, setting_value AS {value} FROM profile_settings'
metrics = 'SELECT user_id, counter AS name, amount AS {value} FROM counters'
"
        )
    }

    /// `name` quoted as an identifier for this backend (backticks on MySQL, double quotes on
    /// PostgreSQL, plain on SQLite), for column names a dialect reserves, like `key`.
    pub fn ident(&self, name: &str) -> String {
        match self.backend {
            Backend::Sqlite => name.to_string(),
            Backend::Postgres => format!("\"{name}\""),
            Backend::MySql => format!("`{name}`"),
        }
    }

    /// Inserts rows into `table`: each row is the SQL text between the parentheses of
    /// `VALUES (...)`.
    pub async fn insert(&self, table: &str, columns: &str, rows: &[&str]) {
        let values: Vec<String> = rows.iter().map(|r| format!("({r})")).collect();
        self.exec(&format!("INSERT INTO {table} ({columns}) VALUES {}", values.join(", "))).await;
    }

    /// `accolade explain` as a library call: every evaluable badge of the plan for one member,
    /// as of `as_of` in the plan's timezone; `None` if the id is not a member then.
    pub async fn explain(&self, plan: &Plan, user_id: i64, as_of: DateTime<Utc>) -> Option<Vec<BadgeExplanation>> {
        self.try_explain(plan, user_id, as_of).await.unwrap_or_else(|e| panic!("explain should succeed: {e:#}"))
    }

    /// [`Self::explain`] that may fail.
    pub async fn try_explain(
        &self,
        plan: &Plan,
        user_id: i64,
        as_of: DateTime<Utc>,
    ) -> anyhow::Result<Option<Vec<BadgeExplanation>>> {
        let db = Db::connect(&self.url).await?;
        let badges: Vec<_> = plan.badges.iter().collect();
        let ctx = Context { as_of, timezone: plan.timezone };
        let explained = accolade::commands::explain::explain(plan, &db, &badges, user_id, ctx).await;
        db.close().await;
        explained
    }

    /// A host on this test's backend (see [`use_backend`]; SQLite by default).
    pub async fn new() -> TestHost {
        TestHost::on(CURRENT.with(Cell::get)).await
    }

    /// A host on `backend`.
    pub async fn on(backend: Backend) -> TestHost {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = tempfile::tempdir().expect("creating a temporary directory for the host");
        let (url, database) = match backend {
            Backend::Sqlite => (format!("sqlite://{}", dir.path().join("host.db").display()), None),
            Backend::Postgres | Backend::MySql => {
                let nanos =
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
                let name =
                    format!("accolade_t{}_{}_{nanos}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
                let admin = Db::connect(&admin_url(backend)).await.expect("connecting to the test server");
                run_sql(&admin, &format!("CREATE DATABASE {name}")).await.expect("creating a test database");
                admin.close().await;
                (with_database(&admin_url(backend), &name), Some(name))
            }
        };
        let db = Db::connect_creating(&url).await.expect("connecting to the host database");
        TestHost { dir, backend, url, db, database }
    }

    /// A host with [`CANONICAL_SCHEMA`] created.
    pub async fn canonical() -> TestHost {
        let host = TestHost::new().await;
        host.exec(CANONICAL_SCHEMA).await;
        host
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database this host is on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The temporary directory the host lives in (configs and exports may go there too).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs setup SQL (one or more statements separated by `;`).
    pub async fn exec(&self, sql: &str) {
        for statement in statements(sql) {
            if let Err(error) = run_sql(&self.db, &statement).await {
                panic!("setup SQL failed on {:?}: {error}\n{statement}", self.backend);
            }
        }
    }

    /// An SQL expression for the backend's native timestamp value of an RFC 3339 instant.
    /// SQLite has no timestamp storage class: its date functions return text, so the
    /// "native" value is what `datetime()` returns, stored in a DATETIME column.
    pub fn native_timestamp(&self, rfc3339: &str) -> String {
        let instant = at(rfc3339);
        match self.backend {
            Backend::Sqlite => format!("datetime('{}')", instant.format("%Y-%m-%d %H:%M:%S")),
            Backend::Postgres => format!("TIMESTAMPTZ '{}'", instant.to_rfc3339()),
            // DATETIME has no zone; accolade reads it as UTC.
            Backend::MySql => format!("'{}'", instant.format("%Y-%m-%d %H:%M:%S")),
        }
    }

    /// The column type that holds [`Self::native_timestamp`] values.
    pub fn native_timestamp_type(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite | Backend::MySql => "DATETIME",
            Backend::Postgres => "TIMESTAMPTZ",
        }
    }

    /// Inserts members created at `created_at` (UTC text), not blocked, into the canonical
    /// `users` table.
    pub async fn add_members(&self, ids: impl IntoIterator<Item = i64>, created_at: &str) {
        let rows: Vec<String> = ids.into_iter().map(|id| format!("({id}, '{created_at}', FALSE)")).collect();
        self.exec(&format!("INSERT INTO users (user_id, created_at, blocked) VALUES {}", rows.join(", "))).await;
    }

    /// Inserts rows `(user_id, created_at)` into a canonical event table (`posts`,
    /// `connections`), one per timestamp (UTC text).
    pub async fn add_events(&self, table: &str, user_id: i64, timestamps: &[&str]) {
        let rows: Vec<String> = timestamps.iter().map(|t| format!("({user_id}, '{t}')")).collect();
        self.exec(&format!("INSERT INTO {table} (user_id, created_at) VALUES {}", rows.join(", "))).await;
    }

    /// A full config for this host with the evaluation timezone left at its default (UTC).
    /// `sources` is the body of `[sources]`; `badges` is one or more `[[badges]]` tables.
    pub fn config(&self, badges: &str, sources: &str) -> String {
        format!("[database]\nurl = \"{}\"\n\n[sources]\n{}\n\n{}\n", self.url, sources.trim(), badges.trim())
    }

    /// [`Self::config`] with `[evaluation] timezone`.
    pub fn config_in(&self, timezone: &str, badges: &str, sources: &str) -> String {
        format!(
            "[database]\nurl = \"{}\"\n\n[evaluation]\ntimezone = \"{timezone}\"\n\n[sources]\n{}\n\n{}\n",
            self.url,
            sources.trim(),
            badges.trim()
        )
    }

    /// [`Self::config_in`] whose runs wait for the run lock instead of exiting.
    pub fn config_waiting(&self, timezone: &str, badges: &str, sources: &str) -> String {
        self.config_in(timezone, badges, sources).replacen(
            "[evaluation]\n",
            "[evaluation]\nwhen_locked = \"wait\"\n",
            1,
        )
    }

    /// Writes config text to a file in the host's directory and returns its path.
    pub fn write_config(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir().join(name);
        std::fs::write(&path, text).expect("writing a config file");
        path
    }

    /// Compiles config text into a plan, panicking with every problem if it does not compile.
    pub fn plan(&self, text: &str) -> Plan {
        let raw = accolade::config::parse(text).expect("the config text should parse as TOML");
        match compile(raw) {
            Ok(plan) => plan,
            Err(errors) => panic!("the config should compile:\n{errors}\n{text}"),
        }
    }

    /// One evaluation pass as of `as_of`, like `accolade run --as-of`.
    pub async fn run(&self, plan: &Plan, as_of: DateTime<Utc>) -> RunReport {
        self.try_run(plan, as_of).await.unwrap_or_else(|e| panic!("the run should succeed: {e:#}"))
    }

    /// A run that may fail.
    pub async fn try_run(&self, plan: &Plan, as_of: DateTime<Utc>) -> anyhow::Result<RunReport> {
        self.execute(plan, as_of, false).await
    }

    /// A dry run (writes nothing).
    pub async fn dry_run(&self, plan: &Plan, as_of: DateTime<Utc>) -> RunReport {
        self.execute(plan, as_of, true).await.unwrap_or_else(|e| panic!("the dry run should succeed: {e:#}"))
    }

    async fn execute(&self, plan: &Plan, as_of: DateTime<Utc>, dry_run: bool) -> anyhow::Result<RunReport> {
        let db = Db::connect(&self.url).await?;
        let store = Store::new(db.clone());
        let report = execute(plan, &db, &store, Some(as_of), dry_run, &[]).await;
        db.close().await;
        report
    }

    /// A run with every option (shards, badges, a stop flag).
    pub async fn run_with(&self, plan: &Plan, options: &RunOptions) -> RunReport {
        let db = Db::connect(&self.url).await.expect("connecting to the host");
        let store = Store::new(db.clone());
        let report = execute_with(plan, &db, &store, options).await;
        db.close().await;
        report.unwrap_or_else(|e| panic!("the run should succeed: {e:#}"))
    }

    /// A manual award, like `accolade award --badge ID --users ...`.
    pub async fn award(&self, plan: &Plan, badge_id: &str, ids: &[i64]) -> anyhow::Result<AwardReport> {
        let db = Db::connect(&self.url).await?;
        let store = Store::new(db.clone());
        let report = award(plan, &db, &store, badge_id, ids).await;
        db.close().await;
        report
    }

    /// The awards store of this host (its own database), on the host's connection pool.
    pub fn store(&self) -> Store {
        Store::new(self.db.clone())
    }

    /// The server database's name (PostgreSQL and MySQL).
    pub fn database_name(&self) -> Option<&str> {
        self.database.as_deref()
    }

    /// The host's URL with `user` (no password) instead of the admin account.
    pub fn url_as(&self, user: &str) -> String {
        let (scheme, rest) = self.url.split_once("://").expect("a server URL has a scheme");
        let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        format!("{scheme}://{user}@{host}")
    }

    /// The first column of the first row of `sql` as an integer, or `None` if the query fails
    /// (e.g. its table does not exist yet).
    pub async fn try_count(&self, sql: &str) -> Option<i64> {
        let sql = AssertSqlSafe(sql.to_string());
        let count = match &self.db {
            Db::Sqlite(pool) => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await,
            Db::Postgres(pool) => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await,
            Db::MySql(pool) => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await,
        };
        count.ok()
    }

    /// The first column of the first row of `sql` as an integer.
    pub async fn count(&self, sql: &str) -> i64 {
        self.try_count(sql).await.unwrap_or_else(|| panic!("the query should return an integer: {sql}"))
    }

    /// The first column of the first row of `sql` as text (NULL as `None`).
    pub async fn text(&self, sql: &str) -> Option<String> {
        let query = AssertSqlSafe(sql.to_string());
        let text = match &self.db {
            Db::Sqlite(pool) => sqlx::query_scalar::<_, Option<String>>(query).fetch_one(pool).await,
            Db::Postgres(pool) => sqlx::query_scalar::<_, Option<String>>(query).fetch_one(pool).await,
            Db::MySql(pool) => sqlx::query_scalar::<_, Option<String>>(query).fetch_one(pool).await,
        };
        text.unwrap_or_else(|e| panic!("the query should return text: {e}\n{sql}"))
    }

    /// Every award as `(badge_id, user_id)`, sorted.
    pub async fn awards(&self) -> Vec<(String, i64)> {
        self.stored_awards().await.into_iter().map(|a| (a.badge_id, a.user_id)).collect()
    }

    /// The members holding one badge, sorted.
    pub async fn holders(&self, badge_id: &str) -> Vec<i64> {
        self.awards().await.into_iter().filter(|(b, _)| b == badge_id).map(|(_, u)| u).collect()
    }

    /// Every award row, sorted by badge then member.
    pub async fn stored_awards(&self) -> Vec<StoredAward> {
        self.store().awards(&[]).await.expect("reading the awards table")
    }

    /// The badges as the awards database records them.
    pub async fn stored_badges(&self) -> Vec<StoredBadge> {
        self.store().badges().await.expect("reading the badges table")
    }

    /// Whether the evaluator's tables exist.
    pub async fn is_migrated(&self) -> bool {
        self.store().is_migrated().await.expect("inspecting the awards database")
    }
}

/// An instant from RFC 3339 text.
pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("'{rfc3339}' is not RFC 3339: {e}"))
        .with_timezone(&Utc)
}

/// A published badge whose name is its id.
pub fn badge(id: &str, rule: &str) -> String {
    format!("[[badges]]\nid = \"{id}\"\nname = \"{id}\"\nrule = {rule}\n\n")
}

/// A published badge with a formula (escaped for a TOML basic string) whose name is its id.
pub fn formula_badge(id: &str, formula: &str) -> String {
    format!("[[badges]]\nid = \"{id}\"\nname = \"{id}\"\nformula = {}\n\n", toml_string(formula))
}

/// [`formula_badge`] counting only activity since `since` (a date literal).
pub fn formula_badge_since(id: &str, formula: &str, since: &str) -> String {
    format!(
        "[[badges]]\nid = \"{id}\"\nname = \"{id}\"\nactivity_since = \"{since}\"\nformula = {}\n\n",
        toml_string(formula)
    )
}

/// `text` as a TOML basic string.
pub fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// What one invocation of the `accolade` binary did.
pub struct BinaryRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl BinaryRun {
    /// Everything it said, for assertion messages.
    pub fn describe(&self) -> String {
        format!("exit {}\n--- stdout\n{}\n--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

/// Runs the `accolade` binary with `args`, isolated from the environment's config settings.
pub fn accolade_binary(args: &[&str]) -> BinaryRun {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_accolade"))
        .args(args)
        .env_remove("ACCOLADE_CONFIG")
        .env_remove("ACCOLADE_DATABASE_URL")
        .env_remove("ACCOLADE_AWARDS_DATABASE_URL")
        .env_remove("ACCOLADE_LOG")
        .output()
        .expect("running the accolade binary");
    BinaryRun {
        code: output.status.code().expect("accolade exits with a code, not a signal"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A published manual badge whose name is its id.
pub fn manual_badge(id: &str) -> String {
    format!("[[badges]]\nid = \"{id}\"\nname = \"{id}\"\nmanual = true\n\n")
}

/// `(badge_id, user_id)` pairs, for comparing with [`TestHost::awards`].
pub fn pairs(items: &[(&str, i64)]) -> Vec<(String, i64)> {
    items.iter().map(|(b, u)| (b.to_string(), *u)).collect()
}

/// The status a run report gives one badge.
pub fn status<'a>(report: &'a RunReport, badge_id: &str) -> &'a str {
    report
        .badges
        .iter()
        .find(|b| b.badge_id == badge_id)
        .map(|b| b.status)
        .unwrap_or_else(|| panic!("the report has no badge '{badge_id}'"))
}
