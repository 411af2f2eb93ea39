//! The lease row's basic behaviour against a real PostgreSQL.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_resign_and_epochs_rise() {
    let server = server();
    let backend = connect(&server.url(), timing()).await;
    let a = elector(&backend, "job", "a");
    let b = elector(&backend, "job", "b");
    let la = a.campaign().await.unwrap();
    assert!(b.try_campaign().await.unwrap().is_none());
    let seen = a.leader().await.unwrap().unwrap();
    assert_eq!(seen.node, node("a"));
    assert_eq!(seen.epoch, la.epoch());
    let e1 = la.epoch();
    la.resign().await.unwrap();
    assert_eq!(a.leader().await.unwrap(), None);
    let lb = b.try_campaign().await.unwrap().expect("free after resign");
    assert!(lb.epoch() > e1, "{} > {e1}", lb.epoch());
}
