//! Lives of guarded commands on one clock: each command connects to a [`Stamps`] server as
//! its first act and keeps the connection open; descendants inherit it. The server stamps
//! the accept (the command runs from then on) and the end of the connection, which the
//! kernel closes when the last process holding it is gone: the whole group's death,
//! grandchildren and SIGKILL included. Both stamps are taken by this test process on its
//! monotonic clock, so "the old child was dead before the new one started" is an ordering
//! of two readings of one clock, never a guess from polling.

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One guarded command's life.
#[derive(Clone, Debug)]
pub struct Life {
    /// `ELECTOR_NODE_ID` of the run that started it.
    pub node: String,
    /// `ELECTOR_EPOCH` it ran under.
    pub epoch: u64,
    /// Its pid.
    pub pid: i32,
    /// When it connected (it ran from about then).
    pub start: Instant,
    /// When its connection closed: it and every descendant holding it are gone.
    pub end: Option<Instant>,
}

/// The server the commands connect to.
pub struct Stamps {
    port: u16,
    lives: Arc<Mutex<Vec<Life>>>,
}

impl Stamps {
    /// Listens on a free loopback port, stamping connections in a thread each.
    pub fn start() -> Stamps {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let lives = Arc::new(Mutex::new(Vec::new()));
        let all = lives.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let start = Instant::now();
                let all = all.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn);
                    let mut hello = String::new();
                    if reader.read_line(&mut hello).is_err() {
                        return;
                    }
                    let mut it = hello.split_whitespace();
                    let (Some(node), Some(epoch), Some(pid)) = (it.next(), it.next(), it.next())
                    else {
                        return;
                    };
                    let index = {
                        let mut lives = all.lock().unwrap();
                        lives.push(Life {
                            node: node.to_owned(),
                            epoch: epoch.parse().unwrap_or(0),
                            pid: pid.parse().unwrap_or(0),
                            start,
                            end: None,
                        });
                        lives.len() - 1
                    };
                    let mut sink = Vec::new();
                    let _ = reader.read_to_end(&mut sink);
                    all.lock().unwrap()[index].end = Some(Instant::now());
                });
            }
        });
        Stamps { port, lives }
    }

    /// A bash command that connects (descriptor 3, inherited by everything it starts),
    /// says who it is, then runs `then`.
    pub fn script(&self, then: &str) -> String {
        format!(
            "exec 3<>/dev/tcp/127.0.0.1/{}; echo \"$ELECTOR_NODE_ID $ELECTOR_EPOCH $$\" >&3; {then}",
            self.port
        )
    }

    /// Every life so far, in the order they started.
    pub fn lives(&self) -> Vec<Life> {
        let mut lives = self.lives.lock().unwrap().clone();
        lives.sort_by_key(|l| l.start);
        lives
    }

    /// Panics unless every command's life ended before the next one's began, and epochs
    /// rose from each to the next.
    pub fn assert_one_at_a_time(&self) {
        let lives = self.lives();
        for pair in lives.windows(2) {
            let (old, new) = (&pair[0], &pair[1]);
            match old.end {
                Some(end) if end < new.start => {}
                Some(end) => panic!(
                    "{new:?} started {:?} before {old:?} was gone",
                    end - new.start
                ),
                None => panic!("{new:?} started while {old:?} still ran"),
            }
            assert!(
                new.epoch > old.epoch,
                "epochs must rise from one command to the next: {lives:?}"
            );
        }
    }
}
