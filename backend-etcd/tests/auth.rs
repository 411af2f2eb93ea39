//! etcd with authentication enabled: the right credentials campaign; a wrong password or a
//! user without permission on the prefix is refused at connect with a clear error.

mod support;

use election_core::ErrorKind;
use election_etcd::{EtcdBackend, EtcdConfig};
use support::*;

fn etcdctl(endpoint: &str, args: &[&str]) {
    let endpoint = endpoint.trim_start_matches("http://");
    let out = std::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .args(args)
        .output()
        .expect("etcdctl should run (apt-get install etcd-client)");
    assert!(
        out.status.success(),
        "etcdctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn with_user(endpoint: &str, user: &str, password: &str) -> EtcdConfig {
    EtcdConfig {
        username: Some(user.into()),
        password: Some(password.into()),
        ..EtcdConfig::with_endpoints([endpoint])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auth_enabled_good_credentials_campaign_and_bad_ones_are_refused_clearly() {
    let server = etcd();
    let ep = server.endpoint();
    tokio::task::block_in_place(|| {
        etcdctl(&ep, &["user", "add", "root:root-pw"]);
        etcdctl(&ep, &["user", "add", "elector:elector-pw"]);
        etcdctl(&ep, &["user", "add", "nobody:nobody-pw"]);
        etcdctl(&ep, &["role", "add", "elector-role"]);
        etcdctl(
            &ep,
            &[
                "role",
                "grant-permission",
                "elector-role",
                "--prefix=true",
                "readwrite",
                "elector/",
            ],
        );
        etcdctl(&ep, &["user", "grant-role", "elector", "elector-role"]);
        etcdctl(&ep, &["auth", "enable"]);
    });

    let backend = EtcdBackend::connect(with_user(&ep, "elector", "elector-pw"), timing())
        .await
        .expect("the right credentials connect");
    let a = elector(&backend, "auth1", "node-a");
    let l = a.campaign().await.unwrap();
    assert_eq!(a.leader().await.unwrap().unwrap().epoch, l.epoch());
    l.resign().await.unwrap();

    let err = EtcdBackend::connect(with_user(&ep, "elector", "wrong"), timing())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    let msg = err.to_string();
    eprintln!("wrong password: {msg}");
    assert!(msg.contains(&ep), "names the endpoint: {msg}");
    assert!(msg.contains("authentication failed"), "{msg}");
    assert!(!msg.contains("wrong"), "never echoes the password: {msg}");

    let err = EtcdBackend::connect(with_user(&ep, "nobody", "nobody-pw"), timing())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    let msg = err.to_string();
    eprintln!("no permission: {msg}");
    assert!(msg.contains("permission denied"), "{msg}");
    assert!(msg.contains("elector/"), "names the prefix to grant: {msg}");
}
