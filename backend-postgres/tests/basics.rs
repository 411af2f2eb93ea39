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

/// Partitioned leadership: many elections, each with its own leader and epochs, over the
/// backend's two connections (commands, and LISTEN once someone waits).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_elections_share_two_connections() {
    let server = server();
    let backend = connect(&server.url(), timing()).await;
    let other = connect(&server.url(), timing()).await;
    let mut held = Vec::new();
    for i in 0..100 {
        let l = elector(&backend, &format!("part-{i}"), "a")
            .campaign()
            .await
            .unwrap();
        held.push(l);
    }
    // One waiter per election on the other backend, all over its LISTEN connection.
    let mut waiting = Vec::new();
    for i in 0..100 {
        let e = elector(&other, &format!("part-{i}"), "b");
        waiting.push(tokio::spawn(async move { e.campaign().await.unwrap() }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let db = raw(&server.url()).await;
    let conns: i64 = db
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'elector%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        conns, 3,
        "a command connection each, and the waiters' LISTEN connection"
    );
    let epochs: Vec<_> = held.iter().map(|l| l.epoch()).collect();
    for l in held {
        l.resign().await.unwrap();
    }
    for (w, before) in waiting.into_iter().zip(epochs) {
        let l = tokio::time::timeout(std::time::Duration::from_secs(20), w)
            .await
            .expect("each waiter elected after its election's release")
            .unwrap();
        assert!(l.epoch() > before);
        assert_eq!(l.info().node, node("b"));
    }
}

/// Many backends connecting at once to a database without the table: one creates it, the
/// others find it (PostgreSQL's `CREATE TABLE IF NOT EXISTS` races in its catalogs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_connections_all_succeed() {
    let server = server();
    let url = server.url();
    let connecting: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                // SCRAM in a debug build is slow: eight logins at once on two cores.
                let c = election_postgres::PostgresConfig {
                    connect_timeout: std::time::Duration::from_secs(10),
                    ..config(&url)
                };
                election_postgres::PostgresBackend::connect(c, timing())
                    .await
                    .map(|_| ())
            })
        })
        .collect();
    for c in connecting {
        c.await
            .unwrap()
            .unwrap_or_else(|e| panic!("concurrent connect: {e}"));
    }
}
