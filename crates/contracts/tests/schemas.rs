//! The checked-in JSON Schemas match the Rust types, and stay backwards compatible with every
//! released version. `UPDATE_SCHEMAS=1 cargo test -p contracts --test schemas` rewrites the
//! current ones; copying a current schema into `released/<Type>.v<N>.json` freezes a version.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::path::{Path, PathBuf};

use contracts::schema;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

/// Keys sorted at every level, whatever serde_json's `preserve_order` feature says in this build
/// (another workspace crate enables it, which changes the generator's key order).
fn sorted(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<_> = map.keys().collect();
            keys.sort();
            serde_json::Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&map[k])))
                    .collect(),
            )
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(sorted).collect())
        }
        other => other.clone(),
    }
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(&sorted(v)).unwrap() + "\n"
}

#[test]
fn checked_in_schemas_match_the_rust_types() {
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
    let mut stale = Vec::new();
    for (detail_type, generated) in schema::all() {
        let path = dir().join(format!("{detail_type}.json"));
        if update {
            std::fs::write(&path, pretty(&generated)).unwrap();
            continue;
        }
        // Compared as JSON values: map equality does not depend on key order.
        let have = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok());
        if have.as_ref() != Some(&generated) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "schemas differ from the Rust types: {stale:?}\n\
         run `UPDATE_SCHEMAS=1 cargo test -p contracts --test schemas` and review the diff"
    );
}

#[test]
fn current_schemas_are_backwards_compatible_with_every_released_version() {
    let current: std::collections::BTreeMap<_, _> = schema::all().into_iter().collect();
    let mut checked = 0;
    for entry in std::fs::read_dir(dir().join("released")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some((detail_type, _version)) = name.trim_end_matches(".json").split_once(".v") else {
            panic!("released schema {name} must be named <DetailType>.v<N>.json");
        };
        let new = current.get(detail_type).unwrap_or_else(|| {
            panic!("released schema {name} has no current detail type: a detail type was removed")
        });
        let old: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if let Err(breaks) = schema::check_backward_compatible(&old, new) {
            let list: Vec<_> = breaks.iter().map(ToString::to_string).collect();
            panic!("{detail_type} breaks {name}:\n  {}", list.join("\n  "));
        }
        checked += 1;
    }
    // Every detail type has at least its first released version frozen.
    assert!(
        checked >= current.len(),
        "only {checked} released schemas found"
    );
}
