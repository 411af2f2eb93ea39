//! The driver keeps the handover rule: a leadership whose deadline passed before the core
//! extended it (the driver was late) is stepped down quietly with `expire`, never handed
//! over with `resign`; only the holder's own resign (or drop) of a live leadership resigns
//! in the core. Checked with a scripted core that extends its lease too late.

use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use election_core::{Backend, Candidate, ElectionName, LossReason, NodeId};
use election_peer::{CoreEvent, ElectionCore, PeerNode, PeerSettings, PersistedState, StateFormat};

/// The first lease of a grant.
const LEASE: Duration = Duration::from_millis(150);
/// When, after the grant, the core reports an extension: after the holder's deadline.
const LATE_EXTENSION: Duration = Duration::from_millis(400);

#[derive(Clone, Debug, Default)]
struct Hard;

impl PersistedState for Hard {
    const FORMAT: StateFormat = StateFormat {
        header: "elector-scripted-state v1",
        file: "scripted-state",
        setting: "scripted.data_dir",
        holds: "nothing,",
    };

    fn to_parts(&self) -> (u64, Option<&NodeId>) {
        (0, None)
    }

    fn from_parts(_: u64, _: Option<NodeId>) -> Self {
        Hard
    }
}

/// A one-node core that grants every campaign at once and extends the lease only
/// `LATE_EXTENSION` after the grant; it logs the driver's resign and expire calls.
struct Scripted {
    me: NodeId,
    events: VecDeque<CoreEvent>,
    extend_at: Option<(Instant, ElectionName)>,
    leads: Option<ElectionName>,
    log: Arc<Mutex<Vec<&'static str>>>,
}

impl ElectionCore for Scripted {
    type Message = ();
    type HardState = Hard;
    type DecodeError = String;

    const KIND: &'static str = "scripted";
    const EVENTS_BEFORE_SEND: bool = true;

    fn id(&self) -> &NodeId {
        &self.me
    }

    fn campaign(&mut self, now: Instant, election: &ElectionName) -> bool {
        if self.leads.is_none() {
            self.leads = Some(election.clone());
            self.events.push_back(CoreEvent::Elected {
                election: election.clone(),
                epoch: 1,
                lease_until: now + LEASE,
            });
            self.extend_at = Some((now + LATE_EXTENSION, election.clone()));
        }
        true
    }

    fn withdraw(&mut self, _: Instant, _: &ElectionName) {}

    fn resign(&mut self, _: Instant, election: &ElectionName) -> bool {
        self.log.lock().unwrap().push("resign");
        self.leads.take_if(|e| e == election).is_some()
    }

    fn expire(&mut self, _: Instant, election: &ElectionName) -> bool {
        self.log.lock().unwrap().push("expire");
        self.leads.take_if(|e| e == election).is_some()
    }

    fn handle_message(&mut self, _: Instant, _: &NodeId, _: ()) -> bool {
        false
    }

    fn handle_timeout(&mut self, now: Instant) {
        if let Some((at, election)) = self.extend_at.take() {
            if now >= at {
                self.events.push_back(CoreEvent::LeaseExtended {
                    election,
                    epoch: 1,
                    until: now + Duration::from_secs(10),
                });
            } else {
                self.extend_at = Some((at, election));
            }
        }
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.extend_at.as_ref().map(|(at, _)| *at)
    }

    fn poll_transmit(&mut self) -> Option<(NodeId, Vec<()>)> {
        None
    }

    fn poll_event(&mut self) -> Option<CoreEvent> {
        self.events.pop_front()
    }

    fn poll_persist(&mut self) -> Option<Vec<(ElectionName, Hard)>> {
        None
    }

    fn poll_forget(&mut self) -> Option<election_peer::Forget> {
        None
    }

    fn refuses_new(&self, _: &ElectionName) -> Option<usize> {
        None
    }

    fn tracked(&self) -> usize {
        0
    }

    fn ignored(&self) -> u64 {
        0
    }

    fn encode(_: &[()], _: usize) -> Vec<Bytes> {
        Vec::new()
    }

    fn decode(_: &[u8]) -> Result<Vec<()>, String> {
        Err("the scripted core has no messages".into())
    }
}

async fn start(dir: &std::path::Path, log: Arc<Mutex<Vec<&'static str>>>) -> PeerNode<Scripted> {
    let me = NodeId::new("solo").unwrap();
    let settings = PeerSettings {
        me: me.clone(),
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        peers: BTreeMap::from([(me.clone(), "127.0.0.1:1".to_owned())]),
        secret: Some("a-shared-secret-for-the-scripted-core".into()),
        secret_file: None,
        tls: None,
        data_dir: dir.to_path_buf(),
        reconnect_max: Duration::from_secs(1),
        try_window: Duration::from_secs(1),
    };
    PeerNode::start_with(settings, |_, _| {
        Ok(Scripted {
            me,
            events: VecDeque::new(),
            extend_at: None,
            leads: None,
            log,
        })
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leadership_that_lapsed_before_its_extension_is_expired_not_handed_over() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let node = start(dir.path(), log.clone()).await;
    let name = ElectionName::new("job").unwrap();
    let elector = node
        .election(&name, Candidate::new(node.id().clone()))
        .unwrap();
    let leadership = elector.campaign().await.unwrap();
    assert_eq!(leadership.lost().await, LossReason::Expired);

    // The core's late extension arrives after the deadline: the driver must step down
    // quietly. The holder still keeps its leadership (its child may be in its grace).
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while log.lock().unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < until,
            "the driver never acted on the late extension"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(*log.lock().unwrap(), ["expire"]);

    // The holder's own resign after a lapse changes nothing in the core any more.
    leadership.resign().await.unwrap();
    assert_eq!(*log.lock().unwrap(), ["expire"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_holders_resign_of_a_live_leadership_resigns_in_the_core() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let node = start(dir.path(), log.clone()).await;
    let name = ElectionName::new("job").unwrap();
    let elector = node
        .election(&name, Candidate::new(node.id().clone()))
        .unwrap();
    let leadership = elector.campaign().await.unwrap();
    assert!(leadership.is_held());
    leadership.resign().await.unwrap();
    assert_eq!(*log.lock().unwrap(), ["resign"]);
}
