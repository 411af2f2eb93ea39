//! Operator commands: `config`, `status`, `watch`, `resign`.

use std::sync::Arc;

use anyhow::anyhow;
use election_core::{Backend, Candidate, ElectionName, LeaderInfo};

use crate::agent::client::{self as agent, open_for_caller};
use crate::backend::{self, BackendConfig};
use crate::cli::StatusArgs;
use crate::config::Loaded;
use crate::exit::{self, Failure};

/// `elector config [--check] [--json]`.
pub(crate) fn config(loaded: &Loaded, check: bool, json: bool) -> Result<u8, Failure> {
    if check {
        backend::checked(loaded)?;
        let file = loaded
            .file
            .as_ref()
            .map(|f| f.display().to_string())
            .unwrap_or_else(|| "no config file".into());
        println!("configuration is valid ({file})");
        return Ok(0);
    }
    // Shown as far as they can be read: an invalid backend table still shows the rest.
    let entries = loaded.entries(BackendConfig::extract(loaded).ok().map(|b| b.entries()));
    if json {
        let list: Vec<_> = entries
            .iter()
            .map(|(k, v, s)| {
                serde_json::json!({
                    "key": k,
                    "value": serde_json::from_str::<serde_json::Value>(v).unwrap_or(serde_json::Value::Null),
                    "source": s,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        );
    } else {
        let width = entries
            .iter()
            .map(|(k, v, _)| k.len() + v.len() + 3)
            .max()
            .unwrap_or(0);
        for (k, v, s) in &entries {
            let line = format!("{k} = {v}");
            println!("{line:<width$}  # {s}");
        }
    }
    Ok(0)
}

fn names(loaded: &Loaded, args: &StatusArgs) -> Result<Vec<ElectionName>, Failure> {
    let raw = if args.elections.is_empty() {
        loaded.settings.agent.elections.clone()
    } else {
        args.elections.clone()
    };
    raw.into_iter()
        .map(|n| ElectionName::new(n).map_err(|e| Failure::new(exit::USAGE, e.into())))
        .collect()
}

async fn client(loaded: &Loaded) -> Result<(Arc<dyn Backend>, Candidate), Failure> {
    let kind = backend::selected_kind(loaded)?;
    let node = loaded.node_id()?;
    Ok((
        open_for_caller(kind, loaded, None).await?,
        Candidate::new(node),
    ))
}

fn leader_json(name: &ElectionName, leader: &Option<LeaderInfo>) -> serde_json::Value {
    serde_json::json!({ "election": name, "leader": leader })
}

fn leader_line(name: &ElectionName, leader: &Option<LeaderInfo>) -> String {
    match leader {
        Some(l) => format!(
            "{name}: led by {} at epoch {} since {}",
            l.node,
            l.epoch,
            humantime::format_rfc3339_seconds(l.since)
        ),
        None => format!("{name}: no leader"),
    }
}

/// `elector status [--json] [ELECTION...]`.
pub(crate) async fn status(loaded: &Loaded, args: &StatusArgs) -> Result<u8, Failure> {
    if !args.watch {
        return status_once(loaded, args).await;
    }
    // Clear the screen and redraw, as `watch elector status` would, until interrupted.
    loop {
        print!("\x1b[H\x1b[2J");
        status_once(loaded, args).await?;
        println!(
            "\n(every second; Ctrl-C to stop) {}",
            humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        );
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(0),
        }
    }
}

async fn status_once(loaded: &Loaded, args: &StatusArgs) -> Result<u8, Failure> {
    let kind = backend::selected_kind(loaded)?;
    let names = names(loaded, args)?;
    if kind.is_hosted_by_agent() {
        let mut status = agent::status(loaded.agent_socket()).await?;
        if !args.elections.is_empty() {
            status
                .elections
                .retain(|e| names.iter().any(|n| n.as_str() == e.election));
        }
        if args.json {
            println!("{}", serde_json::to_string(&status).unwrap_or_default());
        } else {
            print!("{}", status.render());
        }
        return Ok(0);
    }
    if names.is_empty() {
        return Err(Failure::new(
            exit::USAGE,
            anyhow!(
                "name the elections to show (elector status NAME...) or list them in agent.elections"
            ),
        ));
    }
    let (backend, me) = client(loaded).await?;
    for name in names {
        let leader = backend.election(&name, me.clone())?.leader().await?;
        if args.json {
            println!("{}", leader_json(&name, &leader));
        } else {
            println!("{}", leader_line(&name, &leader));
        }
    }
    Ok(0)
}

/// `elector watch [--json] ELECTION...`: one line per leader change, until interrupted.
pub(crate) async fn watch(loaded: &Loaded, args: &StatusArgs) -> Result<u8, Failure> {
    if args.watch {
        return Err(Failure::new(
            exit::USAGE,
            anyhow!("--watch belongs to `elector status`; `elector watch` streams changes already"),
        ));
    }
    let names = names(loaded, args)?;
    if names.is_empty() {
        return Err(Failure::new(
            exit::USAGE,
            anyhow!(
                "name the elections to watch (elector watch NAME...) or list them in agent.elections"
            ),
        ));
    }
    let (backend, me) = client(loaded).await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    for name in names {
        let elector = backend.election(&name, me.clone())?;
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut stream = elector.observe();
            while let Some(item) = stream.next().await {
                if tx.send((name.clone(), item)).await.is_err() {
                    return;
                }
            }
        });
    }
    drop(tx);
    while let Some((name, item)) = rx.recv().await {
        match item {
            Ok(leader) if args.json => println!("{}", leader_json(&name, &leader)),
            Ok(leader) => println!("{}", leader_line(&name, &leader)),
            Err(e) => tracing::warn!(election = %name, error = %e, "watch interrupted; retrying"),
        }
    }
    Ok(0)
}

/// `elector resign ELECTION`: asks the local agent to give up its leadership.
pub(crate) async fn resign(loaded: &Loaded, election: &str) -> Result<u8, Failure> {
    let name = ElectionName::new(election).map_err(|e| Failure::new(exit::USAGE, e.into()))?;
    let resigned = agent::resign(loaded.agent_socket(), &name).await?;
    if resigned {
        println!(
            "resigning {name}: the local holder stops its command, then leadership is handed over"
        );
        Ok(0)
    } else {
        println!("{name}: this node's agent does not lead it");
        Ok(1)
    }
}
