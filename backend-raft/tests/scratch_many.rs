mod common;
use common::{Sim, election};
use std::time::Duration;

#[test]
fn many() {
    let mut sim = Sim::new(1, 3, &[]);
    let es: Vec<_> = (0..2000).map(election).collect();
    for e in &es {
        for i in 0..3 {
            sim.campaign(i, e).unwrap();
        }
    }
    sim.run_for(Duration::from_secs(3)).unwrap();
    let held = es.iter().filter(|e| sim.lease_holder(e).is_some()).count();
    eprintln!("held {held}");
    for e in es.iter().take(3) {
        eprintln!("{}", sim.dump(&[e.clone()]));
    }
    sim.run_for(Duration::from_secs(3)).unwrap();
    let held = es.iter().filter(|e| sim.lease_holder(e).is_some()).count();
    eprintln!("held {held}");
}
