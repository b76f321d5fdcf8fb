//! The `local` binary as a user runs it: help, clear errors for bad input, the demo's JSON
//! output, replay, and serve with a graceful Ctrl-C.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `local ARGS` from the workspace root (where `template.yaml` is the default).
fn local(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_local"))
        .args(args)
        .current_dir(root())
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

fn json_lines(output: &Output) -> Vec<Value> {
    stdout(output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

#[test]
fn help_describes_every_option_and_mode() {
    let output = local(&["--help"]);
    assert!(output.status.success());
    let help = stdout(&output);
    for word in [
        "--template",
        "--json",
        "--dynamodb",
        "--stack-name",
        "--duplicates",
        "--seed",
        "--concurrent-retries",
        "serve",
        "demo",
        "replay",
        "bench",
        "AWS_ENDPOINT_URL",
        "maxReceiveCount",
    ] {
        assert!(help.contains(word), "{word} missing from --help:\n{help}");
    }
    let replay = stdout(&local(&["replay", "--help"]));
    assert!(replay.contains("FILE"), "{replay}");
}

#[test]
fn the_demo_with_half_duplicates_says_the_final_state_is_unchanged() {
    let output = local(&["demo", "--duplicates", "0.5", "--seed", "3"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.starts_with("Routing from template.yaml: 5 rules, 2 table streams, 7 functions"),
        "{text}"
    );
    assert!(
        text.contains("FulfillmentFromOrdersRule -> fulfillment-events"),
        "{text}"
    );
    assert!(text.contains("[duplicate]"), "{text}");
    assert!(text.contains("DLQ: empty"), "{text}");
    assert!(
        text.contains("The final state is the same as without duplicates."),
        "{text}"
    );
}

#[test]
fn the_demo_speaks_json_lines_for_machines() {
    let output = local(&["--json", "demo", "--duplicates", "0.5"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let lines = json_lines(&output);
    let of = |kind: &str| {
        lines
            .iter()
            .filter(|l| l["type"] == kind)
            .collect::<Vec<_>>()
    };
    assert_eq!(of("banner").len(), 1);
    let deliveries = of("delivery");
    assert!(!deliveries.is_empty());
    for d in &deliveries {
        for field in [
            "time",
            "source",
            "detail_type",
            "key",
            "rule",
            "target",
            "outcome",
            "next",
        ] {
            assert!(d.get(field).is_some(), "{field} missing from {d}");
        }
    }
    assert!(!of("request").is_empty());
    assert_eq!(of("summary").len(), 1);
    let demo = of("demo");
    assert_eq!(demo.len(), 1);
    assert_eq!(demo[0]["same_final_state"], true, "{}", demo[0]);
    assert_eq!(demo[0]["run"]["final_state"]["order"]["status"], "Returned");
}

#[test]
fn replaying_an_event_for_an_order_nobody_knows_ends_in_the_dlq_listing() {
    let output = local(&["replay", "events/eventbridge/order-created.json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    // Fulfillment picks and ships it; orders-events has never seen order 1073459984.
    assert!(
        text.contains("OrderCreated") && text.contains("fresh (emitted OrderPicked)"),
        "{text}"
    );
    assert!(text.contains("DLQ: 2 message(s)"), "{text}");
    assert!(
        text.contains("OrdersEventsDLQ <- OrdersEventsQueue  com.fulfillment OrderPicked"),
        "{text}"
    );
}

#[test]
fn a_bad_fixture_is_refused_naming_the_file_and_the_field_before_anything_runs() {
    let output = local(&[
        "replay",
        "events/eventbridge/order-created.json",
        "events/bad/eventbridge-unknown-detail-type.json",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("events/bad/eventbridge-unknown-detail-type.json: field `detail-type`"),
        "{err}"
    );
    assert!(err.contains("[InvalidFixture]"), "{err}");
    assert!(
        stdout(&output).is_empty(),
        "nothing was injected: {}",
        stdout(&output)
    );

    let output = local(&["replay", "events/bad/eventbridge-wrong-field-types.json"]);
    assert!(
        stderr(&output).contains("field `detail.data."),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_template_it_cannot_read_is_a_clear_error() {
    let output = local(&["--template", "no/such/template.yaml", "demo"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("cannot read template no/such/template.yaml"),
        "{}",
        stderr(&output)
    );

    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "Resources:\n  Bus: [\n").unwrap();
    let output = local(&["--template", broken.to_str().unwrap(), "demo"]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("broken.yaml") && err.contains("line"), "{err}");

    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let bad_pattern = dir.path().join("pattern.yaml");
    std::fs::write(
        &bad_pattern,
        text.replacen("source: [com.orders]", "source: com.orders", 1),
    )
    .unwrap();
    let output = local(&["--template", bad_pattern.to_str().unwrap(), "demo"]);
    let err = stderr(&output);
    assert!(
        err.contains("pattern.yaml: FulfillmentFromOrdersRule.Properties.EventPattern"),
        "{err}"
    );
}

#[test]
fn a_rate_outside_zero_to_one_is_refused() {
    let output = local(&["demo", "--duplicates", "1.5"]);
    assert_eq!(output.status.code(), Some(2), "clap's usage error");
    assert!(
        stderr(&output).contains("--duplicates"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn serve_answers_http_and_stops_gracefully_on_ctrl_c() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_local"))
        .args(["--json", "serve", "--port", "0"])
        .current_dir(root())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut url = None;
    for _ in 0..10 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let value: Value = serde_json::from_str(&line).unwrap();
        if value["type"] == "listening" {
            assert!(
                value["routes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r == "POST /orders -> orders-api"),
                "{value}"
            );
            url = value["url"].as_str().map(str::to_owned);
            break;
        }
    }
    let address = url.unwrap().trim_start_matches("http://").to_owned();

    let body = r#"{"customer-id":"C-1","currency":"EUR","items":[{"sku":"MUG","quantity":1,"unit-price":"9.90"}]}"#;
    let mut stream = TcpStream::connect(&address).unwrap();
    write!(
        stream,
        "POST /orders HTTP/1.1\r\nHost: {address}\r\nIdempotency-Key: cli-1\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");

    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(status.code(), Some(0), "Ctrl-C is how serving ends: {rest}");
    let summary: Value = rest
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["type"] == "summary")
        .unwrap_or_else(|| panic!("no summary in {rest}"));
    assert_eq!(summary["requests_served"], 1);
    assert_eq!(
        summary["deliveries"]["fresh"], 5,
        "everything published was delivered before exiting: {summary}"
    );
}
