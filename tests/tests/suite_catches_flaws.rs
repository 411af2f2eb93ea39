//! The conformance suite catches broken backends: each test wraps `MemoryBackend` with one
//! deliberate flaw (see [`flaws::Flaw`]) and checks that the property meant to catch it
//! fails, naming the backend and the property. The wrapper without a flaw passes every
//! property (the `without_a_flaw` tests), so the failures come from the flaws.
//!
//! # Which flaw proves which property can fail
//!
//! Every property of `conformance_suite!` has at least one flaw here that it catches; the
//! third column names the other properties that catch the same flaw (checked with the
//! ignored `every_flaw_against_every_property` test, which prints the whole matrix).
//!
//! | property                                              | flaw(s) it catches           | also caught by                                   |
//! |-------------------------------------------------------|------------------------------|--------------------------------------------------|
//! | `alone_is_elected`                                    | `NeverElects`                | every property that needs a leader               |
//! | `second_candidate_waits`                              | `NoRenewal`                  | (none)                                           |
//! |                                                       | `NoMutualExclusion`          | `at_most_one_holder`, `takeover_…`, …            |
//! | `at_most_one_holder`                                  | `NoMutualExclusion`          | see above                                        |
//! |                                                       | `SameEpoch`                  | `epochs_rise_…`, `a_paused_leader_is_fenced_off` |
//! | `epochs_rise_across_handoffs`                         | `SameEpoch`                  | see above                                        |
//! | `resign_hands_over_without_waiting_for_ttl`           | `ResignWaitsForTtl`          | `dropping_a_leadership_releases_it`              |
//! | `lost_fires_in_time_when_cut_off`                     | `LateLoss`                   | `takeover_…`, `a_paused_leader_is_fenced_off`    |
//! | `takeover_only_after_the_cut_off_holder_lost`         | `LateLoss`                   | see above                                        |
//! | `a_paused_leader_is_fenced_off`                       | `SameEpoch`, `LateLoss`      | see above                                        |
//! | `no_takeover_inside_the_kill_grace_after_a_cut_off`   | `ReleasesAtDeadline`         | the `_after_a_stall` twin                        |
//! |                                                       | `NoKillGrace`                | the `_after_a_stall` twin                        |
//! | `no_takeover_inside_the_kill_grace_after_a_stall`     | `ReleasesAtDeadline`, `NoKillGrace` | the `_after_a_cut_off` twin               |
//! | `observe_reports_every_change`                        | `HidesNoLeader`              | (none)                                           |
//! | `dropping_a_campaign_withdraws_the_candidacy`         | `CampaignNotWithdrawn`       | (see the matrix)                                 |
//! | `dropping_a_leadership_releases_it`                   | `DropDoesNotRelease`         | (none)                                           |
//! |                                                       | `ResignWaitsForTtl`          | `resign_hands_over_…`                            |
//! | `elections_are_independent`                           | `SharedKeyPrefix`            | (none)                                           |
//! | `invalid_election_names_are_refused`                  | `NarrowKeySpace`             | (none)                                           |
//!
//! `invalid_election_names_are_refused` checks two things: that `ElectionName` refuses bad
//! names (election-core's type, which no backend can change: a backend only ever receives
//! validated names), and that every valid name, up to the longest, works on the backend.
//! The realistic backend flaw is the second: a key space narrower than the name rules.
//!
//! Not here: an epoch reused after a restart of a node or server. No property can see it
//! until the harness can restart (`restart_server` / `restart_node`, issue 15 item 2,
//! built separately); its flaw belongs with that property.

mod flaws;

use flaws::{Flaw, KEY_BYTES, NARROW_MAX, Timing, assert_caught, property, run};

/// One control test per property: the wrapper without a flaw passes it.
macro_rules! without_a_flaw {
    ($timing:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                assert_eq!(crate::run(crate::Flaw::None, $timing, crate::property!($name)).await, None);
            }
        )*
    };
}

/// The control run, with the timing most flaws use: every property of the suite.
mod without_a_flaw {
    without_a_flaw!(crate::Timing::Fast;
        alone_is_elected,
        second_candidate_waits,
        at_most_one_holder,
        epochs_rise_across_handoffs,
        resign_hands_over_without_waiting_for_ttl,
        lost_fires_in_time_when_cut_off,
        takeover_only_after_the_cut_off_holder_lost,
        a_paused_leader_is_fenced_off,
        no_takeover_inside_the_kill_grace_after_a_cut_off,
        no_takeover_inside_the_kill_grace_after_a_stall,
        observe_reports_every_change,
        dropping_a_campaign_withdraws_the_candidacy,
        dropping_a_leadership_releases_it,
        elections_are_independent,
        invalid_election_names_are_refused,
    );

    /// The control for the wide-grace timing `Flaw::NoKillGrace` runs with.
    mod with_a_wide_grace {
        without_a_flaw!(crate::Timing::WideGrace;
            no_takeover_inside_the_kill_grace_after_a_cut_off,
            no_takeover_inside_the_kill_grace_after_a_stall,
            takeover_only_after_the_cut_off_holder_lost,
            lost_fires_in_time_when_cut_off,
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_election_that_never_elects_is_caught_by_alone_is_elected() {
    let m = run(Flaw::NeverElects, Timing::Fast, property!(alone_is_elected)).await;
    assert_caught(m, "alone_is_elected", "did not happen within");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewals_that_do_not_keep_the_leadership_are_caught_by_second_candidate_waits() {
    let m = run(
        Flaw::NoRenewal,
        Timing::Fast,
        property!(second_candidate_waits),
    )
    .await;
    assert_caught(m, "second_candidate_waits", "renewals do not keep it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_mutual_exclusion_is_caught_by_second_candidate_waits() {
    let m = run(
        Flaw::NoMutualExclusion,
        Timing::Fast,
        property!(second_candidate_waits),
    )
    .await;
    assert_caught(
        m,
        "second_candidate_waits",
        "try_campaign on node node-2 returned",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_mutual_exclusion_is_caught_by_at_most_one_holder() {
    let m = run(
        Flaw::NoMutualExclusion,
        Timing::Fast,
        property!(at_most_one_holder),
    )
    .await;
    assert_caught(m, "at_most_one_holder", "two holders at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_epoch_is_caught_by_the_history_of_at_most_one_holder() {
    let m = run(Flaw::SameEpoch, Timing::Fast, property!(at_most_one_holder)).await;
    assert_caught(m, "at_most_one_holder", "was granted twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_epoch_is_caught_by_epochs_rise_across_handoffs() {
    let m = run(
        Flaw::SameEpoch,
        Timing::Fast,
        property!(epochs_rise_across_handoffs),
    )
    .await;
    assert_caught(m, "epochs_rise_across_handoffs", "is not above epoch 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_epoch_is_caught_by_the_fence() {
    let m = run(
        Flaw::SameEpoch,
        Timing::Fast,
        property!(a_paused_leader_is_fenced_off),
    )
    .await;
    assert_caught(
        m,
        "a_paused_leader_is_fenced_off",
        "not above the paused leader's",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resign_that_waits_for_the_ttl_is_caught() {
    let m = run(
        Flaw::ResignWaitsForTtl,
        Timing::Fast,
        property!(resign_hands_over_without_waiting_for_ttl),
    )
    .await;
    assert_caught(
        m,
        "resign_hands_over_without_waiting_for_ttl",
        "waited for the lease to run out",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resign_that_waits_for_the_ttl_is_caught_when_dropping() {
    let m = run(
        Flaw::ResignWaitsForTtl,
        Timing::Fast,
        property!(dropping_a_leadership_releases_it),
    )
    .await;
    assert_caught(
        m,
        "dropping_a_leadership_releases_it",
        "waited for the lease to run out",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_loss_is_caught_by_lost_fires_in_time_when_cut_off() {
    let m = run(
        Flaw::LateLoss,
        Timing::Fast,
        property!(lost_fires_in_time_when_cut_off),
    )
    .await;
    assert_caught(m, "lost_fires_in_time_when_cut_off", "loss_within");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_loss_is_caught_by_the_takeover_ordering() {
    let m = run(
        Flaw::LateLoss,
        Timing::Fast,
        property!(takeover_only_after_the_cut_off_holder_lost),
    )
    .await;
    assert_caught(
        m,
        "takeover_only_after_the_cut_off_holder_lost",
        "still held epoch",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_loss_is_caught_by_the_fence_property() {
    let m = run(
        Flaw::LateLoss,
        Timing::Fast,
        property!(a_paused_leader_is_fenced_off),
    )
    .await;
    assert_caught(
        m,
        "a_paused_leader_is_fenced_off",
        "still reports is_held()",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_at_the_deadline_after_a_cut_off_is_caught() {
    let m = run(
        Flaw::ReleasesAtDeadline,
        Timing::Fast,
        property!(no_takeover_inside_the_kill_grace_after_a_cut_off),
    )
    .await;
    assert_caught(
        m,
        "no_takeover_inside_the_kill_grace_after_a_cut_off",
        "could still be in its kill grace",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_at_the_deadline_after_a_stall_is_caught() {
    let m = run(
        Flaw::ReleasesAtDeadline,
        Timing::Fast,
        property!(no_takeover_inside_the_kill_grace_after_a_stall),
    )
    .await;
    assert_caught(
        m,
        "no_takeover_inside_the_kill_grace_after_a_stall",
        "could still be in its kill grace",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_without_the_kill_grace_is_caught_after_a_cut_off() {
    let m = run(
        Flaw::NoKillGrace,
        Timing::WideGrace,
        property!(no_takeover_inside_the_kill_grace_after_a_cut_off),
    )
    .await;
    assert_caught(
        m,
        "no_takeover_inside_the_kill_grace_after_a_cut_off",
        "could still be in its kill grace",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_without_the_kill_grace_is_caught_after_a_stall() {
    let m = run(
        Flaw::NoKillGrace,
        Timing::WideGrace,
        property!(no_takeover_inside_the_kill_grace_after_a_stall),
    )
    .await;
    assert_caught(
        m,
        "no_takeover_inside_the_kill_grace_after_a_stall",
        "could still be in its kill grace",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_that_hides_no_leader_is_caught() {
    let m = run(
        Flaw::HidesNoLeader,
        Timing::Fast,
        property!(observe_reports_every_change),
    )
    .await;
    assert_caught(
        m,
        "observe_reports_every_change",
        "observe() reported no change",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_campaign_that_is_not_withdrawn_is_caught() {
    let m = run(
        Flaw::CampaignNotWithdrawn,
        Timing::Fast,
        property!(dropping_a_campaign_withdraws_the_candidacy),
    )
    .await;
    assert_caught(
        m,
        "dropping_a_campaign_withdraws_the_candidacy",
        "withdrawn",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_leadership_that_is_not_released_is_caught() {
    let m = run(
        Flaw::DropDoesNotRelease,
        Timing::Fast,
        property!(dropping_a_leadership_releases_it),
    )
    .await;
    assert_caught(
        m,
        "dropping_a_leadership_releases_it",
        "waited for the lease to run out",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_talk_between_elections_is_caught() {
    let m = run(
        Flaw::SharedKeyPrefix,
        Timing::Fast,
        property!(elections_are_independent),
    )
    .await;
    // Both names start with the same KEY_BYTES bytes, `conf-indep`.
    assert!(KEY_BYTES <= "conf-indep".len());
    assert_caught(
        m,
        "elections_are_independent",
        "being elected in conf-indep-b",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_space_narrower_than_the_name_rules_is_caught() {
    let m = run(
        Flaw::NarrowKeySpace,
        Timing::Fast,
        property!(invalid_election_names_are_refused),
    )
    .await;
    assert!(NARROW_MAX < election_core::MAX_ELECTION_NAME_LEN);
    assert_caught(
        m,
        "invalid_election_names_are_refused",
        "is not a key of this backend",
    );
}
