//! Signing Open Badges 3.0 credentials as VC-JWTs (the JSON Web Token proof format of
//! Open Badges 3.0), with an Ed25519 key: JOSE header `alg = EdDSA`, `typ = JWT`, the public
//! key as `jwk` (and its `kid`), and the claims `vc` (the credential), `iss` (its issuer id),
//! `jti` (its id) and `nbf` (its issuance date).
//!
//! Signing is done by the `jsonwebtoken` crate; `ring` derives the public key from the
//! private one. The key file is a PKCS#8 PEM Ed25519 private key, as made by
//! `openssl genpkey -algorithm ed25519 -out issuer-key.pem`.

use anyhow::{Context, Result, anyhow};
use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::{AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, OctetKeyPairParameters};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::KeyPair;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::Path;

/// A loaded signing key.
pub struct Signer {
    key: EncodingKey,
    jwk: Jwk,
}

impl Signer {
    /// Reads a PKCS#8 PEM Ed25519 private key.
    pub fn from_file(path: &Path) -> Result<Signer> {
        let text = std::fs::read(path).with_context(|| format!("--sign: cannot read key file {}", path.display()))?;
        Signer::from_pem(&text).with_context(|| format!("--sign {}", path.display()))
    }

    pub fn from_pem(pem_text: &[u8]) -> Result<Signer> {
        let block = pem::parse(pem_text).map_err(|e| anyhow!("not a PEM file: {e}"))?;
        if block.tag() != "PRIVATE KEY" {
            return Err(anyhow!(
                "expected a PKCS#8 Ed25519 private key (-----BEGIN PRIVATE KEY-----), found '{}'",
                block.tag()
            ));
        }
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(block.contents()).map_err(|e| {
            anyhow!("not an Ed25519 private key ({e}); make one with openssl genpkey -algorithm ed25519")
        })?;
        let public = pair.public_key().as_ref();
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public);
        // The key id: the first 16 bytes of the public key's SHA-256, so it changes with the key.
        let kid = hex::encode(&Sha256::digest(public)[..16]);
        let jwk = Jwk {
            common: CommonParameters { key_id: Some(kid), ..CommonParameters::default() },
            algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: Default::default(),
                curve: EllipticCurve::Ed25519,
                x,
            }),
        };
        let key = EncodingKey::from_ed_der(block.contents());
        Ok(Signer { key, jwk })
    }

    /// The public key as a JWK (to publish in `jwks.json`).
    pub fn public_jwk(&self) -> Value {
        serde_json::to_value(&self.jwk).unwrap_or(Value::Null)
    }

    /// The credential as a compact VC-JWT.
    pub fn sign_credential(&self, credential: &Value, issued: DateTime<Utc>) -> Result<String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("JWT".to_string());
        header.kid = self.jwk.common.key_id.clone();
        header.jwk = Some(self.jwk.clone());
        let field = |name: &str| credential.get(name).cloned().unwrap_or(Value::Null);
        let issuer = credential.get("issuer").and_then(|i| i.get("id")).cloned().unwrap_or(Value::Null);
        let claims = json!({
            "vc": credential,
            "iss": issuer,
            "jti": field("id"),
            "nbf": issued.timestamp(),
        });
        jsonwebtoken::encode(&header, &claims, &self.key).context("signing a credential")
    }
}
