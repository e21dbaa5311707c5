//! Signing Open Badges 3.0 credentials as VC-JWTs (the JSON Web Token proof format of
//! Open Badges 3.0), with an Ed25519 key (`alg = EdDSA`) or an RSA key (`alg = RS256`, the
//! algorithm every Open Badges 3.0 verifier must support). The JOSE header has `typ = JWT`,
//! the public key as `jwk`, and a `kid` that is a URL inside the export: `jwks.json#ID`, where
//! `jwks.json` publishes the key under that same `kid` (Open Badges 3.0 allows no other
//! header). A VC Data Model 2.0 credential is itself the payload (VC-JOSE), with the claims
//! `iss` (its issuer id), `jti` (its id), `nbf` (its `validFrom`) and, when the credential's
//! subject has an id, `sub`; a VC Data Model 1.1 credential goes in a `vc` claim beside the same
//! claims (`nbf` is then its `issuanceDate`).
//!
//! An Ed25519 key also makes Data Integrity proofs ([`Signer::data_integrity_proof`]): the
//! `eddsa-rdfc-2022` cryptosuite, over the RDFC-1.0 canonical forms of the credential and of
//! the proof options ([`super::canon`]), with the key published as a `Multikey` verification
//! method (`publicKeyMultibase`: base58btc of `0xed01` and the key).
//!
//! JWT signing is done by the `jsonwebtoken` crate; `ring` derives the public key from the
//! private one and makes the Data Integrity signatures. The key file is PEM: a PKCS#8 Ed25519 key (`openssl genpkey -algorithm
//! ed25519`), or a PKCS#8 or PKCS#1 RSA key of 2048 bits or more (`openssl genpkey -algorithm
//! RSA -pkeyopt rsa_keygen_bits:3072`).

use super::DataModel;
use anyhow::{Context, Result, anyhow};
use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, KeyAlgorithm, OctetKeyPairParameters, PublicKeyUse,
    RSAKeyParameters,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::KeyPair;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::Path;

/// A loaded signing key.
pub struct Signer {
    key: EncodingKey,
    algorithm: Algorithm,
    jwk: Jwk,
    /// The Ed25519 key pair (none for an RSA key): Data Integrity proofs need it.
    ed25519: Option<ring::signature::Ed25519KeyPair>,
    /// SHA-256 of the canonical proof options, by their JSON text: the awards of one run
    /// share their award time, so their proofs share options, and canonicalization is the
    /// cost of a proof.
    options_hashes: std::sync::Mutex<std::collections::HashMap<String, [u8; 32]>>,
}

/// The `eddsa-rdfc-2022` cryptosuite's name.
pub const CRYPTOSUITE: &str = "eddsa-rdfc-2022";

/// base64url without padding.
fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A key id that changes with the key: the first 16 bytes of the SHA-256 of its public part.
fn key_id(public: &[u8]) -> String {
    hex::encode(&Sha256::digest(public)[..16])
}

impl Signer {
    /// Reads a PEM private key: Ed25519 (PKCS#8) or RSA (PKCS#8 or PKCS#1).
    pub fn from_file(path: &Path) -> Result<Signer> {
        let text = std::fs::read(path).with_context(|| format!("--sign: cannot read key file {}", path.display()))?;
        Signer::from_pem(&text).with_context(|| format!("--sign {}", path.display()))
    }

    pub fn from_pem(pem_text: &[u8]) -> Result<Signer> {
        let block = pem::parse(pem_text).map_err(|e| anyhow!("not a PEM file: {e}"))?;
        match block.tag() {
            "PRIVATE KEY" => match ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(block.contents()) {
                Ok(pair) => Ok(Signer::ed25519(pair, block.contents())),
                Err(_) => {
                    let pair = ring::signature::RsaKeyPair::from_pkcs8(block.contents()).map_err(|e| {
                        anyhow!(
                            "neither an Ed25519 nor an RSA private key ({e}); make one with \
                             openssl genpkey -algorithm ed25519 (or -algorithm RSA)"
                        )
                    })?;
                    Signer::rsa(&pair, pem_text)
                }
            },
            "RSA PRIVATE KEY" => {
                let pair = ring::signature::RsaKeyPair::from_der(block.contents())
                    .map_err(|e| anyhow!("not a usable RSA private key ({e})"))?;
                Signer::rsa(&pair, pem_text)
            }
            other => Err(anyhow!(
                "expected a PKCS#8 private key (-----BEGIN PRIVATE KEY-----, Ed25519 or RSA) or an RSA key \
                 (-----BEGIN RSA PRIVATE KEY-----), found '{other}'"
            )),
        }
    }

    fn ed25519(pair: ring::signature::Ed25519KeyPair, pkcs8: &[u8]) -> Signer {
        let public = pair.public_key().as_ref();
        let jwk = Jwk {
            common: CommonParameters {
                key_id: Some(key_id(public)),
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::EdDSA),
                ..CommonParameters::default()
            },
            algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: Default::default(),
                curve: EllipticCurve::Ed25519,
                x: b64(public),
            }),
        };
        Signer {
            key: EncodingKey::from_ed_der(pkcs8),
            algorithm: Algorithm::EdDSA,
            jwk,
            ed25519: Some(pair),
            options_hashes: Default::default(),
        }
    }

    fn rsa(pair: &ring::signature::RsaKeyPair, pem_text: &[u8]) -> Result<Signer> {
        if pair.public().modulus_len() < 256 {
            return Err(anyhow!("the RSA key has {} bits; use 2048 or more", pair.public().modulus_len() * 8));
        }
        let components: ring::rsa::PublicKeyComponents<Vec<u8>> = pair.public().into();
        let jwk = Jwk {
            common: CommonParameters {
                key_id: Some(key_id(pair.public().as_ref())),
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::RS256),
                ..CommonParameters::default()
            },
            algorithm: AlgorithmParameters::RSA(RSAKeyParameters {
                key_type: Default::default(),
                n: b64(&components.n),
                e: b64(&components.e),
            }),
        };
        let key = EncodingKey::from_rsa_pem(pem_text).map_err(|e| anyhow!("not a usable RSA private key ({e})"))?;
        Ok(Signer { key, algorithm: Algorithm::RS256, jwk, ed25519: None, options_hashes: Default::default() })
    }

    /// The JOSE algorithm: EdDSA or RS256.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Names the key by the URL it is published at (`…/jwks.json#ID`): the JWT header's `kid`
    /// and the `kid` of the key in `jwks.json` are that URL.
    pub fn published_at(mut self, jwks: &url::Url) -> Signer {
        let id = self.jwk.common.key_id.clone().unwrap_or_default();
        let mut url = jwks.clone();
        url.set_fragment(Some(&id));
        self.jwk.common.key_id = Some(url.to_string());
        self
    }

    /// Whether the key can make Data Integrity proofs (`eddsa-rdfc-2022` needs Ed25519).
    pub fn makes_data_integrity_proofs(&self) -> bool {
        self.ed25519.is_some()
    }

    /// The Ed25519 public key as a multibase Multikey value (`z6Mk…`), if the key is Ed25519.
    pub fn public_key_multibase(&self) -> Option<String> {
        let pair = self.ed25519.as_ref()?;
        let mut bytes = vec![0xed, 0x01];
        bytes.extend_from_slice(pair.public_key().as_ref());
        Some(format!("z{}", bs58::encode(bytes).into_string()))
    }

    /// A `DataIntegrityProof` (`eddsa-rdfc-2022`, purpose `assertionMethod`) of `document`
    /// (which has no `proof` yet), made at `created` with the key published as
    /// `verification_method`: Ed25519 over SHA-256(canonical proof options) followed by
    /// SHA-256(canonical document), the proof options carrying the document's `@context`.
    pub async fn data_integrity_proof(
        &self,
        document: &Value,
        created: DateTime<Utc>,
        verification_method: &str,
    ) -> Result<Value> {
        let pair = self
            .ed25519
            .as_ref()
            .ok_or_else(|| anyhow!("Data Integrity proofs ({CRYPTOSUITE}) need an Ed25519 key"))?;
        let mut proof = json!({
            "type": "DataIntegrityProof",
            "created": super::timestamp(created),
            "verificationMethod": verification_method,
            "cryptosuite": CRYPTOSUITE,
            "proofPurpose": "assertionMethod",
        });
        let mut options = proof.clone();
        if let (Some(fields), Some(context)) = (options.as_object_mut(), document.get("@context")) {
            fields.insert("@context".into(), context.clone());
        }
        let options_hash = self.options_hash(&options).await?;
        let document_hash = Sha256::digest(super::canon::canonical_nquads(document).await?.as_bytes());
        let mut signed = Vec::with_capacity(64);
        signed.extend_from_slice(&options_hash);
        signed.extend_from_slice(&document_hash);
        let signature = pair.sign(&signed);
        if let Some(fields) = proof.as_object_mut() {
            fields.insert("proofValue".into(), json!(format!("z{}", bs58::encode(signature.as_ref()).into_string())));
        }
        Ok(proof)
    }

    /// SHA-256 of the canonical form of `options`, computed once per distinct options.
    async fn options_hash(&self, options: &Value) -> Result<[u8; 32]> {
        let text = options.to_string();
        let known = self.options_hashes.lock().map_err(|_| anyhow!("a signing thread panicked"))?.get(&text).copied();
        if let Some(hash) = known {
            return Ok(hash);
        }
        let hash: [u8; 32] = Sha256::digest(super::canon::canonical_nquads(options).await?.as_bytes()).into();
        self.options_hashes.lock().map_err(|_| anyhow!("a signing thread panicked"))?.insert(text, hash);
        Ok(hash)
    }

    /// The public key as a JWK (to publish in `jwks.json`).
    pub fn public_jwk(&self) -> Value {
        serde_json::to_value(&self.jwk).unwrap_or(Value::Null)
    }

    /// The credential as a compact VC-JWT, in the JWT form of its data model.
    pub fn sign_credential(&self, credential: &Value, issued: DateTime<Utc>, model: DataModel) -> Result<String> {
        let mut header = Header::new(self.algorithm);
        header.typ = Some("JWT".to_string());
        header.kid = self.jwk.common.key_id.clone();
        header.jwk = Some(self.jwk.clone());
        let field = |name: &str| credential.get(name).cloned().unwrap_or(Value::Null);
        let issuer = credential.get("issuer").and_then(|i| i.get("id")).cloned().unwrap_or(Value::Null);
        let mut claims = match model {
            DataModel::V2 => credential.clone(),
            DataModel::V1_1 => json!({"vc": credential}),
        };
        let Some(fields) = claims.as_object_mut() else {
            return Err(anyhow!("a credential to sign is not a JSON object"));
        };
        fields.insert("iss".into(), issuer);
        fields.insert("jti".into(), field("id"));
        fields.insert("nbf".into(), json!(issued.timestamp()));
        if let Some(subject) = credential.get("credentialSubject").and_then(|s| s.get("id")) {
            fields.insert("sub".into(), subject.clone());
        }
        jsonwebtoken::encode(&header, &claims, &self.key).context("signing a credential")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1EdTech's Data Integrity test vector for Open Badges 3.0
    /// (openbadges-specification, `ob_v3p0/impl/linked-data-proof-ob.html`): its key, its
    /// credential and its proof options give its exact proof value.
    #[tokio::test]
    async fn the_proof_of_1edtechs_test_vector_credential_is_its_published_proof_value() {
        let seed = hex::decode("6241a409e6707bb640a0140a8a32bc3d193c33a661747284d6adfa4ed4180be4").expect("hex");
        let public = hex::decode("4bdeafde2ea8beefadd8c699b5c7e0704cf51154d52e17b20b71337ca04cc5a5").expect("hex");
        let pair = ring::signature::Ed25519KeyPair::from_seed_and_public_key(&seed, &public).expect("the key pair");
        let signer = Signer {
            key: EncodingKey::from_secret(b"unused"),
            algorithm: Algorithm::EdDSA,
            jwk: Jwk {
                common: CommonParameters::default(),
                algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                    key_type: Default::default(),
                    curve: EllipticCurve::Ed25519,
                    x: b64(&public),
                }),
            },
            ed25519: Some(pair),
            options_hashes: Default::default(),
        };
        assert_eq!(signer.public_key_multibase().as_deref(), Some("z6MkjZRZv3aez3r18pB1RBFJR1kwUVJ5jHt92JmQwXbd5hwi"));
        let credential = json!({
            "@context": ["https://www.w3.org/ns/credentials/v2", "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"],
            "id": "http://example.com/credentials/3527",
            "type": ["VerifiableCredential", "OpenBadgeCredential"],
            "issuer": {"id": "https://example.edu/issuers/565049", "type": ["Profile"], "url": "https://www.imsglobal.org", "name": "Example Corp"},
            "validFrom": "2010-01-01T00:00:00Z",
            "name": "Teamwork Badge",
            "credentialSubject": {
                "id": "did:example:ebfeb1f712ebc6f1c276e12ec21",
                "type": ["AchievementSubject"],
                "achievement": {
                    "id": "https://example.com/achievements/21st-century-skills/teamwork",
                    "type": ["Achievement"],
                    "criteria": {"narrative": "Team members are nominated for this badge by their peers and recognized upon review by Example Corp management."},
                    "description": "This badge recognizes the development of the capacity to collaborate within a group environment.",
                    "name": "Teamwork"
                }
            }
        });
        let created = DateTime::parse_from_rfc3339("2010-01-01T19:23:24Z").expect("an instant").with_timezone(&Utc);
        let method = "https://example.edu/issuers/565049#z6MkjZRZv3aez3r18pB1RBFJR1kwUVJ5jHt92JmQwXbd5hwi";
        let proof = signer.data_integrity_proof(&credential, created, method).await.expect("a proof");
        assert_eq!(
            proof,
            json!({
                "type": "DataIntegrityProof",
                "created": "2010-01-01T19:23:24Z",
                "verificationMethod": method,
                "cryptosuite": "eddsa-rdfc-2022",
                "proofPurpose": "assertionMethod",
                "proofValue": "z5x9aCBYovW3CQCbKdNyhEm7ffYSw1YpEdPywQJoNbzDD2gkzQDKJ1sYKJaWvqZtkMtSbz35HcbgXVEDYHxCzgkCr"
            })
        );
    }
}
