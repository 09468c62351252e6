//! TLS to ClickHouse with the certificate verified, through the binary.
//!
//! The dev ClickHouse (libchdb) has no HTTPS listener, so the test puts a
//! TLS-terminating proxy in front of it with a certificate from a CA made
//! here. `conveyor sink clickhouse --migrate` against the `https://` URL
//! succeeds when the CA is trusted (`SSL_CERT_FILE`, the system OpenSSL's
//! trust store variable) and fails when it is not: TLS is used, and the
//! server's certificate is checked.

mod common;

use std::path::Path;
use std::pin::Pin;
use std::process::Command;
use std::sync::Arc;

use openssl::asn1::Asn1Time;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{Ssl, SslAcceptor, SslMethod};
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509NameBuilder, X509};
use tokio::net::{TcpListener, TcpStream};

/// A self-signed CA certificate for `localhost` and 127.0.0.1 (it is its
/// own trust anchor) and its key.
fn certificate() -> (X509, PKey<Private>) {
    let key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "localhost").unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    let serial = openssl::bn::BigNum::from_u32(fastrand::u32(1..)).unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
        .unwrap();
    let san = SubjectAlternativeName::new()
        .dns("localhost")
        .ip("127.0.0.1")
        .build(&b.x509v3_context(None, None))
        .unwrap();
    b.append_extension(san).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    (b.build(), key)
}

/// Accepts TLS on a free port and pipes each connection to `upstream`.
async fn tls_proxy(cert: &X509, key: &PKey<Private>, upstream: String) -> u16 {
    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
    acceptor.set_certificate(cert).unwrap();
    acceptor.set_private_key(key).unwrap();
    let acceptor = Arc::new(acceptor.build());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
            tokio::spawn(async move {
                let ssl = Ssl::new(acceptor.context()).unwrap();
                let mut tls = tokio_openssl::SslStream::new(ssl, client).unwrap();
                if Pin::new(&mut tls).accept().await.is_err() {
                    return; // the client refused our certificate
                }
                if let Ok(mut server) = TcpStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
                }
            });
        }
    });
    port
}

fn migrate(url: &str, db: &str, ca: Option<&Path>) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_conveyor"));
    cmd.args(["sink", "clickhouse", "--migrate"])
        .env("CONVEYOR_CLICKHOUSE__URL", url)
        .env("CONVEYOR_CLICKHOUSE__DATABASE", db)
        .env_remove("SSL_CERT_DIR");
    match ca {
        Some(ca) => cmd.env("SSL_CERT_FILE", ca),
        None => cmd.env_remove("SSL_CERT_FILE"),
    };
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_clickhouse_sink_speaks_verified_tls() {
    let config = common::config();
    common::require_clickhouse(&config).await;
    let upstream = config
        .clickhouse
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let (cert, key) = certificate();
    let port = tls_proxy(&cert, &key, upstream).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, cert.to_pem().unwrap()).unwrap();
    let url = format!("https://localhost:{port}");
    let db = common::unique("tls").replace('-', "_");

    // Not trusted: refused before any query.
    let (ok, text) = tokio::task::spawn_blocking(move || {
        migrate(&format!("https://localhost:{port}"), "x", None)
    })
    .await
    .unwrap();
    assert!(!ok, "an untrusted certificate was accepted:\n{text}");
    let lower = text.to_lowercase();
    assert!(
        lower.contains("certificate") || lower.contains("ssl") || lower.contains("tls"),
        "refused for another reason than the certificate:\n{text}"
    );

    // Trusted through SSL_CERT_FILE: the DDL is applied over TLS.
    let (ok, text) = tokio::task::spawn_blocking({
        let (url, db, ca) = (url.clone(), db.clone(), ca.clone());
        move || migrate(&url, &db, Some(&ca))
    })
    .await
    .unwrap();
    assert!(ok, "migration over TLS failed:\n{text}");
    let tables: String = reqwest::Client::new()
        .post(format!("{}/", config.clickhouse.url))
        .body(format!(
            "SELECT count() FROM system.tables WHERE database = '{db}' AND name = 'orders'"
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        tables.trim(),
        "1",
        "the orders table was not created over TLS"
    );
}
