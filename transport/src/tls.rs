//! Mutual TLS: loading the PEM files and matching a peer's certificate to its node id.
//!
//! The dialer verifies the acceptor's certificate chain against the CA and its DNS subject
//! alternative name against the node id it dialed (standard rustls server verification,
//! with the node id as the server name). The acceptor requires a client certificate
//! chaining to the same CA, then checks that it carries a DNS SAN equal to the node id the
//! dialer claims in its Hello. Only the `ring` crypto provider is used.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use election_core::NodeId;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::{Error, Result, TlsFiles};

/// The ring provider, shared by TLS and by the shared-secret nonces.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Fills `buf` from the operating system's secure random generator.
pub(crate) fn fill_random(buf: &mut [u8]) -> std::io::Result<()> {
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(buf)
        .map_err(|_| std::io::Error::other("the system random number generator failed"))
}

/// Both halves of this node's TLS setup.
#[derive(Clone)]
pub(crate) struct TlsContext {
    pub(crate) connector: TlsConnector,
    pub(crate) acceptor: TlsAcceptor,
}

fn tls_err(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::TlsFile {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

fn open(path: &Path) -> Result<BufReader<File>> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|e| tls_err(path, format!("cannot open: {e}")))
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = rustls_pemfile::certs(&mut open(path)?)
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| tls_err(path, format!("not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(tls_err(path, "holds no PEM CERTIFICATE block"));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    rustls_pemfile::private_key(&mut open(path)?)
        .map_err(|e| tls_err(path, format!("not valid PEM: {e}")))?
        .ok_or_else(|| tls_err(path, "holds no PEM private key"))
}

/// Whether `cert` names `id` in a DNS subject alternative name. Does not check the chain.
pub(crate) fn cert_names(cert: &CertificateDer<'_>, id: &NodeId) -> bool {
    let Ok(name) = ServerName::try_from(id.as_str()) else {
        return false;
    };
    ParsedCertificate::try_from(cert)
        .and_then(|parsed| rustls::client::verify_server_name(&parsed, &name))
        .is_ok()
}

/// The server name under which the dialer checks the peer `id`'s certificate.
pub(crate) fn server_name(id: &NodeId) -> Option<ServerName<'static>> {
    ServerName::try_from(id.as_str().to_owned()).ok()
}

/// Loads the files and builds both TLS configurations; checks that our own certificate
/// names `me`.
pub(crate) fn load(files: &TlsFiles, me: &NodeId) -> Result<TlsContext> {
    let provider = provider();
    let mut roots = RootCertStore::empty();
    for ca in load_certs(&files.ca)? {
        roots
            .add(ca)
            .map_err(|e| tls_err(&files.ca, format!("not a usable CA certificate: {e}")))?;
    }
    let roots = Arc::new(roots);
    let chain = load_certs(&files.cert)?;
    if !cert_names(&chain[0], me) {
        return Err(tls_err(
            &files.cert,
            format!(
                "the certificate has no DNS subject alternative name equal to this node's id \
                 {me:?}; peers would refuse it"
            ),
        ));
    }
    let key = load_key(&files.key)?;

    let client_verifier =
        WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| tls_err(&files.ca, format!("cannot verify client certificates: {e}")))?;
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(&files.cert, e))?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(chain.clone(), key.clone_key())
        .map_err(|e| tls_err(&files.key, format!("does not match the certificate: {e}")))?;

    let server_verifier = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|e| tls_err(&files.ca, format!("cannot verify server certificates: {e}")))?;
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(&files.cert, e))?
        .with_webpki_verifier(server_verifier)
        .with_client_auth_cert(chain, key)
        .map_err(|e| tls_err(&files.key, format!("does not match the certificate: {e}")))?;

    Ok(TlsContext {
        connector: TlsConnector::from(Arc::new(client)),
        acceptor: TlsAcceptor::from(Arc::new(server)),
    })
}
