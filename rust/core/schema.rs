//! The snapshot's published JSON Schema (`python/milepost/schema/snapshot-v1.json`), generated
//! from the serde types themselves so that it cannot drift from what is written.
//!
//! The committed file is checked by a test: after changing a snapshot type, regenerate it
//! with `MILEPOST_WRITE_SCHEMA=1 cargo test --no-default-features schema`.

use schemars::generate::SchemaSettings;
use schemars::transform::RestrictFormats;

use super::snapshot::Snapshot;

/// Where the schema is published, relative to the crate.
pub const SNAPSHOT_SCHEMA_PATH: &str = "python/milepost/schema/snapshot-v1.json";

/// Fields added to version 1 after it was published, by where they are (`None`: the
/// snapshot itself, else a `$defs` name): written by every snapshot now, but not required, so
/// that snapshots saved before they existed still validate (adding fields bumps no version).
const ADDED_SINCE_PUBLISHED: &[(Option<&str>, &str)] = &[
    (None, "events_dropped"),
    (Some("node"), "path"),
    (Some("node"), "cost"),
    (Some("node"), "cost_per_item"),
    (Some("node"), "projected_cost"),
    (Some("node"), "tail"),
    (Some("node"), "tail_item"),
    (Some("lane"), "tail"),
    (None, "resources"),
    (Some("lane"), "pid"),
    (Some("lane"), "cpu_percent"),
    (Some("lane"), "rss_bytes"),
    (Some("node"), "unit_divisor"),
    (Some("node"), "current_pass"),
    (Some("node"), "leave"),
];

/// The snapshot schema as pretty JSON text (draft 2020-12), as committed.
pub fn snapshot_schema() -> String {
    // As serialized: every field is written, so every field is required (but see
    // ADDED_SINCE_PUBLISHED). Rust's integer formats ("uint64"...) are not JSON Schema's and
    // are left out.
    let settings = SchemaSettings::draft2020_12().for_serialize().with_transform(RestrictFormats::default());
    let mut schema = settings.into_generator().into_root_schema_for::<Snapshot>().to_value();
    for (def, field) in ADDED_SINCE_PUBLISHED {
        let object = match def {
            None => &mut schema,
            Some(name) => &mut schema["$defs"][*name],
        };
        if let Some(required) = object.get_mut("required").and_then(serde_json::Value::as_array_mut) {
            required.retain(|name| name != field);
        }
    }
    serde_json::to_string_pretty(&schema).expect("a schema serializes") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_snapshot_schema_is_generated_from_the_types() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SNAPSHOT_SCHEMA_PATH);
        let generated = snapshot_schema();
        if std::env::var_os("MILEPOST_WRITE_SCHEMA").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap();
        assert!(
            committed == generated,
            "{} differs from the snapshot types: regenerate it with MILEPOST_WRITE_SCHEMA=1 cargo test \
             --no-default-features schema",
            path.display()
        );
    }

    #[test]
    fn the_schema_keeps_the_documented_constraints() {
        let v: serde_json::Value = serde_json::from_str(&snapshot_schema()).unwrap();
        assert_eq!(v["$id"], "https://milepost.invalid/schema/snapshot-v1.json");
        assert_eq!(v["properties"]["schema"]["const"], 1);
        let node = &v["$defs"]["node"]["properties"];
        assert_eq!(node["done"]["maximum"], 9_007_199_254_740_991_u64);
        assert_eq!(
            node["state"]["enum"],
            serde_json::json!(["pending", "running", "completed", "failed", "cancelled"])
        );
        assert_eq!(node["kind"]["enum"], serde_json::json!(["run", "phase", "step"]));
        assert!(node["path"]["description"].as_str().unwrap().contains("'#2'"));
        let required = &v["$defs"]["node"]["required"];
        assert!(required.as_array().unwrap().contains(&serde_json::json!("done")));
        assert!(!required.as_array().unwrap().contains(&serde_json::json!("cost")));
    }
}
