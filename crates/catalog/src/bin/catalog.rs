//! `catalog`: regenerates the event catalog's checked-in outputs from the contract and
//! `template.yaml`: `asyncapi.yaml` and the Schema Registry block of the template.
//! `--check` changes nothing and fails when either is stale.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use catalog::{
    ASYNCAPI_PATH, Catalog, EXAMPLES_DIR, REGENERATE, TEMPLATE_PATH, asyncapi, registry,
};
use clap::Parser;

/// Regenerates asyncapi.yaml and the Schema Registry block of template.yaml from the event
/// contract (crates/contracts), the template's rules and the examples in events/eventbridge.
#[derive(Debug, Parser)]
#[command(name = "catalog", version)]
struct Cli {
    /// The repository root (default: this workspace's).
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Change nothing; exit with status 1 and name the stale files if any output differs.
    #[arg(long)]
    check: bool,
}

/// One generated file: its name, where, what it holds now, what it should hold.
struct Output {
    name: &'static str,
    path: PathBuf,
    current: String,
    generated: String,
}

fn outputs(root: &Path) -> anyhow::Result<Vec<Output>> {
    let template_path = root.join(TEMPLATE_PATH);
    let template_text = std::fs::read_to_string(&template_path)
        .with_context(|| format!("cannot read {}", template_path.display()))?;
    let template =
        sam_template::Template::from_yaml(&template_text, &template_path.display().to_string())?;
    let mut catalog = Catalog::from_template(&template)?;
    catalog.load_examples(root, EXAMPLES_DIR)?;

    let asyncapi_path = root.join(ASYNCAPI_PATH);
    let spliced = registry::splice(
        &template_text,
        &template_path.display().to_string(),
        &registry::block(&catalog)?,
    )?;
    Ok(vec![
        Output {
            name: ASYNCAPI_PATH,
            current: std::fs::read_to_string(&asyncapi_path).unwrap_or_default(),
            generated: asyncapi::document(&catalog)?,
            path: asyncapi_path,
        },
        Output {
            name: TEMPLATE_PATH,
            current: template_text,
            generated: spliced,
            path: template_path,
        },
    ])
}

fn run(cli: Cli) -> anyhow::Result<bool> {
    let root = cli
        .root
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
    let mut fresh = true;
    for output in outputs(&root)? {
        let name = output.name;
        if output.current == output.generated {
            println!("{name}: up to date");
        } else if cli.check {
            println!("{name}: stale (run `{REGENERATE}`)");
            fresh = false;
        } else {
            std::fs::write(&output.path, &output.generated)
                .with_context(|| format!("cannot write {}", output.path.display()))?;
            println!("{name}: written");
        }
    }
    Ok(fresh)
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
