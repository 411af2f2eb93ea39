//! The `elector` configuration file of each host (TOML), as an operator would write it.
//!
//! Lease backends: `[backend.KIND]` points at the host's proxy in front of the server.
//! Peer backends: `[backend.KIND]` has the agent's `listen`, `data_dir`, a shared `secret`,
//! the peer timings and `peers`, where every other node's address is the proxy this host
//! dials it through; `[agent] socket` (beside the data dir) is where `elector run` finds its
//! agent, `[agent] listen` its read-only API. Both have the
//! `[timing]` of [`Timings`].

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::options::{Backend, Timings};

/// What differs between hosts of a peer backend.
#[derive(Debug)]
pub(crate) struct PeerHost<'a> {
    /// Where the agent's peer transport listens.
    pub(crate) listen: SocketAddr,
    /// Every node and the address this host dials it at (itself: its own listen).
    pub(crate) peers: &'a [(String, SocketAddr)],
    /// The agent's state directory.
    pub(crate) data_dir: &'a Path,
    /// The agent's HTTP API.
    pub(crate) api: SocketAddr,
}

/// A duration as TOML: `"300ms"`.
fn d(x: Duration) -> String {
    format!("\"{}ms\"", x.as_millis())
}

fn timing(t: &Timings) -> String {
    format!(
        "[timing]\nttl = {}\nrenew_interval = {}\nretry_interval = {}\nclock_drift = {}\n\
         kill_grace = {}\n",
        d(t.ttl),
        d(t.renew),
        d(t.retry),
        d(t.clock_drift),
        d(t.kill_grace)
    )
}

/// The configuration of a host of a lease backend that reaches the server at `via`.
pub(crate) fn lease_host(backend: Backend, node: &str, via: SocketAddr, t: &Timings) -> String {
    let section = match backend {
        Backend::Redis => format!("url = \"redis://{via}\"\n"),
        Backend::Etcd => format!("endpoints = [\"http://{via}\"]\n"),
        Backend::ZooKeeper => format!("connect_string = \"{via}\"\n"),
        Backend::ZooKeeperEnsemble => format!(
            "connect_string = \"{via}\"\nfollower_lag = {}\n",
            d(crate::launch::ENSEMBLE_TICK * (crate::launch::ENSEMBLE_SYNC_LIMIT + 1))
        ),
        Backend::Postgres => format!(
            "url = \"postgres://{}:{}@{via}/postgres?sslmode=disable\"\n\
             statement_timeout = \"300ms\"\n",
            crate::launch::POSTGRES_USER,
            crate::launch::POSTGRES_PASSWORD
        ),
        Backend::Raft | Backend::Bully | Backend::Paxos => {
            unreachable!("{backend} is a peer backend")
        }
    };
    let kind = backend.kind();
    format!(
        "node_id = \"{node}\"\n[backend]\nkind = \"{kind}\"\n[backend.{kind}]\n{section}{}",
        timing(t)
    )
}

/// The configuration of a host of a peer backend.
pub(crate) fn peer_host(backend: Backend, node: &str, h: &PeerHost<'_>, t: &Timings) -> String {
    let own = match backend {
        Backend::Raft => format!(
            "heartbeat = {}\nelection_timeout_min = {}\nelection_timeout_max = {}\n",
            d(t.heartbeat),
            d(t.election_timeout),
            d(t.election_timeout * 2)
        ),
        Backend::Bully => format!(
            "heartbeat = {}\nfailure_timeout = {}\nanswer_timeout = {}\n",
            d(t.heartbeat),
            d(t.election_timeout),
            d(t.election_timeout / 4)
        ),
        Backend::Paxos => format!(
            "lease = {}\nrenew = {}\nround_timeout = {}\n",
            d(t.election_timeout),
            d(t.heartbeat),
            d(t.election_timeout / 4)
        ),
        _ => unreachable!("{backend} is a lease backend"),
    };
    let peers: String = h
        .peers
        .iter()
        .map(|(n, a)| format!("{n} = \"{a}\"\n"))
        .collect();
    format!(
        "node_id = \"{node}\"\n[backend]\nkind = \"{backend}\"\n[backend.{backend}]\n\
         listen = \"{listen}\"\ndata_dir = \"{data}\"\nsecret = \"a-chaos-secret-of-32-bytes-length\"\n\
         {own}clock_drift = {drift}\nkill_grace = {grace}\n[backend.{backend}.peers]\n{peers}\
         {timing}[agent]\nlisten = \"{api}\"\nsocket = \"{data}.agent.sock\"\nelections = [\"chaos\"]\n",
        listen = h.listen,
        data = h.data_dir.display(),
        drift = d(t.clock_drift),
        grace = d(t.kill_grace),
        timing = timing(t),
        api = h.api,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_host_points_at_its_proxy() {
        let via: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let text = lease_host(Backend::Etcd, "n2", via, &Timings::default());
        assert!(
            text.contains("endpoints = [\"http://127.0.0.1:4000\"]"),
            "{text}"
        );
        assert!(text.contains("ttl = \"2000ms\""), "{text}");
    }

    #[test]
    fn a_peer_host_lists_its_peers_and_agent() {
        let peers = [
            ("n1".to_owned(), "127.0.0.1:1".parse().unwrap()),
            ("n2".to_owned(), "127.0.0.1:2".parse().unwrap()),
        ];
        let h = PeerHost {
            listen: "127.0.0.1:1".parse().unwrap(),
            peers: &peers,
            data_dir: Path::new("/tmp/x"),
            api: "127.0.0.1:3".parse().unwrap(),
        };
        let text = peer_host(Backend::Raft, "n1", &h, &Timings::default());
        assert!(
            text.contains("[backend.raft.peers]\nn1 = \"127.0.0.1:1\"\nn2"),
            "{text}"
        );
        assert!(text.contains("election_timeout_max = \"4000ms\""), "{text}");
        assert!(text.contains("[agent]\nlisten = \"127.0.0.1:3\""), "{text}");
    }
}
