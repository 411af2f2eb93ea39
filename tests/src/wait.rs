use std::time::Duration;

use tokio::time::Instant;

/// How often [`wait_until`] re-checks its condition.
const POLL_EVERY: Duration = Duration::from_millis(5);

/// Waits until `cond` returns true, checking every few milliseconds; panics naming `what`
/// if `deadline` passes first.
///
/// Use it instead of sleeping and hoping: the wait ends as soon as the condition holds, and
/// the deadline can be generous without slowing a passing test down. The clock is tokio's,
/// so the helper also works under `#[tokio::test(start_paused = true)]`.
///
/// # Panics
/// When the condition is still false after `deadline`; the message names `what`.
pub async fn wait_until(deadline: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    loop {
        if cond() {
            return;
        }
        if start.elapsed() >= deadline {
            panic!("timed out after {deadline:?} waiting until {what}");
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Installs a `tracing` subscriber that prints to the test's captured output, filtered by
/// `RUST_LOG` (default `warn`). Idempotent: calling it from every test is fine.
pub fn init_tracing() {
    init_tracing_or("warn");
}

/// [`init_tracing`] with `default` as the filter where `RUST_LOG` is unset: for a test
/// whose rare failure needs the protocol's own log to be understood (the harness prints
/// a failed test's captured output).
pub fn init_tracing_or(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Fails only when a subscriber is already installed, which is what idempotent means.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[tokio::test]
    async fn wait_until_returns_once_the_condition_holds() {
        let flag = Arc::new(AtomicBool::new(false));
        let setter = flag.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            setter.store(true, Ordering::SeqCst);
        });
        wait_until(Duration::from_secs(30), "the flag is set", || {
            flag.load(Ordering::SeqCst)
        })
        .await;
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "waiting until the impossible happens")]
    async fn wait_until_panics_naming_what_it_waited_for() {
        wait_until(Duration::from_millis(50), "the impossible happens", || {
            false
        })
        .await;
    }

    #[test]
    fn init_tracing_twice_is_harmless() {
        init_tracing();
        init_tracing();
    }
}
