//! Seeded random schedules against the simulated network: drops, duplicates, delays
//! (hence reordering), batches held past a lease and delivered late, held links,
//! symmetric and one-way partitions, crashes and restarts from persisted state, resigns
//! and withdrawals, for 3 s of chaos; node clocks run at different rates and timers fire
//! late, together within `clock_drift`; three quarters with the quorum rule, one quarter
//! classic Bully. After every step the simulator checks: one leader per epoch per election,
//! and no node is granted an epoch twice; persisted epochs never go back; with the quorum
//! rule, granted epochs strictly rise and no two leases overlap in true time (unless the
//! first was resigned, the old holder's kill grace and the unused part of the drift bound
//! lie between them). After the chaos the network heals: a leader must be elected and
//! stay; then, whenever an election is held (the leader resigns), the highest live
//! candidate wins.
//!
//! A failure prints its seed; `BULLY_SEED=<seed> cargo test -p election-bully --test sim
//! sim_replay -- --nocapture` replays it with a trace. `BULLY_SIM_SCHEDULES=<n>` changes
//! how many schedules the normal run checks (default 6,000).

mod common;

use std::time::Duration;

use common::{Bully, NewWith, Sim, election};
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
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x00b0_11ff_5eed);
    let n = if rng.random_bool(0.7) { 3 } else { 5 };
    let voters_only: Vec<usize> = if n == 5 && rng.random_bool(0.3) {
        vec![rng.random_range(0..n)]
    } else {
        vec![]
    };
    let quorum = rng.random_bool(0.75);
    // A third of the schedules rank the members by random priorities first (drawn from
    // their own RNG: the other schedules are those of the releases before priorities).
    let mut prio_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0070_7269_6f72);
    let mut sim = if prio_rng.random_bool(1.0 / 3.0) {
        let priorities: std::collections::BTreeMap<_, u32> = (0..n)
            .map(|i| (common::id(i), prio_rng.random_range(0..=2)))
            .collect();
        Sim::new_configured(seed, n, &voters_only, |c| {
            c.quorum = quorum;
            c.priorities = priorities.clone();
        })
    } else {
        Sim::new_with(seed, n, &voters_only, quorum)
    };
    sim.keep_log = keep_log;
    sim.recampaign = true;
    sim.drop_rate = [0.0, 0.02, 0.1, 0.3][rng.random_range(0..4)];
    sim.delay = (
        Duration::from_micros(100),
        ms([1, 5, 20, 60][rng.random_range(0..4)]),
    );
    // Harsher than the proxy: clocks at different rates and late timers (within
    // clock_drift), batches held past a lease, duplicates, held links, a longer chaos.
    sim.harden(Harshness::draw(&mut rng));
    sim.chaos_time = CHAOS;
    let elections: Vec<_> = (0..rng.random_range(1..=3)).map(election).collect();
    let campaigners: Vec<usize> = (0..n).filter(|i| !voters_only.contains(i)).collect();
    match chaos(&mut sim, &mut rng, &elections, &campaigners) {
        Ok(()) => Ok(sim),
        Err(e) => Err((sim, e)),
    }
}

fn chaos(
    sim: &mut Sim,
    rng: &mut ChaCha8Rng,
    elections: &[election_core::ElectionName],
    campaigners: &[usize],
) -> Result<(), String> {
    sim.chaos(rng, elections, campaigners)?;
    let cfg = sim.configs[0].clone();
    // Boot quiet period, in-flight loyalty, failed rounds and their back-off.
    let bound = cfg.failure_timeout * 12;
    if !sim.run_until_cond(bound, |s| s.settled(elections))? {
        return Err(format!(
            "no stable leader within {bound:?} after the network healed:\n{}",
            sim.dump(elections)
        ));
    }
    // And it stays: once messages sent before the heal are gone, a healthy cluster keeps
    // its leader.
    sim.run_for(cfg.failure_timeout)?;
    if !sim.run_until_cond(bound, |s| s.settled(elections))? {
        return Err(format!(
            "leadership did not settle again after in-flight messages drained:\n{}",
            sim.dump(elections)
        ));
    }
    let leaders: Vec<_> = elections.iter().map(|e| sim.lease_holder(e)).collect();
    sim.run_for(cfg.failure_timeout * 4)?;
    let after: Vec<_> = elections.iter().map(|e| sim.lease_holder(e)).collect();
    if leaders != after {
        return Err(format!(
            "leadership changed on a healthy network: {leaders:?} -> {after:?}"
        ));
    }
    // Whenever an election is held on the healed network, the highest candidate wins.
    // The highest by (priority, id): the schedules with priorities rank by them first.
    let rank = |n: usize| {
        let me = common::id(n);
        (cfg.priorities.get(&me).copied().unwrap_or(0), me)
    };
    let highest = *campaigners
        .iter()
        .max_by_key(|&&n| rank(n))
        .expect("at least one candidate");
    for e in elections {
        let holder = sim.lease_holder(e).expect("settled");
        if holder == highest {
            continue;
        }
        sim.resign(holder, e)?;
        if !sim.run_until_cond(bound, |s| s.settled(elections))? {
            return Err(format!(
                "no stable leader of {e} within {bound:?} after n{} resigned:\n{}",
                holder + 1,
                sim.dump(elections)
            ));
        }
        let now = sim.lease_holder(e);
        if now != Some(highest) {
            return Err(format!(
                "after n{} resigned {e}, {:?} leads, not the highest candidate n{}:\n{}",
                holder + 1,
                now.map(|h| format!("n{}", h + 1)),
                highest + 1,
                sim.dump(elections)
            ));
        }
    }
    Ok(())
}

const SCHEDULES: Schedules<Bully> = Schedules {
    prefix: "BULLY",
    package: "election-bully",
    default_total: 6_000,
    run: run_schedule,
};

fn run_range(part: u64, parts: u64) {
    SCHEDULES.run_range(part, parts);
}

#[test]
fn sim_schedules_part_0() {
    run_range(0, 4);
}

#[test]
fn sim_schedules_part_1() {
    run_range(1, 4);
}

#[test]
fn sim_schedules_part_2() {
    run_range(2, 4);
}

#[test]
fn sim_schedules_part_3() {
    run_range(3, 4);
}

/// Replays one schedule with a trace: `BULLY_SEED=<seed>` (default 1).
#[test]
fn sim_replay() {
    SCHEDULES.replay();
}
