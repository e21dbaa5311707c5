//! Open Badges exports through the real binary: the documents validate against 1EdTech's
//! published 3.0 schemas (and schemas written from the 2.0 spec, for which 1EdTech publishes
//! none), recipients are hashed with a salt per award, revocation shows as each version says,
//! and signed 3.0 credentials verify with the published key. See tests/fixtures/openbadges.

use crate::support::*;
use accolade::openbadges::identity_hash;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rstest::rstest;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

const ISSUER: &str = r#"
[issuer]
id = "https://badges.example.org/ob/issuer.json"
name = "Example Community"
url = "https://community.example.org/"
email = "badges@example.org"
"#;

const SCHEMA: &str = "
CREATE TABLE users (user_id INTEGER NOT NULL, created_at TEXT NOT NULL, blocked BOOLEAN NOT NULL, email TEXT);
CREATE TABLE posts (user_id INTEGER NOT NULL, created_at TEXT NOT NULL);
";

const SOURCES: &str = r#"
users = "SELECT user_id, created_at, blocked, email FROM users"
posts = "SELECT user_id, created_at FROM posts"
"#;

/// A host where members 1-3 wrote posts (1 twice) and member 4 has no email; badges
/// `poster` (1 post) and `prolific` (2 posts, with its own description and criteria) are
/// awarded, and member 2's `poster` is revoked. Returns the config path.
async fn awarded_host() -> (TestHost, PathBuf) {
    let host = TestHost::new().await;
    host.exec(SCHEMA).await;
    host.exec(
        "INSERT INTO users VALUES (1, '2026-01-01T00:00:00Z', FALSE, 'Alice@Example.org'), \
         (2, '2026-01-01T00:00:00Z', FALSE, 'bob@example.org'), (3, '2026-01-01T00:00:00Z', FALSE, 'carol@example.org'), \
         (4, '2026-01-01T00:00:00Z', FALSE, NULL)",
    )
    .await;
    for (user, posts) in [(1, 2), (2, 1), (3, 1), (4, 1)] {
        let times: Vec<String> = (0..posts).map(|i| format!("2026-02-0{}T10:00:00Z", i + 1)).collect();
        let times: Vec<&str> = times.iter().map(String::as_str).collect();
        host.add_events("posts", user, &times).await;
    }
    let badges = format!(
        "{}[[badges]]\nid = \"prolific\"\nname = \"Prolific & <Proud>\"\ndescription = \"Writes a lot.\"\n\
         criteria = \"Write two posts.\"\nimage = \"img/prolific.png\"\nrule = {{ type = \"posts_sent\", min = 2 }}\n",
        badge("poster", r#"{ type = "posts_sent", min = 1 }"#)
    );
    let text = format!("{}\n{ISSUER}", host.config(&badges, SOURCES));
    let plan = host.plan(&text);
    host.run(&plan, at("2026-03-01T12:00:00Z")).await;
    let config = host.write_config("accolade.toml", &text);
    let revoked = accolade_binary(&[
        "--config",
        path(&config),
        "revoke",
        "--badge",
        "poster",
        "--users",
        "2",
        "--reason",
        "Posted spam",
    ]);
    assert_eq!(revoked.code, 0, "{}", revoked.describe());
    (host, config)
}

fn path(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

fn export(config: &Path, format: &str, out: &Path, extra: &[&str]) -> BinaryRun {
    let mut args = vec!["--config", path(config), "awards", "export", "--format", format, "--out", path(out)];
    args.extend_from_slice(extra);
    accolade_binary(&args)
}

fn read_json(file: &Path) -> Value {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", file.display()))
}

/// A validator for a vendored schema, checking formats (date-time, email) too.
fn validator(fixture: &str) -> jsonschema::Validator {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/openbadges").join(fixture);
    jsonschema::options()
        .should_validate_formats(true)
        .build(&read_json(&file))
        .unwrap_or_else(|e| panic!("{fixture} is not a usable schema: {e}"))
}

fn assert_valid(validator: &jsonschema::Validator, document: &Value, what: &str) {
    let errors: Vec<String> =
        validator.iter_errors(document).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{what} is invalid:\n{}\n{document:#}", errors.join("\n"));
}

/// Every `*.json` under `dir/sub`, by path relative to `dir`.
fn documents(dir: &Path, sub: &str) -> BTreeMap<String, Value> {
    let mut found = BTreeMap::new();
    let mut stack = vec![dir.join(sub)];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap_or_else(|e| panic!("listing {}: {e}", folder.display())) {
            let entry_path = entry.expect("a directory entry").path();
            if entry_path.is_dir() {
                stack.push(entry_path);
            } else if entry_path.extension().is_some_and(|e| e == "json") {
                let relative = entry_path.strip_prefix(dir).expect("under the export directory");
                found.insert(relative.display().to_string(), read_json(&entry_path));
            }
        }
    }
    found
}

#[rstest]
#[tokio::test]
async fn open_badges_3_credentials_validate_against_1edtech_schemas_and_list_revocations(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let (host, config) = awarded_host().await;
    let out = host.dir().join("ob3");
    let exported = export(&config, "openbadges-v3", &out, &[]);
    assert_eq!(exported.code, 0, "{}", exported.describe());
    // Member 4 has no email: their poster award is left out and reported.
    assert!(exported.stderr.contains("skipped 1 award(s): the member has no email"), "{}", exported.describe());

    // The default form: Open Badges 3.0.3 on the VC Data Model 2.0, checked with 1EdTech's
    // 3.0.3 schema (which also requires the contexts in order).
    let credential_schema = validator("v3/ob_v3p0_achievementcredential-jsonschema1.json");
    let credentials = documents(&out, "credentials");
    let names: Vec<&str> = credentials.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "credentials/poster/1.json",
            "credentials/poster/2.json",
            "credentials/poster/3.json",
            "credentials/prolific/1.json"
        ]
    );
    for (name, credential) in &credentials {
        assert_valid(&credential_schema, credential, name);
        assert_eq!(credential["@context"][0], "https://www.w3.org/ns/credentials/v2", "{name}");
        assert_eq!(credential["@context"][1], "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json");
        let types: Vec<&str> =
            credential["type"].as_array().expect("type is an array").iter().filter_map(Value::as_str).collect();
        assert_eq!(types, ["VerifiableCredential", "OpenBadgeCredential"], "{name}");
        assert_eq!(credential["id"], format!("https://badges.example.org/ob/{name}"), "ids mirror the files");
        assert_eq!(credential["issuer"]["id"], "https://badges.example.org/ob/issuer.json");
        assert_eq!(credential["validFrom"], "2026-03-01T12:00:00Z");
        assert!(credential.get("issuanceDate").is_none(), "{name}: a 1.1 field in a 2.0 credential");
        assert!(credential.get("validUntil").is_none(), "{name}: awards have no end");
        assert_eq!(
            credential["credentialSchema"][0]["id"],
            "https://purl.imsglobal.org/spec/ob/v3p0/schema/json/ob_v3p0_achievementcredential-jsonschema1.json"
        );
        assert_eq!(credential["credentialSchema"][0]["type"], "1EdTechJsonSchemaValidator2019");
    }
    assert!(exported.stdout.contains("Open Badges 3.0 credential(s) (VC Data Model 2.0)"), "{}", exported.describe());
    let prolific = &credentials["credentials/prolific/1.json"]["credentialSubject"]["achievement"];
    assert_eq!(prolific["name"], "Prolific & <Proud>");
    assert_eq!(prolific["description"], "Writes a lot.");
    assert_eq!(prolific["criteria"]["narrative"], "Write two posts.");
    assert_eq!(prolific["image"]["id"], "https://community.example.org/img/prolific.png");
    let poster = &credentials["credentials/poster/3.json"]["credentialSubject"]["achievement"];
    assert_eq!(poster["criteria"]["narrative"], "Awarded to members who have written at least 1 post or comment.");

    let profile_schema = validator("v3/ob_v3p0_profile-jsonschema1.json");
    let issuer = read_json(&out.join("issuer.json"));
    assert_valid(&profile_schema, &issuer, "issuer.json");
    assert_eq!(issuer["@context"][0], "https://www.w3.org/ns/credentials/v2");
    for achievement in documents(&out, "achievements").values() {
        assert_eq!(achievement["type"][0], "Achievement");
        assert_eq!(achievement["@context"][1], "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json");
        assert_valid(
            &credential_schema,
            &with_achievement(&credentials["credentials/poster/1.json"], achievement),
            "achievement",
        );
    }
    let revocations = read_json(&out.join("revocations.json"));
    assert_eq!(credentials["credentials/poster/2.json"]["credentialStatus"]["id"], revocations["id"]);
    assert_eq!(credentials["credentials/poster/2.json"]["credentialStatus"]["type"], "1EdTechRevocationList");
    let revoked = revocations["revokedCredentials"].as_array().expect("a list of revoked credentials");
    assert_eq!(revoked.len(), 1, "{revocations:#}");
    assert_eq!(revoked[0]["id"], "https://badges.example.org/ob/credentials/poster/2.json");
    assert_eq!(revoked[0]["revocationReason"], "Posted spam");
}

/// `--vc 1.1` keeps the VC Data Model 1.1 form for older wallets: `issuanceDate`, the 1.1 and
/// 3.0.2 contexts, valid against 1EdTech's 1.1-era schemas, and revocation as in 2.0.
#[tokio::test]
async fn open_badges_3_credentials_in_the_vc_1_1_form_validate_against_the_1_1_era_schemas() {
    let (host, config) = awarded_host().await;
    let out = host.dir().join("ob3-vc11");
    let exported = export(&config, "openbadges-v3", &out, &["--vc", "1.1"]);
    assert_eq!(exported.code, 0, "{}", exported.describe());
    assert!(exported.stdout.contains("(VC Data Model 1.1)"), "{}", exported.describe());
    let credential_schema = validator("v3/achievementcredential.json");
    let credentials = documents(&out, "credentials");
    assert_eq!(credentials.len(), 4);
    for (name, credential) in &credentials {
        assert_valid(&credential_schema, credential, name);
        assert_eq!(credential["@context"][0], "https://www.w3.org/2018/credentials/v1", "{name}");
        assert_eq!(credential["@context"][1], "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.2.json");
        assert_eq!(credential["issuanceDate"], "2026-03-01T12:00:00Z");
        assert!(credential.get("validFrom").is_none(), "{name}");
        assert!(credential.get("credentialSchema").is_none(), "{name}: the 3.0.3 schema is for the 2.0 form");
    }
    assert_valid(&validator("v3/profile.json"), &read_json(&out.join("issuer.json")), "issuer.json");
    let revocations = read_json(&out.join("revocations.json"));
    assert_eq!(credentials["credentials/poster/2.json"]["credentialStatus"]["id"], revocations["id"]);
    assert_eq!(revocations["revokedCredentials"][0]["id"], "https://badges.example.org/ob/credentials/poster/2.json");

    let refused = export(&config, "openbadges-v2", &host.dir().join("ob2-vc"), &["--vc", "1.1"]);
    assert_eq!(refused.code, 2, "{}", refused.describe());
    assert!(refused.stderr.contains("--vc applies to openbadges-v3"), "{}", refused.describe());
}

/// `credential` with its achievement replaced, to validate an exported Achievement document
/// with the schema that defines it (it has no schema of its own).
fn with_achievement(credential: &Value, achievement: &Value) -> Value {
    let mut credential = credential.clone();
    let mut achievement = achievement.clone();
    achievement.as_object_mut().map(|a| a.remove("@context"));
    credential["credentialSubject"]["achievement"] = achievement;
    credential
}

#[rstest]
#[tokio::test]
async fn open_badges_2_documents_meet_the_spec_and_show_revocation_in_the_assertion(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let (host, config) = awarded_host().await;
    let out = host.dir().join("ob2");
    let exported = export(&config, "openbadges-v2", &out, &[]);
    assert_eq!(exported.code, 0, "{}", exported.describe());
    assert!(
        exported.stdout.contains("wrote 4 Open Badges 2.0 assertion(s) (1 revoked) for 2 badge(s)"),
        "{}",
        exported.describe()
    );

    let assertion_schema = validator("v2/assertion.schema.json");
    let assertions = documents(&out, "assertions");
    assert_eq!(assertions.len(), 4);
    for (name, assertion) in &assertions {
        assert_valid(&assertion_schema, assertion, name);
        let badge_file = assertion["badge"].as_str().and_then(|u| u.strip_prefix("https://badges.example.org/ob/"));
        assert!(badge_file.is_some_and(|f| out.join(f).is_file()), "{name}: its badge is exported beside it");
    }
    let revoked = &assertions["assertions/poster/2.json"];
    assert_eq!(revoked["revoked"], true);
    assert_eq!(revoked["revocationReason"], "Posted spam");
    assert!(assertions["assertions/poster/1.json"].get("revoked").is_none());

    let badge_schema = validator("v2/badgeclass.schema.json");
    for (name, badge) in documents(&out, "badges") {
        assert_valid(&badge_schema, &badge, &name);
    }
    assert_valid(&validator("v2/profile.schema.json"), &read_json(&out.join("issuer.json")), "issuer.json");
}

#[tokio::test]
async fn recipients_are_hashed_with_a_salt_per_award_and_reexports_are_identical() {
    let (host, config) = awarded_host().await;
    let first = host.dir().join("first");
    let second = host.dir().join("second");
    for out in [&first, &second] {
        let exported = export(&config, "openbadges-v2", out, &[]);
        assert_eq!(exported.code, 0, "{}", exported.describe());
    }
    let one = documents(&first, "assertions");
    assert_eq!(one, documents(&second, "assertions"), "a re-export hashes every recipient the same way");

    // Member 1 holds two badges: neither their salts nor their hashes link the two awards.
    let poster = &one["assertions/poster/1.json"]["recipient"];
    let prolific = &one["assertions/prolific/1.json"]["recipient"];
    assert_ne!(poster["salt"], prolific["salt"]);
    assert_ne!(poster["identity"], prolific["identity"]);
    let salts: HashSet<&str> = one.values().filter_map(|a| a["recipient"]["salt"].as_str()).collect();
    assert_eq!(salts.len(), one.len(), "every award has its own salt");
    for (recipient, email) in [(poster, "alice@example.org"), (prolific, "alice@example.org")] {
        let salt = recipient["salt"].as_str().expect("a salt");
        assert_eq!(salt.len(), 32, "128 random bits as hex");
        assert_eq!(recipient["identity"], identity_hash(email, salt), "sha256$hex(sha256(email + salt))");
    }
    // The 3.0 export of the same award uses the same stored salt.
    let v3 = host.dir().join("v3");
    assert_eq!(export(&config, "openbadges-v3", &v3, &[]).code, 0);
    let identifier = &read_json(&v3.join("credentials/poster/1.json"))["credentialSubject"]["identifier"][0];
    assert_eq!(identifier["salt"], poster["salt"]);
    assert_eq!(identifier["identityHash"], poster["identity"]);
}

/// An issuer key file in `dir`: an Ed25519 PKCS#8 key made by ring, or an RSA key made by
/// `openssl genpkey` (PKCS#8) and turned into PKCS#1 (`-----BEGIN RSA PRIVATE KEY-----`) by
/// `openssl rsa -traditional`.
fn issuer_key(dir: &Path, kind: &str) -> PathBuf {
    let key_file = dir.join(format!("issuer-{kind}.pem"));
    let openssl = |args: &[&str]| {
        let done = std::process::Command::new("openssl").args(args).output().expect("running openssl");
        assert!(done.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&done.stderr));
    };
    match kind {
        "ed25519" => {
            let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
                .expect("generating an Ed25519 key");
            std::fs::write(&key_file, pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8.as_ref().to_vec())))
                .expect("writing the key file");
        }
        "rsa" => {
            openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path(&key_file)])
        }
        _ => {
            let pkcs8 = dir.join("issuer-rsa-pkcs8.pem");
            openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path(&pkcs8)]);
            openssl(&["rsa", "-in", path(&pkcs8), "-traditional", "-out", path(&key_file)]);
        }
    }
    key_file
}

#[rstest]
#[tokio::test]
async fn signed_credentials_are_vc_jwts_that_verify_with_the_published_key(
    #[values("ed25519", "rsa", "rsa-pkcs1")] kind: &str,
    #[values("2.0", "1.1")] vc: &str,
) {
    let (host, config) = awarded_host().await;
    let key_file = issuer_key(host.dir(), kind);
    let out = host.dir().join("signed");
    let exported = export(&config, "openbadges-v3", &out, &["--sign", path(&key_file), "--vc", vc]);
    assert_eq!(exported.code, 0, "{}", exported.describe());

    let expected = if kind == "ed25519" { Algorithm::EdDSA } else { Algorithm::RS256 };
    let keys = read_json(&out.join("jwks.json"));
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(keys["keys"][0].clone()).expect("a JWK");
    let kid = jwk.common.key_id.clone().expect("the published key has a kid");
    // The kid is a URL inside the export: jwks.json, with the key's id as its fragment.
    let kid_url = url::Url::parse(&kid).expect("the kid is a URL");
    assert_eq!(kid_url.as_str().split('#').next(), Some("https://badges.example.org/ob/jwks.json"), "{kid}");
    assert!(kid_url.fragment().is_some_and(|f| !f.is_empty()), "{kid}");
    let key = DecodingKey::from_jwk(&jwk).expect("a usable public key");
    let mut validation = Validation::new(expected);
    validation.required_spec_claims = HashSet::from(["iss".to_string(), "jti".to_string(), "nbf".to_string()]);
    validation.validate_exp = false;
    let mut verified = 0;
    for (name, credential) in documents(&out, "credentials") {
        let jwt_file = out.join(&name).with_extension("jwt");
        let token = std::fs::read_to_string(&jwt_file).expect("a .jwt beside each credential");
        let header = jsonwebtoken::decode_header(&token).expect("a JOSE header");
        assert_eq!(header.alg, expected);
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        assert_eq!(header.kid, jwk.common.key_id, "{name}");
        let data = jsonwebtoken::decode::<Value>(&token, &key, &validation)
            .unwrap_or_else(|e| panic!("{name}: the signature does not verify: {e}"));
        // VC Data Model 2.0 (VC-JOSE): the payload is the credential with the JWT claims
        // added; 1.1: the credential is the `vc` claim.
        let carried = match vc {
            "2.0" => {
                let mut payload = data.claims.clone();
                for claim in ["iss", "jti", "nbf"] {
                    payload.as_object_mut().map(|p| p.remove(claim));
                }
                assert!(data.claims.get("vc").is_none(), "{name}: no vc claim in the 2.0 form");
                payload
            }
            _ => data.claims["vc"].clone(),
        };
        assert_eq!(carried, credential, "{name}: the token carries the credential");
        assert_eq!(data.claims["iss"], credential["issuer"]["id"]);
        assert_eq!(data.claims["jti"], credential["id"]);
        let issued = if vc == "2.0" { &credential["validFrom"] } else { &credential["issuanceDate"] };
        assert_eq!(issued, "2026-03-01T12:00:00Z");
        assert_eq!(data.claims["nbf"], at("2026-03-01T12:00:00Z").timestamp());
        verified += 1;
    }
    assert_eq!(verified, 4);

    // A token changed after signing no longer verifies.
    let token = std::fs::read_to_string(out.join("credentials/poster/1.jwt")).expect("a token");
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    parts[1] = parts[1].replacen('e', "f", 1);
    assert!(jsonwebtoken::decode::<Value>(&parts.join("."), &key, &validation).is_err());
}

#[tokio::test]
async fn exports_name_what_is_missing_for_open_badges() {
    let host = TestHost::new().await;
    host.exec(SCHEMA).await;
    let badges = badge("poster", r#"{ type = "posts_sent", min = 1 }"#);
    let out = host.dir().join("out");

    let no_issuer = host.write_config("no-issuer.toml", &host.config(&badges, SOURCES));
    let run = export(&no_issuer, "openbadges-v3", &out, &[]);
    assert_eq!(run.code, 2, "{}", run.describe());
    assert!(run.stderr.contains("no [issuer]"), "{}", run.describe());

    let without_email = SOURCES.replace(", email FROM users", " FROM users");
    let no_email = host.write_config("no-email.toml", &format!("{}\n{ISSUER}", host.config(&badges, &without_email)));
    let run = export(&no_email, "openbadges-v2", &out, &[]);
    assert_eq!(run.code, 2, "{}", run.describe());
    assert!(run.stderr.contains("source 'users' has no column 'email'"), "{}", run.describe());

    let config = host.write_config("ok.toml", &format!("{}\n{ISSUER}", host.config(&badges, SOURCES)));
    let run = export(&config, "openbadges-v2", &out, &["--sign", "key.pem"]);
    assert_eq!(run.code, 2, "{}", run.describe());
    assert!(run.stderr.contains("--sign applies to openbadges-v3"), "{}", run.describe());
    let garbage = host.dir().join("garbage.pem");
    std::fs::write(&garbage, "not a key").expect("writing a file");
    let run = export(&config, "openbadges-v3", &out, &["--sign", path(&garbage)]);
    assert_eq!(run.code, 2, "{}", run.describe());
    assert!(run.stderr.contains("not a PEM file"), "{}", run.describe());

    let bad_issuer = ISSUER.replace("https://badges.example.org/ob/issuer.json", "ftp://badges.example.org/x");
    let raw = accolade::config::parse(&format!("{}\n{bad_issuer}", host.config(&badges, SOURCES))).expect("TOML");
    let errors = accolade::config::plan::compile(raw).expect_err("an ftp issuer id is refused").to_string();
    assert!(errors.contains("[issuer] id = 'ftp://badges.example.org/x': expected an http or https URL"), "{errors}");
}

#[tokio::test]
async fn a_revoked_award_stops_counting_and_is_never_awarded_again_until_restored() {
    let (host, config) = awarded_host().await;
    let plan = host.plan(&std::fs::read_to_string(&config).expect("the config"));
    let again = host.run(&plan, at("2026-03-02T12:00:00Z")).await;
    assert_eq!(again.total_new_awards(), 0, "the revoked award keeps its row");
    let board = host.store().leaderboard(None, None).await.expect("the leaderboard");
    assert!(board.iter().all(|row| row.user_id != 2), "member 2's only badge is revoked: {board:?}");
    let recipients = |stored: Vec<accolade::store::StoredBadge>| {
        stored.into_iter().find(|b| b.badge_id == "poster").and_then(|b| b.recipients)
    };
    assert_eq!(recipients(host.stored_badges().await), Some(3));

    let restore =
        accolade_binary(&["--config", path(&config), "revoke", "--badge", "poster", "--users", "2,9", "--undo"]);
    assert_eq!(restore.code, 1, "member 9 does not hold the badge: {}", restore.describe());
    assert!(restore.stdout.contains("restored for 1 member(s)"), "{}", restore.describe());
    assert!(restore.stdout.contains("members without the badge (nothing to restore): 9"), "{}", restore.describe());
    assert_eq!(recipients(host.stored_badges().await), Some(4));
}

#[tokio::test]
async fn check_warns_when_an_issuer_is_set_but_the_users_source_has_no_email() {
    let host = TestHost::new().await;
    host.exec(SCHEMA).await;
    let badges = badge("poster", r#"{ type = "posts_sent", min = 1 }"#);
    let without_email = SOURCES.replace(", email FROM users", " FROM users");
    for (sources, warned) in [(SOURCES.to_string(), false), (without_email, true)] {
        let config = host.write_config("check.toml", &format!("{}\n{ISSUER}", host.config(&badges, &sources)));
        let report = accolade::commands::check::report(&config).await;
        assert!(report.problems.is_empty(), "{:#?}", report.problems);
        let warns = report.warnings.iter().any(|w| w.contains("[issuer] is set but source 'users' returns no 'email'"));
        assert_eq!(warns, warned, "{:#?}", report.warnings);
    }
}

/// A monthly badge earned in January and February by member 1: one 2.0 assertion and one 3.0
/// credential per grant, each with its own id (the grant in its file name), its own salt, and
/// valid against the schemas; revoking one grant by hand revokes only that document.
#[rstest]
#[tokio::test]
async fn each_grant_of_a_repeating_badge_is_its_own_assertion_and_credential(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::new().await;
    host.exec(SCHEMA).await;
    host.exec("INSERT INTO users VALUES (1, '2025-01-01T00:00:00Z', FALSE, 'alice@example.org')").await;
    host.add_events("posts", 1, &["2026-01-10T10:00:00Z", "2026-02-10T10:00:00Z"]).await;
    let badges =
        "[[badges]]\nid = \"monthly\"\nname = \"Monthly\"\nrepeat = \"month\"\nformula = \"count(posts) >= 1\"\n";
    let text = format!("{}\n{ISSUER}", host.config(badges, SOURCES));
    host.run(&host.plan(&text), at("2026-03-01T12:00:00Z")).await;
    let config = host.write_config("accolade.toml", &text);
    let revoked = accolade_binary(&[
        "--config",
        path(&config),
        "revoke",
        "--badge",
        "monthly",
        "--grant",
        "2026-01",
        "--users",
        "1",
        "--reason",
        "Duplicate",
    ]);
    assert_eq!(revoked.code, 0, "{}", revoked.describe());

    let out = host.dir().join("ob2");
    let exported = export(&config, "openbadges-v2", &out, &[]);
    assert_eq!(exported.code, 0, "{}", exported.describe());
    let assertions = documents(&out, "assertions");
    let names: Vec<&str> = assertions.keys().map(String::as_str).collect();
    assert_eq!(names, ["assertions/monthly/1-2026-01.json", "assertions/monthly/1-2026-02.json"]);
    let schema = validator("v2/assertion.schema.json");
    for (name, assertion) in &assertions {
        assert_valid(&schema, assertion, name);
    }
    let january = &assertions["assertions/monthly/1-2026-01.json"];
    let february = &assertions["assertions/monthly/1-2026-02.json"];
    assert_ne!(january["id"], february["id"]);
    assert_ne!(january["recipient"]["salt"], february["recipient"]["salt"], "a salt per grant");
    assert_eq!(january["revoked"], true);
    assert!(february.get("revoked").is_none(), "{february}");

    let out = host.dir().join("ob3");
    let exported = export(&config, "openbadges-v3", &out, &[]);
    assert_eq!(exported.code, 0, "{}", exported.describe());
    let credentials = documents(&out, "credentials");
    let names: Vec<&str> = credentials.keys().map(String::as_str).collect();
    assert_eq!(names, ["credentials/monthly/1-2026-01.json", "credentials/monthly/1-2026-02.json"]);
    let revocations = read_json(&out.join("revocations.json"));
    let listed: Vec<&str> =
        revocations["revokedCredentials"].as_array().expect("a list").iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(listed, [credentials["credentials/monthly/1-2026-01.json"]["id"].as_str().expect("an id")]);
}

/// `node tests/jsonld/expand.mjs FILES...`: jsonld.js expanding each document in safe mode with
/// the bundled contexts. `None` (the test skips, and says so) when node or jsonld.js is missing
/// and `CI` is not set; with `CI` set that is a failure.
fn expand_in_safe_mode(files: &[PathBuf]) -> Option<std::process::Output> {
    node_script("expand.mjs", files)
}

/// `node tests/jsonld/SCRIPT ARGS...` with jsonld.js; `None` (a skip, said so) as for
/// [`expand_in_safe_mode`].
fn node_script(script: &str, args: &[PathBuf]) -> Option<std::process::Output> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jsonld");
    let installed = dir.join("node_modules/jsonld").is_dir();
    let node = std::process::Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if !(installed && node) {
        let why = "node or jsonld.js is missing (run .ci/jsonld)";
        assert!(std::env::var_os("CI").is_none(), "{why}, and CI is set: the JSON-LD test must run");
        announce_skip(why);
        return None;
    }
    let output = std::process::Command::new("node")
        .arg(dir.join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running node tests/jsonld/{script}: {e}"));
    Some(output)
}

/// Every JSON-LD document (`@context`) under `dir`.
fn json_ld_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["", "badges", "achievements", "assertions", "credentials"]
        .iter()
        .filter(|sub| dir.join(sub).is_dir())
        .flat_map(|sub| documents(dir, sub).into_iter().filter(|(_, doc)| doc.get("@context").is_some()))
        .map(|(relative, _)| dir.join(relative))
        .collect();
    files.sort();
    files.dedup();
    files
}

/// Every 2.0 and 3.0 document of an export (revoked awards included) expands under JSON-LD
/// safe mode with only its declared, bundled contexts; a credential without 1EdTech's
/// extensions context does not (its revocation list type is then a relative IRI), so the check
/// can fail.
#[tokio::test]
async fn every_exported_document_expands_in_json_ld_safe_mode_with_its_declared_contexts() {
    let (host, config) = awarded_host().await;
    let mut files = Vec::new();
    for (format, dir, awards, extra) in [
        ("openbadges-v2", "ob2", "/assertions/", &[][..]),
        ("openbadges-v3", "ob3", "/credentials/", &[][..]),
        ("openbadges-v3", "ob3-vc11", "/credentials/", &["--vc", "1.1"][..]),
    ] {
        let out = host.dir().join(dir);
        let exported = export(&config, format, &out, extra);
        assert_eq!(exported.code, 0, "{}", exported.describe());
        let found = json_ld_files(&out);
        assert_eq!(found.iter().filter(|f| f.to_string_lossy().contains(awards)).count(), 4, "{found:?}");
        files.extend(found);
    }
    assert!(files.len() >= 18, "issuer, badges and awards of both versions and both 3.0 forms: {files:?}");
    let Some(output) = expand_in_safe_mode(&files) else { return };
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(stdout.lines().filter(|l| l.starts_with("ok ")).count(), files.len(), "{stdout}");

    // Without the extensions context, a credential of either form fails, on the first
    // 1EdTech type it meets (the revocation list, or the 2.0 form's schema validator).
    for form in ["/ob3/", "/ob3-vc11/"] {
        let credential = files
            .iter()
            .find(|f| f.to_string_lossy().contains(form) && f.to_string_lossy().contains("/credentials/"))
            .expect("a credential");
        let mut document = read_json(credential);
        let contexts = document["@context"].as_array_mut().expect("a context list");
        contexts.retain(|c| !c.as_str().is_some_and(|c| c.ends_with("/extensions.json")));
        let without = host.dir().join("without-extensions.json");
        std::fs::write(&without, serde_json::to_vec(&document).expect("JSON")).expect("writing the copy");
        let Some(output) = expand_in_safe_mode(&[without]) else { return };
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(!output.status.success(), "{form}: {stdout}");
        let named = ["1EdTechRevocationList", "1EdTechJsonSchemaValidator2019"].iter().any(|t| stdout.contains(t));
        assert!(stdout.contains("relative @type reference") && named, "{form}: {stdout}");
    }
}

/// A 3×2 RGBA PNG, encoded by the `png` crate.
fn png_image() -> (Vec<u8>, Vec<u8>) {
    let pixels: Vec<u8> = (0..3 * 2 * 4).map(|i| (i * 37 % 256) as u8).collect();
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, 3, 2);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().expect("a PNG header");
    writer.write_image_data(&pixels).expect("PNG pixels");
    writer.finish().expect("a whole PNG");
    (bytes, pixels)
}

/// What a PNG carries under `keyword` (read by the `png` crate, not accolade), and its pixels.
fn unbake_png(file: &Path, keyword: &str) -> (Vec<String>, Vec<u8>) {
    let reader = std::io::BufReader::new(std::fs::File::open(file).expect("a baked PNG"));
    let mut decoder = png::Decoder::new(reader).read_info().expect("a readable PNG");
    let texts: Vec<String> = decoder
        .info()
        .utf8_text
        .iter()
        .filter(|chunk| chunk.keyword == keyword)
        .map(|chunk| {
            assert!(!chunk.compressed, "{}: baking must not compress", file.display());
            chunk.get_text().expect("UTF-8 text")
        })
        .collect();
    let mut pixels = vec![0; decoder.output_buffer_size().expect("a buffer size")];
    let frame = decoder.next_frame(&mut pixels).expect("the image");
    pixels.truncate(frame.buffer_size());
    (texts, pixels)
}

/// The element a baked SVG carries first inside its root (read by `roxmltree`): its
/// namespace, name, `verify` attribute and text, and the names of the root's other elements.
fn unbake_svg(file: &Path) -> (String, String, Option<String>, String, Vec<String>) {
    let text = std::fs::read_to_string(file).expect("a baked SVG");
    let document = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{}: not XML: {e}", file.display()));
    let root = document.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let mut elements = root.children().filter(|n| n.is_element());
    let baked = elements.next().expect("an element inside the root");
    let others = elements.map(|e| e.tag_name().name().to_string()).collect();
    let body: String = baked.children().filter_map(|n| n.text()).collect();
    (
        baked.tag_name().namespace().unwrap_or_default().to_string(),
        baked.tag_name().name().to_string(),
        baked.attribute("verify").map(str::to_string),
        body,
        others,
    )
}

/// `--bake` writes every award baked into its badge's image, beside its document, as each
/// version's baking rules say; read back by independent PNG and XML parsers, each holds
/// exactly the exported document (or, signed, its JWS), and the image is otherwise unchanged.
#[tokio::test]
async fn baked_badges_unbake_to_exactly_the_exported_documents() {
    let (host, config) = awarded_host().await;
    let images = config.parent().expect("the config's folder").join("img");
    std::fs::create_dir_all(&images).expect("an image folder");
    let (png, pixels) = png_image();
    std::fs::write(images.join("prolific.png"), &png).expect("writing the badge image");
    let key = issuer_key(host.dir(), "ed25519");

    for (format, dir, extra) in [
        ("openbadges-v2", "ob2", vec![]),
        ("openbadges-v3", "ob3", vec![]),
        ("openbadges-v3", "ob3-signed", vec!["--sign", path(&key)]),
        ("openbadges-v3", "ob3-vc11", vec!["--vc", "1.1"]),
    ] {
        let out = host.dir().join(dir);
        let mut args = vec!["--bake"];
        args.extend(extra.iter().copied());
        let exported = export(&config, format, &out, &args);
        assert_eq!(exported.code, 0, "{}", exported.describe());
        assert!(exported.stdout.contains("4 baked into badge images"), "{}", exported.describe());
        let (sub, keyword, namespace, element) = match format {
            "openbadges-v2" => ("assertions", "openbadges", "http://openbadges.org", "assertion"),
            _ => ("credentials", "openbadgecredential", "https://purl.imsglobal.org/ob/v3p0", "credential"),
        };
        let signed = dir == "ob3-signed";
        let documents = documents(&out, sub);
        assert_eq!(documents.len(), 4);
        for (name, document) in documents {
            let file = out.join(&name);
            let exported = std::fs::read_to_string(&file).expect("the document");
            let token = signed.then(|| std::fs::read_to_string(file.with_extension("jwt")).expect("a token"));
            if name.contains("/prolific/") {
                let (texts, unbaked_pixels) = unbake_png(&file.with_extension("png"), keyword);
                let expected = token.clone().unwrap_or_else(|| exported.clone());
                assert_eq!(texts, [expected], "{dir}/{name}: one chunk, holding the document");
                assert_eq!(unbaked_pixels, pixels, "{dir}/{name}: the image is unchanged");
                assert!(!file.with_extension("svg").exists());
            } else {
                let (ns, tag, verify, body, others) = unbake_svg(&file.with_extension("svg"));
                assert_eq!((ns.as_str(), tag.as_str()), (namespace, element), "{dir}/{name}");
                assert_eq!(others, ["circle", "text"], "{dir}/{name}: the generated medal kept");
                match (&token, format) {
                    (Some(token), _) => {
                        assert_eq!(verify.as_deref(), Some(token.as_str()), "{dir}/{name}: the JWS");
                        assert!(body.trim().is_empty(), "{dir}/{name}: a signed credential has no body");
                    }
                    (None, "openbadges-v2") => {
                        assert_eq!(verify.as_deref(), document["id"].as_str(), "{dir}/{name}: the hosted URL");
                        assert_eq!(body, exported, "{dir}/{name}");
                    }
                    (None, _) => {
                        assert_eq!(verify, None, "{dir}/{name}: no verify without a JWS");
                        assert_eq!(body, exported, "{dir}/{name}");
                    }
                }
            }
        }
    }

    // The badge's own SVG is baked into, its drawing kept; a name with ']]>' survives CDATA.
    let text = std::fs::read_to_string(&config).expect("the config");
    let text = text.replace("img/prolific.png", "img/prolific.svg").replace("Prolific & <Proud>", "Pro ]]> lific");
    std::fs::write(&config, text).expect("rewriting the config");
    let svg = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
               viewBox=\"0 0 10 10\"><title>Prolific</title><rect width=\"10\" height=\"10\"/></svg>\n";
    std::fs::write(images.join("prolific.svg"), svg).expect("writing the SVG image");
    let out = host.dir().join("ob3-svg");
    let exported = export(&config, "openbadges-v3", &out, &["--bake"]);
    assert_eq!(exported.code, 0, "{}", exported.describe());
    let file = out.join("credentials/prolific/1.json");
    let (_, tag, _, body, others) = unbake_svg(&file.with_extension("svg"));
    assert_eq!(tag, "credential");
    assert_eq!(others, ["title", "rect"]);
    assert_eq!(body, std::fs::read_to_string(&file).expect("the document"));
    assert!(body.contains("Pro ]]> lific"), "{body}");

    // An image that is a URL, or a file that is no image, cannot be baked: each is named.
    let text = std::fs::read_to_string(&config).expect("the config");
    let text = text.replace("img/prolific.svg", "https://cdn.example.org/prolific.png").replacen(
        "rule = { type = \"posts_sent\", min = 1 }",
        "image = \"accolade.toml\"\nrule = { type = \"posts_sent\", min = 1 }",
        1,
    );
    std::fs::write(&config, text).expect("rewriting the config");
    let refused = export(&config, "openbadges-v2", &host.dir().join("ob2-refused"), &["--bake"]);
    assert_eq!(refused.code, 2, "{}", refused.describe());
    assert!(refused.stderr.contains("badge 'prolific': its image 'https://cdn.example.org/prolific.png' is a URL"));
    assert!(refused.stderr.contains("badge 'poster': its image"), "{}", refused.describe());
    assert!(refused.stderr.contains("is neither a PNG nor an SVG"), "{}", refused.describe());
}

/// With an Ed25519 key, every 3.0 credential (both forms) embeds an `eddsa-rdfc-2022`
/// DataIntegrityProof whose key the issuer profile publishes; an independent verifier
/// (jsonld.js canonicalization, Node's Ed25519) accepts each, and refuses a credential changed
/// after signing or a proof value that is not the signature. The documents still expand in
/// safe mode and validate against the schemas, and the VC-JWT carries the proof.
#[rstest]
#[tokio::test]
async fn credentials_signed_with_an_ed25519_key_carry_data_integrity_proofs_an_independent_verifier_accepts(
    #[values("2.0", "1.1")] vc: &str,
) {
    let (host, config) = awarded_host().await;
    let key = issuer_key(host.dir(), "ed25519");
    let out = host.dir().join("proved");
    let exported = export(&config, "openbadges-v3", &out, &["--sign", path(&key), "--vc", vc]);
    assert_eq!(exported.code, 0, "{}", exported.describe());
    assert!(exported.stdout.contains("with Data Integrity proofs (eddsa-rdfc-2022)"), "{}", exported.describe());

    let issuer = read_json(&out.join("issuer.json"));
    let method = issuer["verificationMethod"][0].clone();
    assert_eq!(method["type"], "Multikey");
    assert_eq!(method["controller"], "https://badges.example.org/ob/issuer.json");
    assert!(method["publicKeyMultibase"].as_str().is_some_and(|k| k.starts_with("z6Mk")), "{issuer:#}");
    assert_eq!(issuer["assertionMethod"][0], method["id"]);
    let (schema, profile_schema) = match vc {
        "2.0" => ("v3/ob_v3p0_achievementcredential-jsonschema1.json", "v3/ob_v3p0_profile-jsonschema1.json"),
        _ => ("v3/achievementcredential.json", "v3/profile.json"),
    };
    assert_valid(&validator(profile_schema), &issuer, "issuer.json");
    let credential_schema = validator(schema);
    let credentials = documents(&out, "credentials");
    assert_eq!(credentials.len(), 4);
    let mut files = Vec::new();
    for (name, credential) in &credentials {
        assert_valid(&credential_schema, credential, name);
        let proofs = credential["proof"].as_array().expect("a proof set");
        assert_eq!(proofs.len(), 1, "{name}");
        let proof = &credential["proof"];
        assert_eq!(proof[0]["verificationMethod"], method["id"], "{name}");
        assert_eq!(proof[0]["created"], "2026-03-01T12:00:00Z", "{name}: proved as of the award");
        let token = std::fs::read_to_string(out.join(name).with_extension("jwt")).expect("a token");
        let payload = token.split('.').nth(1).expect("a JWT payload");
        let payload =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).expect("base64url");
        let payload: Value = serde_json::from_slice(&payload).expect("a JSON payload");
        let carried = if vc == "2.0" { &payload["proof"] } else { &payload["vc"]["proof"] };
        assert_eq!(carried, proof, "{name}: the JWT carries the embedded proof");
        files.push(out.join(name));
    }
    let mut documents_and_issuer = files.clone();
    documents_and_issuer.push(out.join("issuer.json"));
    let Some(expanded) = expand_in_safe_mode(&documents_and_issuer) else { return };
    assert!(expanded.status.success(), "{}", String::from_utf8_lossy(&expanded.stdout));

    let mut args = vec![out.join("issuer.json")];
    args.extend(files.iter().cloned());
    let Some(verified) = node_script("verify-proof.mjs", &args) else { return };
    let stdout = String::from_utf8_lossy(&verified.stdout);
    assert!(verified.status.success(), "{stdout}{}", String::from_utf8_lossy(&verified.stderr));
    assert_eq!(stdout.lines().filter(|l| l.starts_with("ok ")).count(), 4, "{stdout}");

    // A changed credential, or a proof value that is another credential's, fails.
    let mut changed = credentials["credentials/poster/1.json"].clone();
    changed["name"] = Value::from("Another badge");
    let mut swapped = credentials["credentials/poster/1.json"].clone();
    swapped["proof"][0]["proofValue"] = credentials["credentials/poster/3.json"]["proof"][0]["proofValue"].clone();
    let mut tampered = vec![out.join("issuer.json")];
    for (file, document) in [("changed.json", changed), ("swapped.json", swapped)] {
        let file = host.dir().join(file);
        std::fs::write(&file, serde_json::to_vec(&document).expect("JSON")).expect("writing the copy");
        tampered.push(file);
    }
    let Some(refused) = node_script("verify-proof.mjs", &tampered) else { return };
    let stdout = String::from_utf8_lossy(&refused.stdout);
    assert!(!refused.status.success(), "{stdout}");
    assert_eq!(stdout.matches("the signature does not verify").count(), 2, "{stdout}");
}

/// An RSA key signs VC-JWTs only: eddsa-rdfc-2022 needs Ed25519, so its credentials carry no
/// embedded proof and the issuer profile publishes no Multikey, and the export says so.
#[tokio::test]
async fn credentials_signed_with_an_rsa_key_carry_no_data_integrity_proof_and_the_export_says_so() {
    let (host, config) = awarded_host().await;
    let key = issuer_key(host.dir(), "rsa");
    let out = host.dir().join("rsa");
    let exported = export(&config, "openbadges-v3", &out, &["--sign", path(&key)]);
    assert_eq!(exported.code, 0, "{}", exported.describe());
    assert!(exported.stdout.contains("an RSA key makes no Data Integrity proof"), "{}", exported.describe());
    assert!(read_json(&out.join("issuer.json")).get("verificationMethod").is_none());
    for (name, credential) in documents(&out, "credentials") {
        assert!(credential.get("proof").is_none(), "{name}");
        assert!(out.join(&name).with_extension("jwt").exists(), "{name}");
    }
}
