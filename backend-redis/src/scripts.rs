//! The Lua scripts: every change of the lease is one atomic compare-and-set on its token.
//!
//! All scripts first check the type of the keys they touch and fail with a `WRONGTYPE`
//! error naming the key, rather than overwriting data another program keeps there.

use std::sync::LazyLock;
use std::time::{Duration, UNIX_EPOCH};

use election_core::{Epoch, LeaderInfo, NodeId};
use redis::Script;

/// Shared prelude: type checks of our keys.
const CHECK_TYPES: &str = r#"
local function check(key, want)
  local t = redis.call('TYPE', key).ok
  if t ~= 'none' and t ~= want then
    return redis.error_reply('WRONGTYPE elector: key ' .. key .. ' holds a ' .. t ..
      ' but elector keeps a ' .. want .. ' there; another program uses this key ' ..
      '(choose another key_prefix or remove the key)')
  end
  return nil
end
"#;

/// KEYS: leader, epoch, channel. ARGV: token, node, ttl_ms.
///
/// Returns `{1, node, epoch, ttl_ms, since_ms}` when granted, `{0, node, epoch, pttl_ms,
/// since_ms}` of the current holder when busy.
///
/// The epoch is `max(stored + 1, server TIME in µs)`: strictly above every epoch this key
/// has handed out, and never below the server's clock, so an empty restart (or a promoted
/// replica that missed the last increments) still hands out epochs above the old ones as
/// long as the server clock has not gone back (decision record 040).
const ACQUIRE: &str = r#"
local err = check(KEYS[1], 'hash') or check(KEYS[2], 'string')
if err then return err end
if redis.call('EXISTS', KEYS[1]) == 1 then
  local cur = redis.call('HMGET', KEYS[1], 'node', 'epoch', 'since')
  return {0, cur[1] or '', tonumber(cur[2]) or 0, redis.call('PTTL', KEYS[1]), tonumber(cur[3]) or 0}
end
local stored = redis.call('GET', KEYS[2])
local last = 0
if stored then
  last = tonumber(stored)
  if not last or last >= 9007199254740992 then
    return redis.error_reply('WRONGTYPE elector: key ' .. KEYS[2] ..
      ' holds a string that is not an epoch number below 2^53; another program uses this key')
  end
end
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local epoch = math.max(last + 1, now_us)
local since = math.floor(now_us / 1000)
local e = string.format('%.0f', epoch)
redis.call('SET', KEYS[2], e)
redis.call('HSET', KEYS[1], 'token', ARGV[1], 'node', ARGV[2], 'epoch', e,
  'since', string.format('%.0f', since))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PUBLISH', KEYS[3], 'acquired ' .. e .. ' ' .. ARGV[2])
return {1, ARGV[2], epoch, tonumber(ARGV[3]), since}
"#;

/// KEYS: leader. ARGV: token, ttl_ms. Returns 1 if extended, 0 if the token no longer holds.
const RENEW: &str = r#"
local err = check(KEYS[1], 'hash')
if err then return err end
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"#;

/// KEYS: leader, channel. ARGV: token. Deletes the lease only if the token holds it and
/// tells waiters. Returns 1 if released, 0 if it was not ours (any more).
const RELEASE: &str = r#"
local err = check(KEYS[1], 'hash')
if err then return err end
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then
  local e = redis.call('HGET', KEYS[1], 'epoch') or ''
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', KEYS[2], 'released ' .. e)
  return 1
end
return 0
"#;

/// KEYS: leader. Returns `{node, epoch, pttl_ms, since_ms}`, or nil when nobody leads.
const READ: &str = r#"
local err = check(KEYS[1], 'hash')
if err then return err end
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local cur = redis.call('HMGET', KEYS[1], 'node', 'epoch', 'since')
return {cur[1] or '', tonumber(cur[2]) or 0, redis.call('PTTL', KEYS[1]), tonumber(cur[3]) or 0}
"#;

fn script(body: &str) -> Script {
    Script::new(&format!("{CHECK_TYPES}{body}"))
}

pub(crate) static ACQUIRE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(ACQUIRE));
pub(crate) static RENEW_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(RENEW));
pub(crate) static RELEASE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(RELEASE));
pub(crate) static READ_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(READ));

/// The lease as a script saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Holder {
    pub(crate) info: LeaderInfo,
    /// Time left on the lease when the script ran (`None` if the key has no TTL).
    pub(crate) ttl_left: Option<Duration>,
}

/// What an acquisition found.
#[derive(Debug)]
pub(crate) enum Acquired {
    /// We hold it now.
    Granted(LeaderInfo),
    /// Someone else (or an earlier leadership of ours) holds it.
    Busy(Holder),
}

/// Builds a [`Holder`] from script fields; `None` if the node id is not one of ours.
pub(crate) fn holder(node: &str, epoch: i64, pttl_ms: i64, since_ms: i64) -> Option<Holder> {
    let node = NodeId::new(node).ok()?;
    Some(Holder {
        info: LeaderInfo {
            node,
            epoch: Epoch(u64::try_from(epoch).ok()?),
            since: UNIX_EPOCH + Duration::from_millis(u64::try_from(since_ms).unwrap_or(0)),
        },
        ttl_left: u64::try_from(pttl_ms).ok().map(Duration::from_millis),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_refuses_a_node_id_that_is_not_valid() {
        assert!(holder("n1", 7, 500, 1).is_some());
        assert!(holder("", 7, 500, 1).is_none());
        assert!(holder("bad id", 7, 500, 1).is_none());
        assert!(holder("n1", -1, 500, 1).is_none());
    }

    #[test]
    fn a_key_without_ttl_reports_no_time_left() {
        let h = holder("n1", 7, -1, 1).unwrap();
        assert_eq!(h.ttl_left, None);
        assert_eq!(h.info.epoch, Epoch(7));
    }

    #[test]
    fn every_script_checks_key_types_before_touching_them() {
        for s in [ACQUIRE, RENEW, RELEASE, READ] {
            assert!(s.trim_start().starts_with("local err = check("), "{s}");
        }
    }
}
