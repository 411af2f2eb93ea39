//! A peer's bounded send queue: never blocks the sender, drops the oldest message when full.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::Notify;

/// Messages waiting for one peer's connection.
#[derive(Debug)]
pub(crate) struct SendQueue {
    items: Mutex<VecDeque<Bytes>>,
    capacity: usize,
    ready: Notify,
}

impl SendQueue {
    pub(crate) fn new(capacity: usize) -> Self {
        SendQueue {
            items: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            capacity,
            ready: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Bytes>> {
        // A panic while holding this lock cannot leave the queue inconsistent.
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends `payload`; returns whether the oldest message had to be dropped for it.
    pub(crate) fn push(&self, payload: Bytes) -> bool {
        let dropped = {
            let mut items = self.lock();
            let dropped = if items.len() >= self.capacity {
                items.pop_front();
                true
            } else {
                false
            };
            items.push_back(payload);
            dropped
        };
        self.ready.notify_one();
        dropped
    }

    /// Moves up to `max_items` messages (and at least one, if any) totalling at most about
    /// `max_bytes` into `out`.
    pub(crate) fn drain_into(&self, out: &mut Vec<Bytes>, max_items: usize, max_bytes: usize) {
        let mut items = self.lock();
        let mut bytes = 0;
        while let Some(front) = items.front() {
            if !out.is_empty() && (out.len() >= max_items || bytes + front.len() > max_bytes) {
                break;
            }
            bytes += front.len();
            out.extend(items.pop_front());
        }
    }

    /// Completes once a message was pushed since the last drain (or is already waiting).
    pub(crate) async fn ready(&self) {
        self.ready.notified().await;
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_the_oldest_message() {
        let q = SendQueue::new(2);
        assert!(!q.push(Bytes::from_static(b"1")));
        assert!(!q.push(Bytes::from_static(b"2")));
        assert!(q.push(Bytes::from_static(b"3")));
        let mut out = Vec::new();
        q.drain_into(&mut out, 10, 1 << 20);
        assert_eq!(
            out,
            vec![Bytes::from_static(b"2"), Bytes::from_static(b"3")]
        );
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn drain_respects_item_and_byte_budgets_but_always_takes_one() {
        let q = SendQueue::new(10);
        for _ in 0..5 {
            q.push(Bytes::from(vec![0; 100]));
        }
        let mut out = Vec::new();
        q.drain_into(&mut out, 2, 1 << 20);
        assert_eq!(out.len(), 2);
        out.clear();
        q.drain_into(&mut out, 10, 150);
        assert_eq!(out.len(), 1);
        out.clear();
        q.drain_into(&mut out, 10, 10);
        assert_eq!(
            out.len(),
            1,
            "a message larger than the budget still goes alone"
        );
    }

    #[tokio::test]
    async fn a_push_before_waiting_is_not_missed() {
        let q = SendQueue::new(1);
        q.push(Bytes::new());
        tokio::time::timeout(std::time::Duration::from_secs(5), q.ready())
            .await
            .expect("the stored wakeup completes ready() at once");
    }
}
