//! The SQL: the lease table, and every change of a lease as one statement that compares the
//! per-leadership token (no read-modify-write races).
//!
//! Times are the **server's** (`clock_timestamp()`): the expiry is written and compared on
//! the server, so the clients' wall clocks never matter.

/// The lease table: one row per election, kept after a release (its `epoch` is the
/// election's counter, so it must never be deleted).
pub(crate) fn create_table(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {table} (
            election text PRIMARY KEY,
            token text,
            node text NOT NULL,
            epoch bigint NOT NULL,
            since timestamptz NOT NULL,
            expires timestamptz NOT NULL
        )"
    )
}

/// `$1` election, `$2` token, `$3` node, `$4` ttl in ms.
///
/// Takes the lease if nobody holds it (no row, a released row, or an expired one) and
/// notifies; either way returns one row: `granted, node, epoch, since_ms, ttl_left_ms`
/// (the holder's when not granted).
///
/// The epoch is `max(stored + 1, server clock in µs)`: strictly above every epoch this
/// row handed out, and never below the server's clock, so a table that was lost (an empty
/// restart) or a promoted standby that missed the last commits still hands out epochs
/// above the old ones, as long as the server clock has not gone back (decision record
/// 112). When not granted, the holder is read from the statement's snapshot: if another
/// acquisition committed meanwhile, the row shown may be the one it replaced (expired), and
/// the caller simply tries again.
pub(crate) fn acquire(table: &str, channel: &str) -> String {
    format!(
        "WITH now AS (SELECT clock_timestamp() AS t),
        acq AS (
            INSERT INTO {table} AS l (election, token, node, epoch, since, expires)
            SELECT $1::text, $2::text, $3::text,
                   (extract(epoch FROM now.t) * 1000000)::bigint, now.t,
                   now.t + $4::bigint * interval '1 millisecond'
            FROM now
            ON CONFLICT (election) DO UPDATE SET
                token = excluded.token, node = excluded.node,
                epoch = greatest(l.epoch + 1, excluded.epoch),
                since = excluded.since, expires = excluded.expires
            WHERE l.token IS NULL OR l.expires <= clock_timestamp()
            RETURNING l.node, l.epoch, l.since
        )
        SELECT true AS granted, a.node, a.epoch,
               (extract(epoch FROM a.since) * 1000)::bigint AS since_ms,
               $4::bigint AS ttl_left_ms,
               (SELECT 1 FROM (SELECT pg_notify({channel}, $1::text)) AS n) AS notified
        FROM acq a
        UNION ALL
        SELECT false, l.node, l.epoch,
               (extract(epoch FROM l.since) * 1000)::bigint,
               CASE WHEN l.token IS NULL THEN 0
                    ELSE greatest(0, ceil(extract(epoch FROM l.expires - clock_timestamp()) * 1000))::bigint
               END,
               NULL::int
        FROM {table} l
        WHERE l.election = $1::text AND NOT EXISTS (SELECT 1 FROM acq)"
    )
}

/// `$1` election, `$2` token, `$3` ttl in ms. One row changed: renewed. None: the token no
/// longer holds the lease (taken over, released, or already expired on the server).
pub(crate) fn renew(table: &str) -> String {
    format!(
        "UPDATE {table} SET expires = clock_timestamp() + $3::bigint * interval '1 millisecond'
         WHERE election = $1::text AND token = $2::text AND expires > clock_timestamp()"
    )
}

/// `$1` election, `$2` token. Ends the lease if the token holds it and notifies; returns
/// one row if it did. The row (and its epoch) stays.
pub(crate) fn release(table: &str, channel: &str) -> String {
    format!(
        "WITH r AS (
            UPDATE {table} SET token = NULL, expires = clock_timestamp()
            WHERE election = $1::text AND token = $2::text
            RETURNING epoch
        )
        SELECT r.epoch, (SELECT 1 FROM (SELECT pg_notify({channel}, $1::text)) AS n) FROM r"
    )
}

/// `$1` election. The live holder, if any: `node, epoch, since_ms, ttl_left_ms`.
pub(crate) fn read(table: &str) -> String {
    format!(
        "SELECT node, epoch, (extract(epoch FROM since) * 1000)::bigint,
                greatest(0, ceil(extract(epoch FROM expires - clock_timestamp()) * 1000))::bigint
         FROM {table}
         WHERE election = $1::text AND token IS NOT NULL AND expires > clock_timestamp()"
    )
}

/// `$1` election. The fence check: the election's current epoch and whether its lease is
/// live, with the row locked `FOR SHARE` until the caller's transaction ends, so no new
/// leadership can be granted (an acquisition updates the row) before the fenced write
/// commits or rolls back.
pub(crate) fn fence(table: &str) -> String {
    format!(
        "SELECT epoch, token IS NOT NULL AND expires > clock_timestamp()
         FROM {table} WHERE election = $1::text FOR SHARE"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_change_compares_the_token_or_the_expiry() {
        let t = "\"public\".\"t\"";
        assert!(renew(t).contains("token = $2::text AND expires > clock_timestamp()"));
        assert!(release("t", "'c'").contains("token = $2::text"));
        assert!(
            acquire("t", "'c'").contains("WHERE l.token IS NULL OR l.expires <= clock_timestamp()")
        );
    }
}
