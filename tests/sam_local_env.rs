//! `sam local invoke`, run as the README runs it, hands every function the template's environment
//! plus `env.local.json`'s: the stand-in's endpoint, the `dev` stack's names and dummy
//! credentials, even from a shell that holds a developer's own credentials. SAM CLI computes the
//! environment itself (`scripts/sam-local-env.py` drives its command line with only Docker left
//! out), so this is what the container would get.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use testkit::{Stack, template, workspace_root};

/// Variables SAM CLI sets for every function whatever the template says (Lambda's runtime
/// variables and the credentials it takes from the shell), from
/// `samcli.local.lambdafn.env_vars.EnvironmentVariables`.
const SAM_RUNTIME_VARIABLES: [&str; 16] = [
    "AWS_SAM_LOCAL",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_TIMEOUT",
    "AWS_LAMBDA_FUNCTION_HANDLER",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_ACCOUNT_ID",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_FORMAT",
    "AWS_LAMBDA_LOG_LEVEL",
];

/// A developer's shell: real-looking credentials, another region, and a value for a variable the
/// template declares (SAM CLI prefers the shell's value to the template's).
fn developer_shell(home: &std::path::Path) -> BTreeMap<String, String> {
    [
        ("HOME", home.to_str().unwrap()),
        ("AWS_ACCESS_KEY_ID", "AKIADEVELOPEROWNKEY1"),
        ("AWS_SECRET_ACCESS_KEY", "developer-own-secret"),
        ("AWS_SESSION_TOKEN", "developer-own-session"),
        ("AWS_DEFAULT_REGION", "eu-west-1"),
        ("EVENT_BUS_NAME", "developer-shell-bus"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// The README's `sam local invoke` block: the variables its `export` lines set and the argument
/// lists of its `sam local invoke` lines.
fn readme_commands() -> (BTreeMap<String, String>, Vec<Vec<String>>) {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    // Odd pieces between the fences are code blocks.
    let block = readme
        .split("```")
        .skip(1)
        .step_by(2)
        .find(|block| block.contains("sam local invoke"))
        .expect("README has a code block with `sam local invoke`");
    let mut exports = BTreeMap::new();
    let mut invocations = Vec::new();
    for line in block.lines() {
        let line = line.split(" #").next().unwrap().trim();
        if let Some(assignments) = line.strip_prefix("export ") {
            for assignment in assignments.split_whitespace() {
                let (name, value) = assignment.split_once('=').unwrap();
                if !value.contains('$') {
                    exports.insert(name.to_owned(), value.to_owned());
                }
            }
        } else if let Some(args) = line.strip_prefix("sam local invoke ") {
            let mut argv: Vec<String> = ["local", "invoke"].map(str::to_owned).to_vec();
            argv.extend(args.split_whitespace().map(str::to_owned));
            invocations.push(argv);
        }
    }
    assert!(!invocations.is_empty(), "no `sam local invoke` line");
    (exports, invocations)
}

fn option<'a>(argv: &'a [String], name: &str) -> Option<&'a str> {
    argv.iter()
        .position(|a| a == name)
        .map(|i| argv[i + 1].as_str())
}

/// Every variable a function declares, as written (Globals merged; `AWS::NoValue` kept: SAM CLI
/// keeps the name).
fn declared(root: &Value, logical_id: &str) -> BTreeMap<String, Value> {
    let mut vars: BTreeMap<String, Value> = root
        .pointer("/Globals/Function/Environment/Variables")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(own) = root
        .pointer(&format!(
            "/Resources/{logical_id}/Properties/Environment/Variables"
        ))
        .and_then(Value::as_object)
    {
        vars.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    vars
}

#[test]
fn sam_local_invoke_as_the_readme_runs_it_reaches_the_stand_in_with_dummy_credentials() {
    let t = template();
    let root = workspace_root();
    let env_file = option(&readme_commands().1[0], "--env-vars")
        .unwrap()
        .to_owned();
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join(&env_file)).unwrap()).unwrap();
    let overrides = file["Parameters"].as_object().unwrap().clone();

    // The README's invocations, then every other function with the same options: each is run
    // against the source template (`sam build` copies its environment unchanged).
    let (exports, mut invocations) = readme_commands();
    let named: BTreeSet<String> = invocations.iter().map(|argv| argv[2].clone()).collect();
    for f in t.functions() {
        if !named.contains(&f.logical_id) {
            let mut argv = invocations[0].clone();
            argv[2] = f.logical_id.clone();
            invocations.push(argv);
        }
    }
    for argv in &mut invocations {
        assert!(
            option(argv, "--env-vars") == Some(env_file.as_str()),
            "every README invocation passes --env-vars {env_file}: {argv:?}"
        );
        argv.extend(["--template".to_owned(), "template.yaml".to_owned()]);
    }

    let home = tempfile::tempdir().unwrap();
    let mut shell = developer_shell(home.path());
    shell.extend(exports);
    let out = testkit::run_sam_script(
        "sam-local-env.py",
        &[],
        &serde_json::to_string(&invocations).unwrap(),
        &shell.into_iter().collect::<Vec<_>>(),
    );
    let runs: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(runs.len(), invocations.len());

    let dev = Stack::new("dev");
    for run in &runs {
        let function = run["function"].as_str().unwrap();
        let env: BTreeMap<String, String> =
            serde_json::from_value(run["environment"].clone()).unwrap();
        let declared = declared(t.root(), function);

        // The stand-in, with its dummy credentials, in its region; nothing of the developer's.
        let endpoint = &env["AWS_ENDPOINT_URL"];
        assert!(
            endpoint.starts_with("http://host.docker.internal:"),
            "{function}: AWS_ENDPOINT_URL={endpoint}"
        );
        assert_eq!(
            (
                env["AWS_ACCESS_KEY_ID"].as_str(),
                env["AWS_SECRET_ACCESS_KEY"].as_str()
            ),
            ("test", "test"),
            "{function}"
        );
        assert!(!env.contains_key("AWS_SESSION_TOKEN"), "{function}");
        assert_eq!(env["AWS_REGION"], testkit::REGION, "{function}");

        // The template's variables, each with the file's value where it gives one.
        for (name, value) in &declared {
            let expected = match (overrides.get(name), value) {
                (Some(Value::String(from_file)), _) => from_file.clone(),
                (None, Value::String(literal)) => literal.clone(),
                (None, intrinsic) => panic!(
                    "{function}: {name} is {intrinsic} in the template and absent from {env_file}: \
                     SAM CLI would hand the function a logical id or an empty string"
                ),
                (Some(other), _) => panic!("{env_file}: {name} is not a string: {other}"),
            };
            assert_eq!(env.get(name), Some(&expected), "{function}: {name}");
        }
        // Plus SAM CLI's own runtime variables, and nothing else.
        for name in env.keys() {
            assert!(
                declared.contains_key(name) || SAM_RUNTIME_VARIABLES.contains(&name.as_str()),
                "{function}: {name} comes neither from the template nor from SAM CLI"
            );
        }

        // The file names what scripts/standin provisions: the `dev` stack of the template.
        for (name, value) in &declared {
            if value.is_object() && value["Ref"] != "AWS::NoValue" {
                let provisioned = t.resolve_string(value, &dev, name).unwrap();
                assert_eq!(env[name], provisioned, "{function}: {name} in {env_file}");
            }
        }
    }

    // Every entry of the file reaches some function: a variable the template does not declare
    // (AWS_REGION, the credentials: Lambda reserves them) would be silently ignored.
    let all_declared: BTreeSet<String> = t
        .functions()
        .iter()
        .flat_map(|f| declared(t.root(), &f.logical_id).into_keys())
        .collect();
    for name in overrides.keys() {
        assert!(
            all_declared.contains(name),
            "{env_file} sets {name}, which no function declares: SAM CLI ignores it"
        );
    }
}

#[test]
fn the_endpoint_variable_is_absent_from_every_deployed_function() {
    // Declared for `sam local invoke` only: CloudFormation removes a NoValue, so the functions on
    // AWS never see it.
    let t = template();
    let global = t
        .root()
        .pointer("/Globals/Function/Environment/Variables/AWS_ENDPOINT_URL")
        .unwrap();
    assert_eq!(global, &serde_json::json!({"Ref": "AWS::NoValue"}));
    for f in t.functions() {
        assert!(
            !f.environment.contains_key("AWS_ENDPOINT_URL"),
            "{} sets AWS_ENDPOINT_URL on AWS",
            f.logical_id
        );
        assert_eq!(
            declared(t.root(), &f.logical_id)["AWS_ENDPOINT_URL"],
            serde_json::json!({"Ref": "AWS::NoValue"}),
            "{}",
            f.logical_id
        );
    }
}
