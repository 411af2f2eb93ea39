//! Under mutual TLS a peer's node id must match its certificate, and the certificate must
//! chain to the configured CA.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use election_transport::{Auth, Error, Frame, TlsFiles, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn load_client(files: &TlsFiles) -> tokio_rustls::TlsConnector {
    use std::io::BufReader;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut BufReader::new(std::fs::File::open(&files.ca).unwrap())) {
        roots.add(c.unwrap()).unwrap();
    }
    let chain = rustls_pemfile::certs(&mut BufReader::new(
        std::fs::File::open(&files.cert).unwrap(),
    ))
    .collect::<Result<Vec<_>, _>>()
    .unwrap();
    let key = rustls_pemfile::private_key(&mut BufReader::new(
        std::fs::File::open(&files.key).unwrap(),
    ))
    .unwrap()
    .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .unwrap();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_certificate_names_another_node_cannot_impersonate_it() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let mut cs = configs(&["a", "b"], |n| Auth::MutualTls(ca.issue(dir.path(), n, n)));
    let b_config = cs.pop().unwrap();
    let mut a_config = cs.pop().unwrap();
    // A genuine CA-signed certificate, but for "mallory".
    let mallory = ca.issue(dir.path(), "mallory", "mallory");

    // The start-up check: a transport refuses to run as "a" with mallory's certificate.
    a_config.auth = Auth::MutualTls(mallory.clone());
    let err = Transport::bind(a_config).await.unwrap_err();
    assert!(matches!(err, Error::TlsFile { .. }), "{err}");
    assert!(err.to_string().contains("\"a\""), "{err}");

    // By hand: mallory completes TLS with its valid certificate, then claims to be "a".
    let (b, mut b_inbox) = Transport::bind(b_config).await.unwrap();
    let tcp = tokio::net::TcpStream::connect(b.local_addr())
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("b").unwrap();
    let mut tls = load_client(&mallory).connect(name, tcp).await.unwrap();
    let mut out = bytes::BytesMut::new();
    Frame::Hello {
        from: id("a"),
        to: id("b"),
        nonce: [0; 32],
    }
    .encode(&mut out);
    Frame::Data {
        payload: Bytes::from_static(b"vote"),
    }
    .encode(&mut out);
    tls.write_all(&out).await.unwrap();
    tls.flush().await.unwrap();
    let mut buf = [0u8; 16];
    let closed = tokio::time::timeout(DEADLINE, tls.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    assert_eq!(b.stats().auth_failures, 1);
    assert_eq!(b.stats().connections_accepted, 0);
    let got = tokio::time::timeout(Duration::from_millis(300), b_inbox.recv()).await;
    assert!(got.is_err(), "nothing from mallory is delivered: {got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_ca_is_rejected_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let rogue = Ca::new("rogue CA");
    let mut cs = configs(&["a", "b"], |n| {
        {
            let issuer = if n == "a" { &rogue } else { &ca };
            let mut files = issuer.issue(dir.path(), n, n);
            // a trusts the real CA, so only its own certificate is wrong.
            files.ca = dir.path().join("ca-for-b.pem");
            files
        }
        .pipe(Auth::MutualTls)
    });
    let (b, mut b_inbox) = Transport::bind(cs.pop().unwrap()).await.unwrap();
    let (a, _a_inbox) = Transport::bind(cs.pop().unwrap()).await.unwrap();
    for _ in 0..5 {
        a.send(&id("b"), Bytes::from_static(b"vote"));
    }
    wait_stats(&b, "b refuses a's certificate", |s| s.auth_failures >= 1).await;
    wait_stats(&a, "a refuses b's certificate", |s| s.auth_failures >= 1).await;
    assert_eq!(b.stats().connections_accepted, 0);
    let got = tokio::time::timeout(Duration::from_millis(300), b_inbox.recv()).await;
    assert!(got.is_err(), "nothing is delivered: {got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_peer_cannot_talk_to_a_tls_node() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let mut cs = configs(&["a", "b"], |n| Auth::MutualTls(ca.issue(dir.path(), n, n)));
    let (b, mut b_inbox) = Transport::bind(cs.pop().unwrap()).await.unwrap();
    let mut raw = RawPeer::connect(b.local_addr()).await;
    raw.send_frame(&election_transport::Frame::Hello {
        from: id("a"),
        to: id("b"),
        nonce: [0; 32],
    })
    .await;
    raw.send_frame(&election_transport::Frame::Data {
        payload: Bytes::from_static(b"vote"),
    })
    .await;
    assert!(raw.is_closed_by_peer().await);
    wait_stats(&b, "the TLS failure is counted", |s| s.auth_failures == 1).await;
    let got = tokio::time::timeout(Duration::from_millis(300), b_inbox.recv()).await;
    assert!(got.is_err(), "nothing is delivered: {got:?}");
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}
