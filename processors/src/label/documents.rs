//! The document store: where labels, packing slips and combined PDFs go,
//! under deterministic names (`<order>/<shipment>/<kind>.pdf`, each path
//! segment reduced to `[A-Za-z0-9._-]`), so a re-rendered document after a
//! crash overwrites its first copy with the same bytes instead of adding
//! one.
//!
//! - A local directory (`label.documents` = a path or `file:///abs`): each
//!   file written to a temporary name and renamed, so a reader never sees
//!   half a PDF.
//! - An HTTP(S) object store (`https://bucket.example/labels`): `PUT
//!   <url>/<name>` with `content-type: application/pdf`, as S3 presigned
//!   URLs, MinIO, GCS and WebDAV take it.

use std::path::{Path, PathBuf};

use conveyor_schemas::records::Document;
use sha2::{Digest, Sha256};

pub enum DocumentStore {
    Dir(PathBuf),
    Http { base: String, http: reqwest::Client },
}

/// A document's kind: its file name in the shipment's folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Label,
    PackingSlip,
    Combined,
}

impl Kind {
    fn file(self) -> &'static str {
        match self {
            Kind::Label => "label.pdf",
            Kind::PackingSlip => "packing-slip.pdf",
            Kind::Combined => "label-and-slip.pdf",
        }
    }
}

fn segment(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_string()
}

/// The deterministic name of a shipment's document.
pub fn name(order_id: &str, shipment_id: &str, kind: Kind) -> String {
    format!(
        "{}/{}/{}",
        segment(order_id),
        segment(shipment_id),
        kind.file()
    )
}

impl DocumentStore {
    /// From `label.documents`.
    pub fn open(location: &str) -> Result<DocumentStore, String> {
        if location.starts_with("http://") || location.starts_with("https://") {
            let http = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .map_err(|e| format!("document store client: {e}"))?;
            return Ok(DocumentStore::Http {
                base: location.trim_end_matches('/').to_string(),
                http,
            });
        }
        let path = location.strip_prefix("file://").unwrap_or(location);
        let dir = Path::new(path);
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("document store {}: {e}", dir.display()))?;
        let dir = dir
            .canonicalize()
            .map_err(|e| format!("document store {}: {e}", dir.display()))?;
        Ok(DocumentStore::Dir(dir))
    }

    /// Stores `bytes` under `name`; returns the document's record.
    pub async fn put(&self, name: &str, bytes: &[u8], pages: usize) -> Result<Document, String> {
        let uri = match self {
            DocumentStore::Dir(root) => {
                let path = root.join(name);
                let parent = path.parent().unwrap_or(root);
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(|e| format!("{}: {e}", parent.display()))?;
                let tmp = path.with_extension("pdf.tmp");
                tokio::fs::write(&tmp, bytes)
                    .await
                    .map_err(|e| format!("{}: {e}", tmp.display()))?;
                tokio::fs::rename(&tmp, &path)
                    .await
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                format!("file://{}", path.display())
            }
            DocumentStore::Http { base, http } => {
                let url = format!("{base}/{name}");
                let resp = http
                    .put(&url)
                    .header("content-type", "application/pdf")
                    .body(bytes.to_vec())
                    .send()
                    .await
                    .map_err(|e| format!("PUT {url}: {e}"))?;
                if !resp.status().is_success() {
                    return Err(format!("PUT {url}: HTTP {}", resp.status().as_u16()));
                }
                url
            }
        };
        Ok(Document {
            uri,
            content_type: "application/pdf".into(),
            sha256: Sha256::digest(bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            pages: i32::try_from(pages).unwrap_or(i32::MAX),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_are_deterministic_and_safe_and_writes_replace() {
        assert_eq!(
            name("shopify:1001", "shopify:1001/nj-edison/1", Kind::Label),
            "shopify_1001/shopify_1001_nj-edison_1/label.pdf"
        );
        assert_eq!(
            name("../x", "a b", Kind::Combined),
            "_x/a_b/label-and-slip.pdf"
        );
        let dir = tempfile::tempdir().unwrap();
        let store = DocumentStore::open(dir.path().to_str().unwrap()).unwrap();
        let n = name("o", "s", Kind::PackingSlip);
        let a = store.put(&n, b"%PDF-1 first", 1).await.unwrap();
        let b = store.put(&n, b"%PDF-1 first", 1).await.unwrap();
        assert_eq!(a, b);
        assert!(a.uri.starts_with("file:///") && a.uri.ends_with("o/s/packing-slip.pdf"));
        assert_eq!(std::fs::read(dir.path().join(&n)).unwrap(), b"%PDF-1 first");
        assert_eq!(
            std::fs::read_dir(dir.path().join("o/s")).unwrap().count(),
            1,
            "no temp file left"
        );
    }
}
