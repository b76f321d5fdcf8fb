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
        "--no-auth",
        "--signing-key",
        "token",
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
    // A key of this test's own (the default one lives beside template.yaml).
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("signing-key.p8");
    let key = key.to_str().unwrap();
    let minted = local(&["--signing-key", key, "token", "--customer", "C-1"]);
    assert!(minted.status.success(), "{}", stderr(&minted));
    assert!(
        stderr(&minted).contains("created the local signing key"),
        "{}",
        stderr(&minted)
    );
    let token = stdout(&minted).trim().to_owned();
    assert_eq!(
        token.split('.').count(),
        3,
        "one JWT alone on stdout: {token}"
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_local"))
        .args(["--json", "--signing-key", key, "serve", "--port", "0"])
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
                    .any(|r| r == "POST /orders -> orders-api (token)"),
                "{value}"
            );
            url = value["url"].as_str().map(str::to_owned);
            break;
        }
    }
    let address = url.unwrap().trim_start_matches("http://").to_owned();

    let body = r#"{"customer-id":"C-1","currency":"EUR","items":[{"sku":"MUG","quantity":1,"unit-price":"9.90"}]}"#;
    let post = |authorization: &str| {
        let mut stream = TcpStream::connect(&address).unwrap();
        write!(
            stream,
            "POST /orders HTTP/1.1\r\nHost: {address}\r\nIdempotency-Key: cli-1\r\n{authorization}Content-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    };
    let refused = post("");
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    assert!(
        refused.ends_with(r#"{"message":"Unauthorized"}"#),
        "{refused}"
    );
    // The token `local token` minted in another process, with the same key file.
    let response = post(&format!("Authorization: Bearer {token}\r\n"));
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
    assert_eq!(summary["requests_served"], 2);
    assert_eq!(summary["authorization_off"], false);
    assert_eq!(
        summary["deliveries"]["fresh"], 5,
        "everything published was delivered before exiting: {summary}"
    );
}

#[test]
fn token_prints_a_warehouse_token_with_the_templates_staff_scope() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.p8");
    let output = local(&[
        "--json",
        "--signing-key",
        key.to_str().unwrap(),
        "token",
        "--warehouse",
        "--expires-in",
        "-5",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["type"], "token");
    assert_eq!(lines[0]["scope"], "commerce/warehouse");
    assert_eq!(lines[0]["expires_in"], -5);
    assert!(key.exists());
    let refused = local(&["token"]);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "--customer or --warehouse is required"
    );
}

#[test]
fn replayed_http_fixtures_pass_the_authorizer_with_their_claims_and_bad_ones_are_refused() {
    let output = local(&[
        "--json",
        "replay",
        "events/http/get-order.json",
        "events/bad/http-post-order-no-claims.json",
        "events/bad/http-post-return-received-customer-token.json",
        "events/http/post-return-received.json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let lines = json_lines(&output);
    let requests: Vec<&Value> = lines.iter().filter(|l| l["type"] == "request").collect();
    let seen: Vec<(u64, &str, &str)> = requests
        .iter()
        .map(|r| {
            (
                r["status"].as_u64().unwrap(),
                r["auth"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (404, "sub 456", "error:NotFound"),
            (401, "refused", "refused:missing_token"),
            (403, "refused", "refused:insufficient_scope"),
            (404, "sub 6w4rehouse0system0example0app", "error:NotFound"),
        ],
        "{requests:?}"
    );
}

#[test]
fn no_auth_says_so_in_the_banner_every_request_line_and_the_summary() {
    let output = local(&[
        "--no-auth",
        "replay",
        "events/bad/http-post-order-no-claims.json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let first = text.lines().nth(1).unwrap_or_default();
    assert!(first.contains("AUTHORIZATION IS OFF"), "{text}");
    let request = text
        .lines()
        .find(|l| l.contains("HTTP POST /orders"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(request.contains("[NO AUTH]"), "{request}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("WARNING: AUTHORIZATION IS OFF")),
        "{text}"
    );
}
