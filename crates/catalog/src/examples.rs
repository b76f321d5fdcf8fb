//! Example events: the EventBridge fixtures of `events/eventbridge`, checked against the
//! contract and filed under their detail type.

use std::path::Path;

use serde_json::Value;

use crate::{Catalog, CatalogError, Example};

impl Catalog {
    /// Loads the example events of `dir` (every `*.json`, by name), which `root` makes relative
    /// paths of. Each must be an event of the contract whose `detail` parses as its type.
    pub fn load_examples(&mut self, root: &Path, dir: &str) -> Result<(), CatalogError> {
        let full = root.join(dir);
        let unreadable = |path: &Path, source| CatalogError::ExampleUnreadable {
            path: path.display().to_string(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&full).map_err(|e| unreadable(&full, e))? {
            let file = entry.map_err(|e| unreadable(&full, e))?.path();
            if file.extension().is_some_and(|e| e == "json") {
                files.push(file);
            }
        }
        files.sort();
        for file in files {
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let relative = format!("{dir}/{name}");
            let invalid = |problem: String| CatalogError::InvalidExample {
                path: relative.clone(),
                problem,
            };
            let text = std::fs::read_to_string(&file).map_err(|e| unreadable(&file, e))?;
            let event: Value = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
            let field = |name: &str| {
                event
                    .get(name)
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid(format!("`{name}` is missing or not a string")))
            };
            let (source, detail_type) = (field("source")?, field("detail-type")?);
            let detail = event
                .get("detail")
                .cloned()
                .ok_or_else(|| invalid("`detail` is missing".into()))?;
            contracts::AnyEvent::parse(source, detail_type, detail)
                .map_err(|e| invalid(e.to_string()))?;
            let Some(entry) = self
                .events
                .iter_mut()
                .find(|e| e.detail_type == detail_type)
            else {
                return Err(invalid(format!(
                    "no detail type {detail_type} in the catalog"
                )));
            };
            entry.examples.push(Example {
                name: name.trim_end_matches(".json").to_owned(),
                path: relative,
                event,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use sam_template::Template;

    use super::*;

    fn bus_only() -> Catalog {
        let yaml = "Resources: { Bus: { Type: AWS::Events::EventBus, Properties: { Name: b } } }";
        Catalog::from_template(&Template::from_yaml(yaml, "t.yaml").unwrap()).unwrap()
    }

    #[test]
    fn examples_are_filed_under_their_detail_type_and_bad_ones_name_their_file() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("ex");
        std::fs::create_dir(&dir).unwrap();
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/eventbridge");
        std::fs::copy(
            format!("{fixtures}/order-picked.json"),
            dir.join("picked.json"),
        )
        .unwrap();
        std::fs::write(dir.join("notes.txt"), "not an example").unwrap();
        let mut catalog = bus_only();
        catalog.load_examples(root.path(), "ex").unwrap();
        let picked = &catalog.event("OrderPicked").unwrap().examples;
        assert_eq!(picked.len(), 1);
        assert_eq!(
            (picked[0].name.as_str(), picked[0].path.as_str()),
            ("picked", "ex/picked.json")
        );
        assert!(catalog.event("OrderCreated").unwrap().examples.is_empty());

        let mut event: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("picked.json")).unwrap())
                .unwrap();
        event["detail"]["data"]["items"] = Value::from("SKU-1");
        std::fs::write(dir.join("wrong.json"), event.to_string()).unwrap();
        let err = bus_only()
            .load_examples(root.path(), "ex")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("ex/wrong.json: not an example of the contract"),
            "{err}"
        );
    }
}
