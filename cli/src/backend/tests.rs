use std::io::Write as _;

use super::*;
use crate::config::{FlagValues, load};

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

#[test]
fn an_unknown_backend_is_refused_listing_the_known_ones() {
    let f = file("[backend]\nkind = \"zoo\"\n");
    let l = load(Some(f.path()), &FlagValues::default()).unwrap();
    let e = selected_kind(&l).unwrap_err();
    let msg = format!("{:#}", e.error);
    assert!(msg.contains("backend.kind"), "{msg}");
    assert!(
        msg.contains("raft, bully, paxos, redis, etcd, zookeeper, postgres"),
        "{msg}"
    );
    assert!(msg.contains(&f.path().display().to_string()), "{msg}");
}

#[test]
fn the_memory_kind_is_refused_because_it_coordinates_nothing() {
    let f = file("[backend]\nkind = \"memory\"\n");
    let l = load(Some(f.path()), &FlagValues::default()).unwrap();
    let msg = format!("{:#}", selected_kind(&l).unwrap_err().error);
    assert!(msg.contains("backend.kind"), "{msg}");
    assert!(msg.contains("coordinates nothing"), "{msg}");
}

#[cfg(feature = "redis")]
#[test]
fn a_kill_grace_longer_than_the_timing_allows_is_refused() {
    let f = file("[backend]\nkind = \"redis\"\n[run]\nkill_grace = \"5s\"\n");
    let l = load(Some(f.path()), &FlagValues::default()).unwrap();
    let msg = format!("{:#}", checked(&l).err().unwrap().error);
    assert!(msg.contains("run.kill_grace"), "{msg}");
}

#[cfg(feature = "raft")]
#[test]
fn a_peer_backends_node_id_defaults_to_the_top_level_one_and_bounds_the_kill_grace() {
    let f = file(
        "node_id = \"n7\"\n[backend]\nkind = \"raft\"\n[backend.raft]\nsecret = \"0123456789abcdef0123\"\nkill_grace = \"60ms\"\n",
    );
    let l = load(Some(f.path()), &FlagValues::default()).unwrap();
    let backend = checked(&l).unwrap();
    assert_eq!(backend.kind(), Kind::Raft);
    #[allow(
        irrefutable_let_patterns,
        reason = "raft may be the only backend built"
    )]
    let BackendConfig::Raft(raft) = &backend else {
        panic!("not raft")
    };
    assert_eq!(raft.node_id.as_ref().map(|n| n.as_str()), Some("n7"));
    assert_eq!(
        backend.kill_grace_limit(&l),
        (Duration::from_millis(60), "backend.raft.kill_grace")
    );
    let entries = backend.entries();
    assert_eq!(entries.kind, "raft");
    assert!(entries.node_id_defaulted);
}

#[test]
fn every_compiled_in_kind_is_extracted_as_itself() {
    for kind in Kind::ALL.into_iter().filter(|k| k.is_compiled_in()) {
        let mut flags = FlagValues::default();
        flags.set("backend.kind", kind.as_str());
        flags.set("node_id", "n1");
        let l = load(None, &flags).unwrap();
        let extracted = BackendConfig::extract(&l).unwrap_or_else(|e| panic!("{kind}: {e:?}"));
        assert_eq!(extracted.kind(), kind);
        assert_eq!(extracted.entries().kind, kind.as_str());
        assert_eq!(
            extracted.entries().node_id_defaulted,
            kind.is_hosted_by_agent()
        );
    }
}
