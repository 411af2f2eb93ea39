use std::io::Write as _;

use super::*;

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

#[cfg(feature = "redis")]
#[test]
fn flags_override_the_file_and_sources_are_reported() {
    use std::time::Duration;

    let f = file("node_id = \"n1\"\n[backend]\nkind = \"redis\"\n[timing]\nttl = \"20s\"\n");
    let mut flags = FlagValues::default();
    flags.set_duration("run.min_hold", Duration::from_secs(5));
    flags.set_pair("timing.kill_grace=\"1s\"").unwrap();
    let l = load(Some(f.path()), &flags).unwrap();
    assert_eq!(l.settings.timing.ttl, Duration::from_secs(20));
    assert_eq!(l.settings.run.min_hold, Duration::from_secs(5));
    assert_eq!(l.settings.timing.kill_grace, Duration::from_secs(1));
    assert!(
        l.source_of("timing.ttl")
            .contains(&f.path().display().to_string())
    );
    assert_eq!(l.source_of("run.min_hold"), "command-line flag");
    assert_eq!(l.source_of("timing.clock_drift"), "built-in default");
    l.check().unwrap();
}

#[test]
fn the_memory_settings_table_is_an_unknown_key() {
    let f = file("[backend.memory]\n");
    let e = load(Some(f.path()), &FlagValues::default()).unwrap_err();
    assert!(format!("{:#}", e.error).contains("memory"));
}

#[test]
fn a_bad_duration_names_the_key_and_the_file() {
    let f = file("[timing]\nttl = \"ten seconds\"\n");
    let e = load(Some(f.path()), &FlagValues::default()).unwrap_err();
    let msg = format!("{:#}", e.error);
    assert!(msg.contains("timing.ttl"), "{msg}");
    assert!(msg.contains(&f.path().display().to_string()), "{msg}");
}

#[test]
fn a_toml_syntax_error_names_the_line() {
    let f = file("[timing]\nttl = \n");
    let e = load(Some(f.path()), &FlagValues::default()).unwrap_err();
    let msg = format!("{:#}", e.error);
    assert!(msg.contains("line 2"), "{msg}");
}

#[test]
fn unknown_keys_are_refused() {
    let f = file("[timing]\nttll = \"5s\"\n");
    let e = load(Some(f.path()), &FlagValues::default()).unwrap_err();
    assert!(format!("{:#}", e.error).contains("ttll"));
}
