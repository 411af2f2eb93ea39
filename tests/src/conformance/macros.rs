/// Expands to one `#[tokio::test]` per conformance property, each calling
/// `election_tests::conformance::<property>` on the harness `$harness().await`.
///
/// `$harness` is the path of an `async fn() -> std::sync::Arc<dyn Harness>`. The calling
/// crate needs `tokio` (features `macros`, `rt-multi-thread`) as a dev-dependency.
///
/// ```text
/// async fn harness() -> std::sync::Arc<dyn election_tests::conformance::Harness> {
///     std::sync::Arc::new(MyHarness::start().await)
/// }
/// election_tests::conformance_suite!(harness);
/// ```
///
/// `tests/tests/memory_conformance.rs` in this crate is a complete example.
#[macro_export]
macro_rules! conformance_suite {
    ($harness:path) => {
        $crate::__conformance_tests!(
            $harness;
            alone_is_elected,
            second_candidate_waits,
            at_most_one_holder,
            epochs_rise_across_handoffs,
            epochs_rise_across_restarts,
            resign_hands_over_without_waiting_for_ttl,
            lost_fires_in_time_when_cut_off,
            takeover_only_after_the_cut_off_holder_lost,
            a_paused_leader_is_fenced_off,
            a_frozen_holder_is_fenced_off,
            no_takeover_inside_the_kill_grace_after_a_cut_off,
            no_takeover_inside_the_kill_grace_after_a_stall,
            observe_reports_every_change,
            dropping_a_campaign_withdraws_the_candidacy,
            dropping_a_leadership_releases_it,
            elections_are_independent,
            invalid_election_names_are_refused,
        );
    };
}

/// The expansion of [`conformance_suite!`]; not for direct use.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($harness:path; $($property:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $property() {
                $crate::init_tracing();
                let harness = $harness().await;
                $crate::conformance::$property(&*harness).await;
            }
        )*
    };
}
