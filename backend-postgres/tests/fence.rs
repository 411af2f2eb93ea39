//! Fenced writes in the same database: checked in the writer's own transaction, refused for
//! a stale epoch, and serialised against the next acquisition by the row lock.

mod common;

use std::time::Duration;

use common::*;
use election_core::{Epoch, ErrorKind};

const DATA: &str = "CREATE TABLE IF NOT EXISTS data (k text PRIMARY KEY, v text, epoch bigint)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_epoch_is_refused_in_the_writers_transaction() {
    let server = server();
    let backend = connect(&server.url(), timing()).await;
    let fence = backend.fence(&name("job"));
    let mut db = raw(&server.url()).await;
    db.batch_execute(DATA).await.unwrap();

    let a = elector(&backend, "job", "a");
    let old = a.campaign().await.unwrap();
    let old_epoch = old.epoch();
    {
        let tx = db.transaction().await.unwrap();
        fence
            .check(&tx, old_epoch)
            .await
            .expect("the current epoch writes");
        tx.execute(
            "INSERT INTO data VALUES ('k', 'from old', $1)",
            &[&i64::try_from(old_epoch.0).unwrap()],
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    old.resign().await.unwrap();
    let new = elector(&backend, "job", "b").campaign().await.unwrap();
    assert!(new.epoch() > old_epoch);

    // The old leader's write: refused in its own transaction, which then rolls back.
    let tx = db.transaction().await.unwrap();
    let err = fence.check(&tx, old_epoch).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StaleEpoch, "{err}");
    assert!(err.to_string().contains(&new.epoch().to_string()), "{err}");
    drop(tx);
    let v: String = db
        .query_one("SELECT v FROM data WHERE k = 'k'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, "from old");

    // The same check as plain SQL, in one statement: zero rows for the stale epoch, one
    // for the current.
    let recipe = format!(
        "UPDATE data SET v = $2, epoch = $3 WHERE k = 'k' AND EXISTS (
            SELECT 1 FROM {} WHERE election = $1 AND epoch = $3
              AND token IS NOT NULL AND expires > clock_timestamp() FOR SHARE)",
        backend.table()
    );
    let stale = db
        .execute(
            &recipe,
            &[&"job", &"stale", &i64::try_from(old_epoch.0).unwrap()],
        )
        .await
        .unwrap();
    assert_eq!(stale, 0, "the recipe refuses a stale epoch");
    let current = db
        .execute(
            &recipe,
            &[&"job", &"current", &i64::try_from(new.epoch().0).unwrap()],
        )
        .await
        .unwrap();
    assert_eq!(current, 1, "the recipe admits the current epoch");
    // The helper's own SQL is the same check.
    assert!(fence.check_sql().contains("FOR SHARE"));
    let last = Epoch(new.epoch().0);
    new.resign().await.unwrap();
    // Released: the last epoch is no longer live.
    let tx = db.transaction().await.unwrap();
    let err = fence.check(&tx, last).await;
    assert_eq!(err.unwrap_err().kind(), ErrorKind::Lost);
}

/// The row lock: while a fenced transaction is open, no new leadership can be granted (nor
/// the lease renewed: keep fenced transactions short), so the write commits before any
/// newer leader exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_leadership_is_granted_while_a_fenced_write_is_open() {
    let server = server();
    let backend = connect(&server.url(), timing()).await;
    let other = connect(&server.url(), timing()).await;
    let fence = backend.fence(&name("job"));
    let mut db = raw(&server.url()).await;
    let lead = elector(&backend, "job", "a").campaign().await.unwrap();
    let epoch = lead.epoch();
    let tx = db.transaction().await.unwrap();
    fence.check(&tx, epoch).await.unwrap();
    // Renewals wait for the lock and time out: the holder lets go at its deadline.
    let reason = tokio::time::timeout(Duration::from_secs(10), lead.lost())
        .await
        .expect("lost by the deadline");
    assert_eq!(reason, election_core::LossReason::Expired);
    // Past the server's expiry, b still cannot take over while the write is open.
    tokio::time::sleep(timing().ttl).await;
    let b = elector(&other, "job", "b");
    // The acquisition waits for the row lock until the statement timeout, and reports the
    // election busy (or, on a machine so loaded that the server's cancellation arrives
    // after the client's own cut-off, unavailable): never granted.
    let attempt = b.try_campaign().await;
    assert!(
        matches!(&attempt, Ok(None))
            || matches!(&attempt, Err(e) if e.kind() == ErrorKind::Unavailable),
        "no grant while the fenced write is open: {:?}",
        attempt.as_ref().map(|l| l.as_ref().map(|l| l.epoch()))
    );
    // A campaign meanwhile waits (retrying what is retryable, as `elector run --supervise`
    // does), and wins once the write commits.
    let waiting = {
        let b = b.clone();
        tokio::spawn(async move {
            loop {
                match b.campaign().await {
                    Ok(l) => return l,
                    Err(e) if e.is_retryable() => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(e) => panic!("campaign: {e}"),
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        !waiting.is_finished(),
        "the campaign waits while the row is locked"
    );
    tx.commit().await.unwrap();
    let granted = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("b elected after the commit")
        .unwrap();
    assert!(granted.epoch() > epoch);
}
