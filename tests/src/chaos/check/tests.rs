//! The checker's rules on hand-made records.

use election_core::Epoch;

use super::super::journal::{FaultRecord, Hello, Life, Record, Target, Write};
use super::super::schedule::Class;
use super::*;

const MS: u64 = 1_000_000;
const LEASE: u64 = 2_000 * MS;

fn life(node: &str, epoch: u64, start_ms: u64, end_ms: u64) -> Life {
    Life {
        accepted_ns: start_ms * MS + MS,
        hello: Some(Hello {
            node: node.into(),
            epoch: Epoch(epoch),
            pid: 100 + epoch as u32,
            start_ns: start_ms * MS,
        }),
        term_ns: None,
        bye_ns: None,
        eof_ns: Some(end_ms * MS),
        accepted: 0,
        refused: Vec::new(),
        garbled: None,
    }
}

fn pause(host: usize, start_ms: u64, end_ms: u64, class: Class) -> FaultRecord {
    FaultRecord {
        class,
        target: Target::Host(host),
        what: "test pause".into(),
        start_ns: start_ms * MS,
        end_ns: Some(end_ms * MS),
        lost_data: false,
    }
}

fn record(lives: Vec<Life>, faults: Vec<FaultRecord>) -> Record {
    Record {
        lives,
        writes: Vec::new(),
        faults,
        notes: Vec::new(),
    }
}

#[test]
fn a_clean_handover_breaks_no_rule() {
    let r = record(
        vec![life("n1", 1, 0, 1000), life("n2", 2, 1500, 3000)],
        vec![],
    );
    let f = check(&r, LEASE, 5000 * MS);
    assert_eq!(f.violations, []);
    assert_eq!(f.leaderships, 2);
    assert!(f.worst_explained.is_none() && f.worst_unexplained.is_none());
}

#[test]
fn two_children_at_once_is_an_overlap_unless_the_old_host_was_paused_whole() {
    let lives = vec![life("n1", 1, 0, 1200), life("n2", 2, 1000, 3000)];
    let f = check(&record(lives.clone(), vec![]), LEASE, 5000 * MS);
    assert_eq!(f.violations.len(), 1, "{:?}", f.violations);
    let worst = f.worst_unexplained.unwrap();
    assert_eq!((worst.from_ns, worst.to_ns), (1000 * MS, 1200 * MS));

    // A whole-host pause of n1 (host 0) ending shortly before explains it ...
    let f = check(
        &record(lives.clone(), vec![pause(0, 100, 900, Class::PauseHost)]),
        LEASE,
        5000 * MS,
    );
    assert_eq!(f.violations, []);
    assert_eq!(f.overlaps_explained, 1);
    assert_eq!(f.worst_explained.unwrap().explained_by, Some(0));

    // ... but not a pause of the new leader's host, nor a pause of elector run alone.
    for p in [
        pause(1, 100, 900, Class::PauseHost),
        pause(0, 100, 900, Class::PauseRun),
    ] {
        let f = check(&record(lives.clone(), vec![p]), LEASE, 5000 * MS);
        assert_eq!(f.violations.len(), 1);
    }
    // Nor a pause that ended longer than a lease before the overlap.
    let lives = vec![life("n1", 1, 0, 5200), life("n2", 2, 5000, 6000)];
    let f = check(
        &record(lives, vec![pause(0, 100, 900, Class::PauseHost)]),
        LEASE,
        9000 * MS,
    );
    assert_eq!(f.violations.len(), 1);
}

#[test]
fn an_overlap_after_a_server_restart_that_lost_its_data_is_explained_but_not_after_one_that_kept_it()
 {
    let lives = vec![life("n1", 1, 0, 1200), life("n2", 2, 1000, 3000)];
    let restart = |lost_data| FaultRecord {
        class: Class::RestartServer,
        target: Target::Server,
        what: "test restart".into(),
        start_ns: 800 * MS,
        end_ns: Some(900 * MS),
        lost_data,
    };
    let f = check(
        &record(lives.clone(), vec![restart(true)]),
        LEASE,
        5000 * MS,
    );
    assert_eq!(f.violations, []);
    assert_eq!(f.overlaps_explained, 1);
    let f = check(&record(lives, vec![restart(false)]), LEASE, 5000 * MS);
    assert_eq!(f.violations.len(), 1, "{:?}", f.violations);
}

#[test]
fn an_epoch_given_to_two_nodes_is_a_violation_but_one_node_restarting_is_not() {
    let lives = vec![
        life("n1", 3, 0, 100),
        life("n1", 3, 200, 300),
        life("n2", 3, 400, 500),
    ];
    let f = check(&record(lives, vec![]), LEASE, 1000 * MS);
    assert_eq!(f.violations.len(), 1, "{:?}", f.violations);
    assert!(matches!(
        &f.violations[0],
        Violation::EpochTwice { epoch: Epoch(3), second, .. } if second.node == "n2"
    ));
}

#[test]
fn an_epoch_going_back_is_a_violation_unless_the_stale_host_was_paused_whole() {
    let lives = vec![life("n1", 5, 0, 100), life("n2", 4, 3000, 3100)];
    let f = check(&record(lives.clone(), vec![]), LEASE, 9000 * MS);
    assert!(
        matches!(&f.violations[..], [Violation::EpochBack { stale, .. }] if stale.node == "n2")
    );
    let f = check(
        &record(lives, vec![pause(1, 500, 2500, Class::PauseHost)]),
        LEASE,
        9000 * MS,
    );
    assert_eq!(f.violations, []);
    assert_eq!(f.epoch_back_explained, 1);
}

#[test]
fn refused_writes_are_a_violation_unless_a_whole_host_pause_explains_them() {
    let mut old = life("n1", 1, 0, 3000);
    old.refused = vec![2500 * MS, 2520 * MS];
    let lives = vec![old, life("n2", 2, 3100, 4000)];
    let f = check(&record(lives.clone(), vec![]), LEASE, 9000 * MS);
    assert!(matches!(
        &f.violations[..],
        [Violation::Refused { count: 2, .. }]
    ));
    let f = check(
        &record(lives, vec![pause(0, 100, 2400, Class::PauseHost)]),
        LEASE,
        9000 * MS,
    );
    assert_eq!(f.violations, []);
    assert_eq!((f.refused, f.refused_explained), (2, 2));
}

#[test]
fn a_stale_write_accepted_is_a_violation() {
    let mut r = record(vec![life("n1", 2, 0, 100), life("n2", 1, 200, 300)], vec![]);
    let w = |child, epoch, accepted| Write {
        at_ns: 0,
        child,
        epoch: Epoch(epoch),
        accepted,
    };
    r.writes = vec![w(0, 2, true), w(1, 1, false), w(1, 1, true)];
    let f = check(&r, LEASE, 1000 * MS);
    assert!(
        f.violations.iter().any(|v| matches!(
            v,
            Violation::StaleAccepted {
                highest: Epoch(2),
                ..
            }
        )),
        "{:?}",
        f.violations
    );
}

#[test]
fn violations_are_attributed_to_the_faults_around_them() {
    let lives = vec![life("n1", 1, 0, 1200), life("n2", 2, 1000, 3000)];
    let faults = vec![
        pause(0, 100, 900, Class::PauseRun),
        pause(2, 8000, 8100, Class::Blackhole),
        pause(2, 500, 900, Class::Reset),
    ];
    let r = record(lives, faults);
    let f = check(&r, LEASE, 9000 * MS);
    let near = by_class(&r, &f.violations, LEASE);
    assert_eq!(near.get(&Class::PauseRun), Some(&1));
    assert_eq!(near.get(&Class::Blackhole), None, "too late");
    assert_eq!(
        near.get(&Class::Reset),
        None,
        "on a host neither child ran on"
    );
}
