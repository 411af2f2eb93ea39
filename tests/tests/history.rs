//! The history checker catches each kind of bad history, and passes a good one.

use election_core::{Epoch, NodeId};
use election_tests::history::{History, Violation};

fn n(id: &str) -> NodeId {
    NodeId::new(id).unwrap()
}

fn violations(h: &History) -> Vec<Violation> {
    h.check().expect_err("the checker must reject this history")
}

#[test]
fn a_good_history_with_handoffs_losses_and_fenced_writes_passes() {
    let h = History::new();
    h.granted(&n("a"), Epoch(1));
    h.fenced_write(&n("a"), Epoch(1), true);
    h.fenced_write(&n("a"), Epoch(1), true);
    h.resigned(&n("a"), Epoch(1));
    h.granted(&n("b"), Epoch(2));
    h.fenced_write(&n("b"), Epoch(2), true);
    h.lost(&n("b"), Epoch(2));
    // A stale write refused is the fence doing its job.
    h.fenced_write(&n("a"), Epoch(1), false);
    h.granted(&n("a"), Epoch(7));
    h.fenced_write(&n("a"), Epoch(7), true);
    assert_eq!(h.check(), Ok(()), "{h}");
    assert_eq!(h.grants(), 3);
}

#[test]
fn an_epoch_granted_twice_is_caught() {
    let h = History::new();
    h.granted(&n("a"), Epoch(3));
    h.resigned(&n("a"), Epoch(3));
    h.granted(&n("b"), Epoch(3));
    let v = violations(&h);
    assert!(
        v.contains(&Violation::EpochGrantedTwice {
            epoch: Epoch(3),
            first: n("a"),
            second: n("b")
        }),
        "{v:?}"
    );
}

#[test]
fn epochs_going_back_in_grant_order_are_caught() {
    let h = History::new();
    h.granted(&n("a"), Epoch(5));
    h.resigned(&n("a"), Epoch(5));
    h.granted(&n("b"), Epoch(4));
    assert_eq!(
        violations(&h),
        vec![Violation::EpochNotRising {
            node: n("b"),
            epoch: Epoch(4),
            previous: Epoch(5)
        }]
    );
}

#[test]
fn two_holders_overlapping_without_a_pause_are_caught() {
    let h = History::new();
    h.granted(&n("a"), Epoch(1));
    h.granted(&n("b"), Epoch(2));
    h.lost(&n("a"), Epoch(1));
    let v = violations(&h);
    assert_eq!(
        v,
        vec![Violation::Overlap {
            holder: n("a"),
            holder_epoch: Epoch(1),
            newcomer: n("b"),
            newcomer_epoch: Epoch(2)
        }]
    );
    assert!(v[0].to_string().contains("two holders at once"), "{}", v[0]);
}

#[test]
fn a_loss_of_another_epoch_does_not_end_a_holding() {
    let h = History::new();
    h.granted(&n("a"), Epoch(1));
    h.lost(&n("a"), Epoch(9));
    h.granted(&n("b"), Epoch(2));
    assert!(matches!(violations(&h)[..], [Violation::Overlap { .. }]));
}

#[test]
fn an_overlap_after_an_injected_pause_is_excused() {
    let h = History::new();
    h.granted(&n("a"), Epoch(1));
    h.pause_injected();
    h.granted(&n("b"), Epoch(2));
    h.fenced_write(&n("b"), Epoch(2), true);
    h.fenced_write(&n("a"), Epoch(1), false);
    h.lost(&n("a"), Epoch(1));
    assert_eq!(h.check(), Ok(()), "{h}");
}

#[test]
fn a_pause_excuses_only_the_holders_of_its_time() {
    let h = History::new();
    h.pause_injected();
    h.granted(&n("a"), Epoch(1));
    h.granted(&n("b"), Epoch(2));
    assert!(matches!(violations(&h)[..], [Violation::Overlap { .. }]));
}

#[test]
fn a_stale_fenced_write_accepted_after_a_newer_one_is_caught() {
    let h = History::new();
    h.granted(&n("a"), Epoch(1));
    h.pause_injected();
    h.granted(&n("b"), Epoch(2));
    h.fenced_write(&n("b"), Epoch(2), true);
    h.fenced_write(&n("a"), Epoch(1), true);
    assert_eq!(
        violations(&h),
        vec![Violation::StaleWriteAccepted {
            node: n("a"),
            epoch: Epoch(1),
            highest: Epoch(2)
        }]
    );
}

#[test]
fn every_violation_in_one_history_is_reported() {
    let h = History::new();
    h.granted(&n("a"), Epoch(2));
    h.granted(&n("b"), Epoch(2));
    h.fenced_write(&n("b"), Epoch(2), true);
    h.fenced_write(&n("a"), Epoch(1), true);
    let v = violations(&h);
    assert!(
        v.iter()
            .any(|v| matches!(v, Violation::EpochGrantedTwice { .. })),
        "{v:?}"
    );
    assert!(
        v.iter()
            .any(|v| matches!(v, Violation::EpochNotRising { .. })),
        "{v:?}"
    );
    assert!(
        v.iter().any(|v| matches!(v, Violation::Overlap { .. })),
        "{v:?}"
    );
    assert!(
        v.iter()
            .any(|v| matches!(v, Violation::StaleWriteAccepted { .. })),
        "{v:?}"
    );
}

#[test]
fn a_history_is_shared_by_its_clones_across_threads_in_order() {
    let h = History::new();
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let h = h.clone();
            std::thread::spawn(move || {
                for i in 0..100 {
                    h.fenced_write(&n(&format!("n{t}")), Epoch(i), false);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let events = h.events();
    assert_eq!(events.len(), 400);
    assert!(
        events.windows(2).all(|w| w[0].at <= w[1].at),
        "times never go back"
    );
}
