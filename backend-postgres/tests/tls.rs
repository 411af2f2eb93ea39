//! TLS through rustls: a PostgreSQL with `ssl=on` and our own CA. `sslmode=require` with
//! our CA connects and elects; a server certificate we do not trust is refused with an
//! error naming the address; a client certificate logs in where `pg_hba.conf` asks for
//! `cert` authentication (the certificate's CN is the user), and without it the login fails.

mod common;

use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};

use common::*;
use election_core::ErrorKind;
use election_postgres::{PostgresBackend, PostgresConfig};
use election_tests::launch::PostgresServer;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

struct Pki {
    ca: PathBuf,
    server: (PathBuf, PathBuf),
    client: (PathBuf, PathBuf),
    other_ca: PathBuf,
}

fn ca(name: &str) -> (CertificateParams, KeyPair, String) {
    let key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, name);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let pem = ca.self_signed(&key).unwrap().pem();
    (ca, key, pem)
}

/// Files readable by the server's user (`nobody`); keys mode 0600 as PostgreSQL requires.
fn pki(dir: &Path) -> Pki {
    let nobody = 65534;
    let (ca_params, ca_key, ca_pem) = ca("elector postgres test CA");
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let issue = |name: &str, sans: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(sans).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &issuer).unwrap();
        let (c, k) = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600)).unwrap();
        chown(&c, Some(nobody), Some(nobody)).unwrap();
        chown(&k, Some(nobody), Some(nobody)).unwrap();
        (c, k)
    };
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca_pem).unwrap();
    chown(&ca_path, Some(nobody), Some(nobody)).unwrap();
    let other = dir.join("other-ca.pem");
    std::fs::write(&other, ca("someone else's CA").2).unwrap();
    Pki {
        ca: ca_path,
        server: issue("server", vec!["localhost".into(), "127.0.0.1".into()]),
        client: issue("certuser", vec!["certuser".into()]),
        other_ca: other,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_our_ca_and_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let pki = pki(dir.path());
    let settings = [
        "ssl=on".to_owned(),
        format!("ssl_cert_file={}", pki.server.0.display()),
        format!("ssl_key_file={}", pki.server.1.display()),
        format!("ssl_ca_file={}", pki.ca.display()),
    ];
    let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
    let server = tokio::task::block_in_place(|| PostgresServer::start_with(&settings))
        .unwrap_or_else(|e| panic!("postgres with TLS: {e}"));
    let tls_url = server.url().replace("sslmode=disable", "sslmode=require");

    // Our CA: connects over TLS and elects.
    let backend = PostgresBackend::connect(
        PostgresConfig {
            tls_ca_file: Some(pki.ca.clone()),
            ..config(&tls_url)
        },
        timing(),
    )
    .await
    .unwrap_or_else(|e| panic!("TLS connect: {e}"));
    let l = elector(&backend, "job", "a").campaign().await.unwrap();
    let db = raw(&server.url()).await;
    let ssl: i64 = db
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid)
             WHERE ssl AND application_name LIKE 'elector%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(ssl >= 1, "the backend's connection uses TLS");
    l.resign().await.unwrap();

    // A CA that did not sign the server's certificate: refused, naming the address.
    let err = PostgresBackend::connect(
        PostgresConfig {
            tls_ca_file: Some(pki.other_ca.clone()),
            ..config(&tls_url)
        },
        timing(),
    )
    .await
    .map(|_| ())
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&server.addr().to_string()), "{text}");
    assert!(text.to_lowercase().contains("certificate"), "{text}");
    assert_ne!(err.kind(), ErrorKind::Config, "{text}");

    // Client certificate authentication for user `certuser`.
    db.batch_execute(
        "CREATE ROLE certuser LOGIN;
         GRANT SELECT, INSERT, UPDATE ON elector_leases TO certuser",
    )
    .await
    .unwrap();
    let hba = server.data_dir().join("pg_hba.conf");
    let old = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!(
            "hostssl all certuser 127.0.0.1/32 cert\nhost all certuser 127.0.0.1/32 reject\n{old}"
        ),
    )
    .unwrap();
    db.batch_execute("SELECT pg_reload_conf()").await.unwrap();
    let cert_url = format!(
        "postgres://certuser@{}/postgres?sslmode=require",
        server.addr()
    );
    let with_cert = PostgresConfig {
        tls_ca_file: Some(pki.ca.clone()),
        tls_cert_file: Some(pki.client.0.clone()),
        tls_key_file: Some(pki.client.1.clone()),
        ..config(&cert_url)
    };
    let backend = PostgresBackend::connect(with_cert, timing())
        .await
        .unwrap_or_else(|e| panic!("client certificate login: {e}"));
    elector(&backend, "job", "c")
        .campaign()
        .await
        .unwrap()
        .resign()
        .await
        .unwrap();
    let err = PostgresBackend::connect(
        PostgresConfig {
            tls_ca_file: Some(pki.ca.clone()),
            ..config(&cert_url)
        },
        timing(),
    )
    .await
    .map(|_| ())
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
}
