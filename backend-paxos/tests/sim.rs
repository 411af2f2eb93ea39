//! Seeded random schedules against the shared simulated network (`election_peer::sim`):
//! drops, duplicates, delays (hence reordering), batches held past a lease and delivered
//! late, held links, symmetric and one-way partitions, crashes and restarts from persisted
//! state, a crash of *every* node at once in some schedules, resigns and withdrawals, for
//! 3 s of chaos; node clocks run at different rates and timers fire late, together within
//! `clock_drift`. After every step the simulator checks: one leadership per epoch, ever;
//! granted epochs strictly rise (across the restart of every node too); persisted floors
//! never go back; no two leases overlap in true time (unless the first was resigned, the
//! old holder's kill grace and the unused part of the drift bound lie between them). After
//! the chaos the network heals: a leader must be elected and stay, and a resign hands the
//! election to another candidate.
//!
//! A failure prints its seed; `PAXOS_SEED=<seed> cargo test -p election-paxos --test sim
//! sim_replay -- --nocapture` replays it with a trace. `PAXOS_SIM_SCHEDULES=<n>` changes
//! how many schedules the normal run checks (default 10,000, the figure, in eight
//! parts; the test profile optimizes this crate and the simulator, decision record 132).

mod common;

use std::time::Duration;

use common::{Paxos, Sim, election};
use election_peer::sim::{Harshness, Schedules};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// How long each schedule injects faults (virtual time).
const CHAOS: Duration = Duration::from_millis(3000);

/// One random schedule; `Err` describes the violated invariant.
#[allow(clippy::result_large_err)]
fn run_schedule(seed: u64, keep_log: bool) -> Result<Sim, (Sim, String)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x9a05_1ea5_e5ee_d000);
    let n = if rng.random_bool(0.7) { 3 } else { 5 };
    let voters_only: Vec<usize> = if n == 5 && rng.random_bool(0.3) {
        vec![rng.random_range(0..n)]
    } else {
        vec![]
    };
    let mut sim = Sim::new(seed, n, &voters_only);
    sim.keep_log = keep_log;
    sim.recampaign = true;
    sim.drop_rate = [0.0, 0.02, 0.1, 0.3][rng.random_range(0..4)];
    sim.delay = (
        Duration::from_micros(100),
        ms([1, 5, 20, 60][rng.random_range(0..4)]),
    );
    sim.harden(Harshness::draw(&mut rng));
    sim.chaos_time = CHAOS;
    let elections: Vec<_> = (0..rng.random_range(1..=3)).map(election).collect();
    let campaigners: Vec<usize> = (0..n).filter(|i| !voters_only.contains(i)).collect();
    let all_crash = rng.random_bool(0.25);
    match chaos(&mut sim, &mut rng, &elections, &campaigners, all_crash) {
        Ok(()) => Ok(sim),
        Err(e) => Err((sim, e)),
    }
}

fn chaos(
    sim: &mut Sim,
    rng: &mut ChaCha8Rng,
    elections: &[election_core::ElectionName],
    campaigners: &[usize],
    all_crash: bool,
) -> Result<(), String> {
    if all_crash {
        // Every node crashes at once, mid-leadership, and comes back with nothing but its
        // state file: epochs must still rise.
        for e in elections {
            for &c in campaigners {
                sim.campaign(c, e)?;
            }
        }
        let at = ms(rng.random_range(300..1500));
        sim.run_until(at)?;
        for i in 0..sim.n() {
            sim.crash(i);
        }
        sim.run_for(ms(rng.random_range(0..300)))?;
        for i in 0..sim.n() {
            sim.restart(i);
        }
    }
    sim.chaos(rng, elections, campaigners)?;
    let cfg = sim.configs[0].clone();
    // Restart quiet time, open leases running out, collisions and their back-off.
    let bound = cfg.lease * 12;
    if !sim.run_until_cond(bound, |s| s.settled(elections))? {
        return Err(format!(
            "no stable leader within {bound:?} after the network healed:\n{}",
            sim.dump(elections)
        ));
    }
    // And it stays: a healthy cluster keeps its leader.
    sim.run_for(cfg.lease)?;
    if !sim.run_until_cond(bound, |s| s.settled(elections))? {
        return Err(format!(
            "leadership did not settle again after in-flight messages drained:\n{}",
            sim.dump(elections)
        ));
    }
    let leaders: Vec<_> = elections.iter().map(|e| sim.lease_holder(e)).collect();
    sim.run_for(cfg.lease * 4)?;
    let after: Vec<_> = elections.iter().map(|e| sim.lease_holder(e)).collect();
    if leaders != after {
        return Err(format!(
            "leadership changed on a healthy network: {leaders:?} -> {after:?}"
        ));
    }
    // A resign hands over to another candidate, when there is one.
    if campaigners.len() > 1 {
        for e in elections {
            let holder = sim.lease_holder(e).expect("settled");
            sim.resign(holder, e)?;
            if !sim.run_until_cond(bound, |s| s.settled(elections))? {
                return Err(format!(
                    "no stable leader of {e} within {bound:?} after n{} resigned:\n{}",
                    holder + 1,
                    sim.dump(elections)
                ));
            }
            if sim.lease_holder(e) == Some(holder) {
                return Err(format!(
                    "n{} won {e} straight back after resigning:\n{}",
                    holder + 1,
                    sim.dump(elections)
                ));
            }
        }
    }
    Ok(())
}

const SCHEDULES: Schedules<Paxos> = Schedules {
    prefix: "PAXOS",
    package: "election-paxos",
    default_total: 10_000,
    run: run_schedule,
};

/// The schedules run in this many tests, which the test runner spreads over the cores
/// (and each of which stays well inside its slow-test timeout).
const PARTS: u64 = 8;

fn run_range(part: u64) {
    SCHEDULES.run_range(part, PARTS);
}

#[test]
fn sim_schedules_part_0() {
    run_range(0);
}

#[test]
fn sim_schedules_part_1() {
    run_range(1);
}

#[test]
fn sim_schedules_part_2() {
    run_range(2);
}

#[test]
fn sim_schedules_part_3() {
    run_range(3);
}

#[test]
fn sim_schedules_part_4() {
    run_range(4);
}

#[test]
fn sim_schedules_part_5() {
    run_range(5);
}

#[test]
fn sim_schedules_part_6() {
    run_range(6);
}

#[test]
fn sim_schedules_part_7() {
    run_range(7);
}

/// Replays one schedule with a trace: `PAXOS_SEED=<seed>` (default 1).
#[test]
fn sim_replay() {
    SCHEDULES.replay();
}
