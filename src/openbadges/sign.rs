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
//! Signing is done by the `jsonwebtoken` crate; `ring` derives the public key from the
//! private one. The key file is PEM: a PKCS#8 Ed25519 key (`openssl genpkey -algorithm
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
}

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
                Ok(pair) => Ok(Signer::ed25519(&pair, block.contents())),
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

    fn ed25519(pair: &ring::signature::Ed25519KeyPair, pkcs8: &[u8]) -> Signer {
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
        Signer { key: EncodingKey::from_ed_der(pkcs8), algorithm: Algorithm::EdDSA, jwk }
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
        Ok(Signer { key, algorithm: Algorithm::RS256, jwk })
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
