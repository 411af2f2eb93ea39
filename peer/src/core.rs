//! [`ElectionCore`]: the shape of a sans-IO election state machine that the driver runs,
//! and [`CoreEvent`], what such a core tells its driver.

use std::time::Instant;

use bytes::Bytes;
use election_core::{ElectionName, LossReason, NodeId};

use crate::persist::PersistedState;

/// A sans-IO election core: no tokio, sockets, clocks or RNG calls; time comes in as an
/// argument. The driver calls the input methods, then drains the outputs in the order
/// persist → events/send (see [`EVENTS_BEFORE_SEND`](Self::EVENTS_BEFORE_SEND)).
pub trait ElectionCore: Send + 'static {
    /// One protocol message.
    type Message: Send;
    /// The durable part of one election's state.
    type HardState: PersistedState;
    /// Why a payload did not decode.
    type DecodeError: std::fmt::Display;

    /// The backend kind, as in [`Backend::kind`](election_core::Backend::kind) (`"raft"`).
    const KIND: &'static str;
    /// `true`: the driver hands events over before it sends the step's messages (a loss
    /// ends the local `Leadership`, and observers see a new leader, before any peer can act
    /// on them), persisting again whatever handling the events produced. `false`: messages
    /// go out first, then events.
    const EVENTS_BEFORE_SEND: bool;

    /// This node's id.
    fn id(&self) -> &NodeId;
    /// Starts campaigning in `election`; `false` if this node never campaigns.
    fn campaign(&mut self, now: Instant, election: &ElectionName) -> bool;
    /// Stops campaigning in `election` (the last local campaign was dropped).
    fn withdraw(&mut self, now: Instant, election: &ElectionName);
    /// Resigns the leadership of `election`, handing it over at once; `false` if this node
    /// did not lead it. Called only on the holder's own resign (or drop).
    fn resign(&mut self, now: Instant, election: &ElectionName) -> bool;
    /// The local leadership of `election` lapsed (its deadline passed before the driver
    /// could extend it, e.g. because the driver was stalled) while the core still leads:
    /// step down *without* handing over, so that the followers' promises expire on their own
    /// and the old holder's kill grace is kept (the handover rule). `false` if this node
    /// did not lead it.
    fn expire(&mut self, now: Instant, election: &ElectionName) -> bool;
    /// Handles one message from `from`; `false` if it was refused.
    fn handle_message(&mut self, now: Instant, from: &NodeId, message: Self::Message) -> bool;
    /// Handles the deadline returned by [`poll_timeout`](Self::poll_timeout).
    fn handle_timeout(&mut self, now: Instant);
    /// The next deadline at which [`handle_timeout`](Self::handle_timeout) must be called.
    fn poll_timeout(&mut self) -> Option<Instant>;
    /// The next batch of messages for one peer.
    fn poll_transmit(&mut self) -> Option<(NodeId, Vec<Self::Message>)>;
    /// The next event.
    fn poll_event(&mut self) -> Option<CoreEvent>;
    /// State changes that must be durable before the pending messages are sent.
    fn poll_persist(&mut self) -> Option<Vec<(ElectionName, Self::HardState)>>;
    /// Elections forgotten since the last call and the node-wide floor (the highest number
    /// of every election forgotten so far): the driver removes them from the state file and
    /// records the floor in one atomic compaction, before the step's messages are sent.
    fn poll_forget(&mut self) -> Option<Forget>;
    /// `Some(limit)` when `election` is not held and the core already holds `limit`
    /// elections (`max_elections`): a new local campaign is refused.
    fn refuses_new(&self, election: &ElectionName) -> Option<usize>;
    /// How many elections the core holds state for.
    fn tracked(&self) -> usize;
    /// Peer mentions of elections the core ignored because it held `max_elections`.
    fn ignored(&self) -> u64;
    /// Encodes `messages` into payloads of at most `max_len` bytes each.
    fn encode(messages: &[Self::Message], max_len: usize) -> Vec<Bytes>;
    /// Decodes one payload.
    ///
    /// # Errors
    /// The payload is not a well-formed batch of this core's messages.
    fn decode(payload: &[u8]) -> Result<Vec<Self::Message>, Self::DecodeError>;
}

/// Elections a core forgot, and the floor that keeps forgetting safe (decision record 105).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Forget {
    /// The highest term or epoch of every election forgotten so far, on this node.
    pub floor: u64,
    /// The elections to remove from the state file.
    pub elections: Vec<ElectionName>,
}

/// What a core tells its driver. Epochs are the leadership epochs (Raft's terms).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoreEvent {
    /// This node's view of who leads `election` changed.
    LeaderChanged {
        /// The election.
        election: ElectionName,
        /// The leader and its epoch, or `None` when no leader is known.
        leader: Option<(NodeId, u64)>,
    },
    /// This node now leads `election` at `epoch`, guaranteed until `lease_until`.
    Elected {
        /// The election.
        election: ElectionName,
        /// The leadership's epoch.
        epoch: u64,
        /// The lease deadline.
        lease_until: Instant,
    },
    /// The leadership of `election` at `epoch` is now guaranteed until `until`.
    LeaseExtended {
        /// The election.
        election: ElectionName,
        /// The leadership's epoch.
        epoch: u64,
        /// The new lease deadline.
        until: Instant,
    },
    /// Every leadership granted and not yet lost, except those in `except`, is now
    /// guaranteed until `until`. The driver extends them all with one store (an
    /// [`election_core::LeaseGroup`]), so a round costs the same for one leadership as for
    /// thousands; the few in `except` (a round of their own is running) leave the group
    /// with the deadline it gave them so far, and are extended one by one
    /// ([`LeaseExtended`](Self::LeaseExtended)) until a later `AllLeasesExtended` covers
    /// them again.
    AllLeasesExtended {
        /// The new lease deadline.
        until: Instant,
        /// Leaderships this extension does not cover.
        except: Vec<ElectionName>,
    },
    /// The leadership of `election` at `epoch` ended.
    Lost {
        /// The election.
        election: ElectionName,
        /// The epoch that was led.
        epoch: u64,
        /// Why it ended.
        reason: LossReason,
    },
}
