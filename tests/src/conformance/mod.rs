//! The conformance suite: the properties every backend must have, each an async function
//! `pub async fn property(h: &dyn Harness)` that panics with a message naming the backend
//! and what went wrong. [`conformance_suite!`](crate::conformance_suite) turns them into
//! one test each.
//!
//! Each property uses fresh election names, so properties may share a server. Timing
//! bounds come from the harness's [`Bounds`]: a bound that is one timer away from its event
//! (`lost()` at the holder's deadline) gets [`SCHEDULING_SLACK`] (250 ms) for a late timer;
//! bounds that span several round trips and retries get [`SLACK`] (2 s); orderings (the old leader's deadline passed before the new grant) are checked on the
//! monotonic clock, not by sleeping.

mod basic;
mod faults;
mod grace;
mod handoff;
mod harness;
mod macros;
mod observe;
mod pause;
mod restart;
mod safety;
mod support;

pub use basic::{
    alone_is_elected, elections_are_independent, invalid_election_names_are_refused,
    second_candidate_waits,
};
pub use faults::{
    a_paused_leader_is_fenced_off, lost_fires_in_time_when_cut_off,
    takeover_only_after_the_cut_off_holder_lost,
};
pub use grace::{
    no_takeover_inside_the_kill_grace_after_a_cut_off,
    no_takeover_inside_the_kill_grace_after_a_stall,
};
pub use handoff::{
    dropping_a_campaign_withdraws_the_candidacy, dropping_a_leadership_releases_it,
    epochs_rise_across_handoffs, resign_hands_over_without_waiting_for_ttl,
};
pub use harness::{Bounds, Harness, Restart, TestNode};
pub use observe::observe_reports_every_change;
pub use pause::a_frozen_holder_is_fenced_off;
pub use restart::epochs_rise_across_restarts;
pub use safety::at_most_one_holder;

/// The slack the suite adds to the bounds of [`Bounds`] that span several round trips and
/// retries (a takeover, an election), for a busy machine.
pub const SLACK: std::time::Duration = support::SLACK;
/// The slack the suite adds to a bound that is one timer away from its event, such as
/// `lost()` resolving by [`Bounds::loss_within`] after a cut-off: how late a timer may fire
/// on a loaded 2-core machine (decision 013).
pub const SCHEDULING_SLACK: std::time::Duration = support::SCHEDULING_SLACK;
