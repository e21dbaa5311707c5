//! RDF Dataset Canonicalization (RDFC-1.0) of JSON-LD documents, for Data Integrity proofs:
//! a document is turned into RDF (JSON-LD 1.1 toRdf, by the `json-ld` crate through
//! `sophia_jsonld`) and written as canonical N-Quads (`sophia_c14n`).
//!
//! Every context a document may declare is compiled into the binary from `contexts/` (see its
//! SOURCES.md); a context that is not bundled is an error, never a fetch.

use anyhow::{Result, anyhow};
use serde_json::Value;
use sophia_api::quad::Spog;
use sophia_api::source::QuadSource;
use sophia_api::term::SimpleTerm;
use sophia_jsonld::loader::{ClosureLoader, FutureExt};
use sophia_jsonld::{JsonLdOptions, JsonLdParser};
use std::collections::BTreeSet;

/// The bundled contexts: URL and text.
const CONTEXTS: [(&str, &str); 8] = [
    ("https://www.w3.org/2018/credentials/v1", include_str!("contexts/credentials-v1.json")),
    ("https://www.w3.org/ns/credentials/v2", include_str!("contexts/credentials-v2.json")),
    ("https://w3id.org/security/data-integrity/v2", include_str!("contexts/data-integrity-v2.json")),
    ("https://www.w3.org/ns/cid/v1", include_str!("contexts/cid-v1.json")),
    ("https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.2.json", include_str!("contexts/ob-v3p0-context-3.0.2.json")),
    ("https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json", include_str!("contexts/ob-v3p0-context-3.0.3.json")),
    ("https://purl.imsglobal.org/spec/ob/v3p0/extensions.json", include_str!("contexts/ob-v3p0-extensions.json")),
    ("https://w3id.org/openbadges/v2", include_str!("contexts/openbadges-v2.json")),
];

/// The canonical N-Quads of `document` (RDFC-1.0 with SHA-256).
pub async fn canonical_nquads(document: &Value) -> Result<String> {
    let text = serde_json::to_string(document)?;
    let options = JsonLdOptions::new().with_document_loader_closure(|| {
        ClosureLoader::new(|url: sophia_iri::Iri<String>| {
            let found = CONTEXTS.iter().find(|(known, _)| *known == url.as_str()).map(|(_, text)| text.to_string());
            let url = url.as_str().to_string();
            async move { found.ok_or_else(|| format!("context {url} is not bundled (contexts are never fetched)")) }
                .boxed()
        })
    });
    let parser = JsonLdParser::new_with_options(options);
    let quads: Vec<Spog<SimpleTerm<'static>>> = parser
        .async_parse_str(&text)
        .await
        .collect_quads()
        .map_err(|e| anyhow!("the document is not JSON-LD that turns into RDF: {e}"))?;
    let dataset: BTreeSet<_> = quads.into_iter().collect();
    let mut out = Vec::new();
    sophia_c14n::rdfc10::normalize(&dataset, &mut out).map_err(|e| anyhow!("canonicalizing the document: {e}"))?;
    String::from_utf8(out).map_err(|_| anyhow!("canonical N-Quads that are not UTF-8"))
}
