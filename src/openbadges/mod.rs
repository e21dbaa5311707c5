//! Open Badges documents for awards: 2.0 hosted assertions and 3.0 `OpenBadgeCredential`s.
//!
//! Owns the mapping from an award, its badge and the `[issuer]` to the 1EdTech documents,
//! where they are published (every id is a URL beside the issuer profile's, and the export
//! directory mirrors those URLs so it can be uploaded as it is), and how a recipient is
//! identified: the email, trimmed and lower-cased, hashed as `sha256$hex(sha256(email + salt))`
//! with the award's own salt (see `accolade_award_salts`), so one member's awards cannot be
//! linked to each other or across exports by their hashes.
//!
//! 3.0 credentials follow Open Badges 3.0.3 on the VC Data Model 2.0 by default (context
//! `ns/credentials/v2` + `ob/v3p0/context-3.0.3.json`, `validFrom`, and a `credentialSchema`
//! naming 1EdTech's 3.0.3 JSON Schema), or, for older wallets, the VC Data Model 1.1 form
//! ([`DataModel::V1_1`]: `credentials/v1` + `context-3.0.2.json`, `issuanceDate`). Credentials
//! of both forms also declare 1EdTech's `ob/v3p0/extensions.json`, which defines the revocation
//! list's type. Awards have no end, so no credential has a `validUntil`. Every document expands
//! under JSON-LD safe mode with its declared contexts (tests/it/openbadges.rs). Revocation is
//! shown as each standard says: a
//! 2.0 assertion carries `revoked` and `revocationReason`; a 3.0 credential points its
//! `credentialStatus` at the issuer's `1EdTechRevocationList`, written beside it.

pub mod bake;
pub mod canon;
pub mod sign;

use crate::config::plan::{Badge, Issuer};
use crate::store::AwardRecord;
use anyhow::{Context, Result, anyhow};
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use url::Url;

/// Which Open Badges version to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V2,
    V3,
}

/// Which VC Data Model an Open Badges 3.0 credential is serialized in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataModel {
    /// VC Data Model 2.0, as Open Badges 3.0.3 requires (the default).
    #[default]
    V2,
    /// VC Data Model 1.1, for wallets that predate 3.0.3.
    V1_1,
}

const V2_CONTEXT: &str = "https://w3id.org/openbadges/v2";
const VC2_CONTEXT: [&str; 2] =
    ["https://www.w3.org/ns/credentials/v2", "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"];
const VC1_CONTEXT: [&str; 2] =
    ["https://www.w3.org/2018/credentials/v1", "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.2.json"];

/// 1EdTech's extensions context, which defines `1EdTechRevocationList` (a credential's
/// `credentialStatus` type) and `1EdTechJsonSchemaValidator2019` (its `credentialSchema`
/// type). Without it those types are relative IRIs, and JSON-LD processors in safe mode (as
/// data-integrity verifiers run them) refuse the credential.
const EXTENSIONS_CONTEXT: &str = "https://purl.imsglobal.org/spec/ob/v3p0/extensions.json";

/// Defines `DataIntegrityProof` for VC 1.1 credentials.
const DATA_INTEGRITY_CONTEXT: &str = "https://w3id.org/security/data-integrity/v2";

/// Defines `verificationMethod`, `assertionMethod` and `Multikey` on an issuer profile that
/// publishes its key (the W3C Controlled Identifiers context).
const CID_CONTEXT: &str = "https://www.w3.org/ns/cid/v1";

/// 1EdTech's published JSON Schema for 3.0.3 credentials, named in each 2.0-form credential.
pub const ACHIEVEMENT_CREDENTIAL_SCHEMA: &str =
    "https://purl.imsglobal.org/spec/ob/v3p0/schema/json/ob_v3p0_achievementcredential-jsonschema1.json";

impl DataModel {
    /// The contexts of a 3.0 profile or achievement in this form.
    fn contexts(self) -> [&'static str; 2] {
        match self {
            DataModel::V2 => VC2_CONTEXT,
            DataModel::V1_1 => VC1_CONTEXT,
        }
    }

    /// The contexts of a 3.0 credential: the form's and the extensions context and, for a
    /// VC 1.1 credential with a Data Integrity proof, the context that defines the proof (the
    /// VC 2.0 context defines it already).
    fn credential_contexts(self, proved: bool) -> Vec<&'static str> {
        let [vc, ob] = self.contexts();
        let mut contexts = vec![vc, ob, EXTENSIONS_CONTEXT];
        if proved && self == DataModel::V1_1 {
            contexts.push(DATA_INTEGRITY_CONTEXT);
        }
        contexts
    }
}

/// The recipient identity of an award: `sha256$` and the hex SHA-256 of the normalised email
/// followed by the salt.
pub fn identity_hash(email: &str, salt: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(email.trim().to_lowercase().as_bytes());
    hasher.update(salt.as_bytes());
    format!("sha256${}", hex::encode(hasher.finalize()))
}

/// Where the documents are published: every URL is relative to the issuer profile's.
#[derive(Debug, Clone)]
pub struct Site {
    issuer: Issuer,
    base: Url,
    model: DataModel,
    /// The issuer's Ed25519 key as a multibase Multikey, when credentials carry Data
    /// Integrity proofs.
    proof_key: Option<String>,
}

impl Site {
    pub fn new(issuer: &Issuer) -> Result<Site> {
        let base = issuer.id.join(".").with_context(|| format!("[issuer] id '{}': no directory", issuer.id))?;
        Ok(Site { issuer: issuer.clone(), base, model: DataModel::default(), proof_key: None })
    }

    /// The same site writing 3.0 credentials in `model`.
    pub fn with_data_model(mut self, model: DataModel) -> Site {
        self.model = model;
        self
    }

    pub fn data_model(&self) -> DataModel {
        self.model
    }

    /// The same site with 3.0 credentials proved by the Ed25519 key `multikey` (`z6Mk…`),
    /// published in the issuer profile as the verification method [`Site::verification_method`].
    pub fn with_proof_key(mut self, multikey: Option<String>) -> Site {
        self.proof_key = multikey;
        self
    }

    /// The id of the issuer's key: the issuer profile's URL with the key as its fragment (as
    /// 1EdTech's Data Integrity test vector names it).
    pub fn verification_method(&self) -> Option<String> {
        let key = self.proof_key.as_ref()?;
        let mut url = self.issuer.id.clone();
        url.set_fragment(Some(key));
        Some(url.to_string())
    }

    fn url(&self, path: &str) -> Result<Url> {
        self.base.join(path).with_context(|| format!("'{path}' under {}", self.base))
    }

    /// The file (relative to the export directory) a document published at `url` goes to.
    pub fn file_of(&self, url: &Url) -> Result<PathBuf> {
        let relative = url
            .as_str()
            .strip_prefix(self.base.as_str())
            .filter(|rest| !rest.is_empty())
            .ok_or_else(|| anyhow!("{url} is not published under {}", self.base))?;
        Ok(relative.split('/').collect())
    }

    pub fn issuer_url(&self) -> &Url {
        &self.issuer.id
    }

    pub fn badge_url(&self, version: Version, badge_id: &str) -> Result<Url> {
        match version {
            Version::V2 => self.url(&format!("badges/{badge_id}.json")),
            Version::V3 => self.url(&format!("achievements/{badge_id}.json")),
        }
    }

    /// The assertion or credential of one grant: `…/{badge}/{member}.json` for a badge earned
    /// once, `…/{badge}/{member}-{grant}.json` for a grant of a repeating badge (the grant's
    /// characters other than letters, digits, '-' and '_' written `~XX`, so any item id makes
    /// one file name and one URL path segment).
    pub fn award_url(&self, version: Version, badge_id: &str, user_id: i64, grant: &str) -> Result<Url> {
        let name = match grant {
            "" => user_id.to_string(),
            grant => format!("{user_id}-{}", file_safe(grant)),
        };
        match version {
            Version::V2 => self.url(&format!("assertions/{badge_id}/{name}.json")),
            Version::V3 => self.url(&format!("credentials/{badge_id}/{name}.json")),
        }
    }

    /// Where the signing key is published (a `kid` is this URL with the key's id as fragment).
    pub fn jwks_url(&self) -> Result<Url> {
        self.url("jwks.json")
    }

    pub fn revocation_list_url(&self) -> Result<Url> {
        self.url("revocations.json")
    }

    /// The issuer profile document; a 3.0 profile of a site with a proof key also publishes the
    /// key: a `Multikey` verification method, listed as an `assertionMethod`.
    pub fn issuer_document(&self, version: Version) -> Value {
        let mut doc = self.profile(version);
        if let (Version::V3, Some(key), Some(id), Some(fields)) =
            (version, &self.proof_key, self.verification_method(), doc.as_object_mut())
        {
            fields.insert("@context".into(), json!([self.model.contexts()[0], self.model.contexts()[1], CID_CONTEXT]));
            fields.insert(
                "verificationMethod".into(),
                json!([{"id": id, "type": "Multikey", "controller": self.issuer.id.as_str(), "publicKeyMultibase": key}]),
            );
            fields.insert("assertionMethod".into(), json!([id]));
        }
        doc
    }

    /// The issuer profile's own fields (what credentials and achievements embed).
    fn profile(&self, version: Version) -> Value {
        let issuer = &self.issuer;
        let mut doc = match version {
            Version::V2 => json!({"@context": V2_CONTEXT, "type": "Issuer"}),
            Version::V3 => json!({"@context": self.model.contexts(), "type": ["Profile"]}),
        };
        let fields = doc.as_object_mut().expect("a JSON object literal");
        fields.insert("id".into(), json!(issuer.id.as_str()));
        fields.insert("name".into(), json!(issuer.name));
        fields.insert("url".into(), json!(issuer.url.as_str()));
        if let Some(email) = &issuer.email {
            fields.insert("email".into(), json!(email));
        }
        if let Some(description) = &issuer.description {
            fields.insert("description".into(), json!(description));
        }
        doc
    }

    /// The issuer as embedded in a 3.0 credential or achievement.
    fn issuer_v3(&self) -> Value {
        let mut profile = self.profile(Version::V3);
        profile.as_object_mut().map(|p| p.remove("@context"));
        profile
    }

    /// The badge's image URL (relative paths are resolved against the issuer's `url`), or a
    /// generated SVG of its name when the badge has none.
    fn image(&self, badge: &Badge) -> Result<String> {
        match &badge.image {
            Some(image) => Ok(self
                .issuer
                .url
                .join(image)
                .with_context(|| format!("badge '{}': image '{image}' is not a URL or path", badge.id))?
                .to_string()),
            None => Ok(generated_image(&badge.name)),
        }
    }

    /// The 2.0 BadgeClass or the 3.0 Achievement of a badge.
    pub fn badge_document(&self, version: Version, badge: &Badge) -> Result<Value> {
        let id = self.badge_url(version, &badge.id)?;
        let image = self.image(badge)?;
        Ok(match version {
            Version::V2 => json!({
                "@context": V2_CONTEXT,
                "type": "BadgeClass",
                "id": id.as_str(),
                "name": badge.name,
                "description": badge.description_text(),
                "image": image,
                "criteria": {"narrative": badge.criteria_narrative()},
                "issuer": self.issuer.id.as_str(),
            }),
            Version::V3 => json!({
                "@context": self.model.contexts(),
                "id": id.as_str(),
                "type": ["Achievement"],
                "name": badge.name,
                "description": badge.description_text(),
                "image": {"id": image, "type": "Image"},
                "criteria": {"narrative": badge.criteria_narrative()},
                "creator": self.issuer_v3(),
            }),
        })
    }

    /// The 2.0 Assertion or 3.0 credential of one award; `badge_document` is the badge's
    /// [`Site::badge_document`] (built once per badge, not once per award).
    pub fn award_document(
        &self,
        version: Version,
        badge: &Badge,
        badge_document: &Value,
        award: &AwardRecord,
        email: &str,
    ) -> Result<Value> {
        let salt = award.salt.as_deref().ok_or_else(|| {
            anyhow!("award of badge '{}' to member {} has no recipient salt", award.badge_id, award.user_id)
        })?;
        let identity = identity_hash(email, salt);
        let id = self.award_url(version, &badge.id, award.user_id, &award.grant)?;
        let issued = timestamp(award.awarded_at);
        let mut doc = match version {
            Version::V2 => json!({
                "@context": V2_CONTEXT,
                "type": "Assertion",
                "id": id.as_str(),
                "recipient": {"type": "email", "hashed": true, "salt": salt, "identity": identity},
                "badge": badge_document["id"],
                "verification": {"type": "hosted"},
                "issuedOn": issued,
            }),
            Version::V3 => {
                let mut achievement = badge_document.clone();
                achievement.as_object_mut().map(|a| a.remove("@context"));
                let issued_field = match self.model {
                    DataModel::V2 => "validFrom",
                    DataModel::V1_1 => "issuanceDate",
                };
                let mut credential = json!({
                    "@context": self.model.credential_contexts(self.proof_key.is_some()),
                    "id": id.as_str(),
                    "type": ["VerifiableCredential", "OpenBadgeCredential"],
                    "name": badge.name,
                    "issuer": self.issuer_v3(),
                    issued_field: issued,
                    "credentialSubject": {
                        "type": ["AchievementSubject"],
                        "identifier": [{
                            "type": "IdentityObject",
                            "identityType": "emailAddress",
                            "hashed": true,
                            "salt": salt,
                            "identityHash": identity,
                        }],
                        "achievement": achievement,
                    },
                    "credentialStatus": {"id": self.revocation_list_url()?.as_str(), "type": "1EdTechRevocationList"},
                });
                if self.model == DataModel::V2
                    && let Some(fields) = credential.as_object_mut()
                {
                    fields.insert(
                        "credentialSchema".into(),
                        json!([{"id": ACHIEVEMENT_CREDENTIAL_SCHEMA, "type": "1EdTechJsonSchemaValidator2019"}]),
                    );
                }
                credential
            }
        };
        if version == Version::V2
            && award.revoked_at.is_some()
            && let Some(fields) = doc.as_object_mut()
        {
            fields.insert("revoked".into(), json!(true));
            fields.insert("revocationReason".into(), json!(award.revocation_reason.as_deref().unwrap_or("revoked")));
        }
        Ok(doc)
    }

    /// The 3.0 revocation list: every revoked credential with its reason.
    pub fn revocation_list(&self, revoked: &[(Url, String)]) -> Result<Value> {
        let entries: Vec<Value> =
            revoked.iter().map(|(id, reason)| json!({"id": id.as_str(), "revocationReason": reason})).collect();
        Ok(json!({
            "id": self.revocation_list_url()?.as_str(),
            "issuer": self.issuer.id.as_str(),
            "revokedCredentials": entries,
        }))
    }
}

/// `text` with every byte other than ASCII letters, digits, '-' and '_' written `~XX` (hex).
fn file_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' => out.push(byte as char),
            other => out.push_str(&format!("~{other:02X}")),
        }
    }
    out
}

/// RFC 3339 in UTC, whole seconds, `Z`.
pub fn timestamp(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A round SVG medal with the badge's initials, as a `data:` URI.
fn generated_image(name: &str) -> String {
    format!("data:image/svg+xml;base64,{}", base64::engine::general_purpose::STANDARD.encode(generated_svg(name)))
}

/// The SVG of `generated_image`: what a badge without an image of its own is baked into.
pub fn generated_svg(name: &str) -> String {
    let initials: String =
        name.split_whitespace().filter_map(|w| w.chars().next()).take(3).collect::<String>().to_uppercase();
    let initials = initials.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='256' height='256' viewBox='0 0 256 256'>\
         <circle cx='128' cy='128' r='120' fill='#2f5d8a' stroke='#d9a520' stroke-width='12'/>\
         <text x='128' y='150' font-family='sans-serif' font-size='72' font-weight='bold' fill='#fff' \
         text-anchor='middle'>{initials}</text></svg>"
    )
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportSummary {
    /// Award documents written (revoked ones included).
    pub awards: usize,
    pub revoked: usize,
    pub badges: usize,
    /// Baked images written (one per award document, with `--bake`).
    pub baked: usize,
    /// Awards left out because the member has no email address: `(badge_id, user_id)`.
    pub without_email: Vec<(String, i64)>,
    /// Awards of members the users source no longer returns.
    pub unknown_members: Vec<(String, i64)>,
}

/// What an export writes beside each award's JSON document.
#[derive(Default)]
pub struct Extras<'a> {
    /// Signs each 3.0 credential as a VC-JWT (`.jwt`).
    pub signer: Option<&'a sign::Signer>,
    /// Each badge's image (by badge id), to bake every award of it into (`.png` / `.svg`):
    /// a 2.0 assertion or a 3.0 credential as JSON, or a signed credential's JWS.
    pub images: Option<&'a HashMap<String, bake::Image>>,
}

/// Writes the issuer, badge and award documents of `awards` (each with a salt) into `dir`;
/// with a signer, every 3.0 credential also carries a Data Integrity proof when the site has
/// the signer's Ed25519 key ([`Site::with_proof_key`]) and is signed as a VC-JWT.
pub async fn write_export(
    dir: &Path,
    site: &Site,
    version: Version,
    badges: &[&Badge],
    awards: &[AwardRecord],
    emails: &HashMap<i64, Option<String>>,
    extras: Extras<'_>,
) -> Result<ExportSummary> {
    let signer = extras.signer;
    let mut summary = ExportSummary::default();
    let write = |url: &Url, extension: Option<&str>, contents: &[u8]| -> Result<()> {
        let mut path = dir.join(site.file_of(url)?);
        if let Some(extension) = extension {
            path.set_extension(extension);
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))
    };
    let json = |value: &Value| -> Result<Vec<u8>> {
        let mut bytes = serde_json::to_vec_pretty(value)?;
        bytes.push(b'\n');
        Ok(bytes)
    };
    write(site.issuer_url(), None, &json(&site.issuer_document(version))?)?;
    if let Some(signer) = signer {
        write(&site.jwks_url()?, None, &json(&json!({"keys": [signer.public_jwk()]}))?)?;
    }
    let mut by_id: HashMap<&str, (&Badge, Value)> = HashMap::new();
    for badge in badges {
        let document = site.badge_document(version, badge)?;
        write(&site.badge_url(version, &badge.id)?, None, &json(&document)?)?;
        by_id.insert(badge.id.as_str(), (*badge, document));
        summary.badges += 1;
    }
    let mut revoked = Vec::new();
    for award in awards {
        let Some((badge, badge_document)) = by_id.get(award.badge_id.as_str()) else { continue };
        let email = match emails.get(&award.user_id) {
            Some(Some(email)) if !email.trim().is_empty() => email,
            Some(_) => {
                summary.without_email.push((award.badge_id.clone(), award.user_id));
                continue;
            }
            None => {
                summary.unknown_members.push((award.badge_id.clone(), award.user_id));
                continue;
            }
        };
        let mut document = site.award_document(version, badge, badge_document, award, email)?;
        let url = site.award_url(version, &badge.id, award.user_id, &award.grant)?;
        // The embedded proof first: the JWT then carries it too, as Open Badges 3.0 says.
        if let (Version::V3, Some(signer), Some(method)) = (version, signer, site.verification_method()) {
            let proof = signer
                .data_integrity_proof(&document, award.awarded_at, &method)
                .await
                .with_context(|| format!("proving {url}"))?;
            if let Some(fields) = document.as_object_mut() {
                // A list (a proof set of one): 1EdTech's 3.0.3 schema takes `proof` only as one.
                fields.insert("proof".into(), json!([proof]));
            }
        }
        let text = json(&document)?;
        write(&url, None, &text)?;
        let token = match (version, signer) {
            (Version::V3, Some(signer)) => {
                let token = signer.sign_credential(&document, award.awarded_at, site.data_model())?;
                write(&url, Some("jwt"), token.as_bytes())?;
                Some(token)
            }
            _ => None,
        };
        if let Some(image) = extras.images.and_then(|images| images.get(&badge.id)) {
            let text = std::str::from_utf8(&text).context("a document that is not UTF-8")?;
            let payload = match &token {
                Some(token) => bake::Payload::Jws(token),
                None => bake::Payload::Json { text, url: url.as_str() },
            };
            let baked = bake::bake(image, version, payload)
                .with_context(|| format!("baking {url} into badge '{}'", badge.id))?;
            write(&url, Some(image.extension()), &baked)?;
            summary.baked += 1;
        }
        if award.revoked_at.is_some() {
            summary.revoked += 1;
            revoked.push((url, award.revocation_reason.clone().unwrap_or_else(|| "revoked".to_string())));
        }
        summary.awards += 1;
    }
    if version == Version::V3 {
        write(&site.revocation_list_url()?, None, &json(&site.revocation_list(&revoked)?)?)?;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::identity_hash;

    #[test]
    fn the_identity_hash_is_sha256_of_the_lowercased_email_then_the_salt() {
        // sha256("alice@example.com" + "s4lt"), as 1EdTech's IdentityObject describes.
        assert_eq!(
            identity_hash(" Alice@Example.com ", "s4lt"),
            "sha256$317c538f79f733f5fe6785a369e04e65f80d4abe7b5a29801eb80db549f466c1"
        );
    }
}
