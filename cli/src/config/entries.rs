//! `elector config`: every effective value with its source, secrets redacted.

use figment::Figment;
use figment::value::Value;

use super::Loaded;
use super::sources::describe_tag;

/// A backend's settings as the backend reads them, for [`Loaded::entries`].
pub(crate) struct BackendEntries {
    /// The kind, as in `[backend.KIND]`.
    pub(crate) kind: &'static str,
    /// Its settings, defaults included, secrets redacted.
    pub(crate) settings: serde_json::Value,
    /// Whether its `node_id` defaults to the top-level one (the peer backends).
    pub(crate) node_id_defaulted: bool,
}

impl Loaded {
    /// Every effective value with its source, as `(dotted key, TOML value, source)`;
    /// `backend`: the selected backend's settings as it reads them, if they could be read.
    pub(crate) fn entries(&self, backend: Option<BackendEntries>) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        if let Ok(root) = self.figment.find_value("") {
            walk(&self.figment, "", &root, &mut out);
        } else if let Ok(v) = self.figment.extract::<Value>() {
            walk(&self.figment, "", &v, &mut out);
        }
        if self.settings.node_id.is_none() {
            let host = self
                .node_id()
                .map(|n| format!("{:?}", n.as_str()))
                .unwrap_or_else(|_| "(invalid hostname)".to_owned());
            out.insert(0, ("node_id".into(), host, "hostname".into()));
        }
        // The selected backend's settings as the backend reads them: given values are shown
        // as its `Serialize` renders them (it redacts secrets), the rest as defaults.
        let mut effective = Vec::new();
        let mut node_id_key = None;
        if let Some(b) = &backend {
            flatten_json(&format!("backend.{}", b.kind), &b.settings, &mut effective);
            if b.node_id_defaulted {
                node_id_key = Some(format!("backend.{}.node_id", b.kind));
            }
        }
        for (key, value, _) in out.iter_mut() {
            if let Some((_, v)) = effective.iter().find(|(k, _)| k == key) {
                *value = v.clone();
            }
        }
        for (key, value) in effective {
            if !out
                .iter()
                .any(|(k, _, _)| *k == key || key.starts_with(&format!("{k}.")))
            {
                let source = if node_id_key.as_deref() == Some(key.as_str()) {
                    "node_id"
                } else {
                    "built-in default (backend)"
                };
                out.push((key, value, source.into()));
            }
        }
        for (key, value, _) in out.iter_mut() {
            if key.starts_with("backend.") && is_secret(key) && value != "null" {
                *value = "\"<redacted>\"".into();
            }
        }
        out
    }
}

/// Whether a key holds a secret that must not be printed. (URLs with credentials are
/// redacted by the backend crates' own `Serialize`.)
fn is_secret(key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap_or(key);
    matches!(last, "password" | "secret" | "token")
}

fn flatten_json(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                flatten_json(&format!("{prefix}.{k}"), v, out);
            }
        }
        serde_json::Value::Null => {}
        leaf => out.push((prefix.to_owned(), leaf.to_string())),
    }
}

fn walk(fig: &Figment, prefix: &str, v: &Value, out: &mut Vec<(String, String, String)>) {
    match v {
        Value::Dict(_, d) if !d.is_empty() => {
            for (k, v) in d {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                walk(fig, &key, v, out);
            }
        }
        Value::Empty(..) => {}
        leaf => {
            let rendered = serde_json::to_string(leaf).unwrap_or_else(|_| "?".into());
            out.push((
                prefix.to_owned(),
                rendered,
                describe_tag(fig, leaf.tag(), prefix),
            ));
        }
    }
}
