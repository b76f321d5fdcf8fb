//! The served HTTP API, exercised as curl does: raw HTTP/1.1 over a loopback TCP connection,
//! with real signed tokens checked by the runner's JWT authorizer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use local::auth::{Grant, TokenAuthority};
use local::{LocalError, Runner, RunnerOptions};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

struct Server {
    address: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), LocalError>>,
    runner: Arc<Runner>,
    /// `Authorization` header values: customer C-1's, and the warehouse system's.
    customer: String,
    warehouse: String,
}

async fn start() -> Server {
    let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
    let runner = Arc::new(Runner::load(template, RunnerOptions::in_memory()).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(local::cli::serve(Arc::clone(&runner), listener, async {
        let _ = stopped.await;
    }));
    Server {
        address,
        stop,
        task,
        customer: format!("Bearer {}", runner.customer_token("C-1").unwrap()),
        warehouse: format!("Bearer {}", runner.warehouse_token().unwrap()),
        runner,
    }
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// What `curl -X METHOD -H ... -d BODY http://address/path` sends and reads.
async fn curl(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nConnection: close\r\n"
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_owned(),
    }
}

const ORDER: &str = r#"{"customer-id":"C-1","currency":"EUR","items":[{"sku":"SKU-RED-MUG","quantity":2,"unit-price":"12.50"}]}"#;

/// Polls `GET path` until its `status` field is `want` (the bus delivers in the background);
/// fails after a generous number of attempts.
async fn until_status(address: SocketAddr, auth: &str, path: &str, want: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..400 {
        let response = curl(address, "GET", path, &[("Authorization", auth)], b"").await;
        if response.status == 200 {
            last = response.json();
            if last["status"] == want {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{path} never reached {want}: {last}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_posted_over_http_is_created_replayed_and_followed_to_returned() {
    let server = start().await;
    let a = server.address;
    let customer = server.customer.as_str();
    let json = [
        ("Content-Type", "application/json"),
        ("Idempotency-Key", "http-1"),
        ("Authorization", customer),
    ];

    let created = curl(a, "POST", "/orders", &json, ORDER.as_bytes()).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.header("content-type"), Some("application/json"));
    let order = created.json();
    assert_eq!(
        (order["status"].as_str(), order["total"].as_str()),
        (Some("Open"), Some("25.00"))
    );

    let again = curl(a, "POST", "/orders", &json, ORDER.as_bytes()).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json(), order, "the replay answers the stored order");

    let order_path = format!("/orders/{}", order["order-id"].as_str().unwrap());
    until_status(a, customer, &order_path, "Shipped").await;

    let return_body = format!(
        r#"{{"order-id":{},"reason":"chipped","items":[{{"sku":"SKU-RED-MUG","quantity":1}}]}}"#,
        order["order-id"]
    );
    // The orders projection and support's shipped-orders projection consume OrderShipped
    // independently: "Shipped" on the order does not mean support has seen it yet, and until it
    // has, a return is a 409 OrderNotShipped that the client retries (same Idempotency-Key).
    let mut requested = curl(
        a,
        "POST",
        "/returns",
        &[
            ("Idempotency-Key", "http-ret-1"),
            ("Authorization", customer),
        ],
        return_body.as_bytes(),
    )
    .await;
    for _ in 0..400 {
        if requested.status != 409 || requested.json()["error"]["type"] != "OrderNotShipped" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        requested = curl(
            a,
            "POST",
            "/returns",
            &[
                ("Idempotency-Key", "http-ret-1"),
                ("Authorization", customer),
            ],
            return_body.as_bytes(),
        )
        .await;
    }
    assert_eq!(requested.status, 201, "{}", requested.body);
    let return_id = requested.json()["return-id"].as_str().unwrap().to_owned();
    let received = curl(
        a,
        "POST",
        &format!("/returns/{return_id}/received"),
        &[("Authorization", &server.warehouse)],
        b"",
    )
    .await;
    assert_eq!(received.status, 200, "{}", received.body);
    assert_eq!(received.json()["status"], "Received");
    let fetched = curl(
        a,
        "GET",
        &format!("/returns/{return_id}"),
        &[("Authorization", customer)],
        b"",
    )
    .await;
    assert_eq!(fetched.json()["status"], "Received");
    until_status(a, customer, &order_path, "Returned").await;

    server.stop.send(()).unwrap();
    server.task.await.unwrap().unwrap();
    let summary = server.runner.summary();
    assert_eq!(summary.deliveries.fresh, 6, "{summary:?}");
    assert!(summary.dead_letters.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_the_answers_api_gateway_and_the_functions_give() {
    let server = start().await;
    let a = server.address;
    let auth = ("Authorization", server.customer.as_str());

    let missing_key = curl(a, "POST", "/orders", &[auth], ORDER.as_bytes()).await;
    assert_eq!(missing_key.status, 400);
    assert_eq!(missing_key.json()["error"]["type"], "MissingIdempotencyKey");

    let malformed = curl(
        a,
        "POST",
        "/orders",
        &[("Idempotency-Key", "bad-1"), auth],
        br#"{"customer-id": "C-1", "items": ["#,
    )
    .await;
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.json()["error"]["type"], "MalformedJson");

    let wrong_types = curl(a, "POST", "/orders", &[("Idempotency-Key", "bad-2"), auth], br#"{"customer-id":"C-1","currency":"EUR","items":[{"sku":"A","quantity":"two","unit-price":"1.00"}]}"#).await;
    assert_eq!(wrong_types.status, 400);
    assert_eq!(wrong_types.json()["error"]["type"], "InvalidField");

    let no_route = curl(a, "DELETE", "/orders/1", &[], b"").await;
    assert_eq!(no_route.status, 404);
    assert_eq!(
        no_route.json(),
        serde_json::json!({ "message": "Not Found" }),
        "API Gateway's own 404"
    );
    assert_eq!(curl(a, "GET", "/nowhere", &[], b"").await.status, 404);

    let unknown = curl(a, "GET", "/orders/does-not-exist", &[auth], b"").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["error"]["type"], "NotFound");

    let not_shipped = curl(
        a,
        "POST",
        "/returns",
        &[("Idempotency-Key", "r-1"), auth],
        br#"{"order-id":"o-1","reason":"x","items":[{"sku":"A","quantity":1}]}"#,
    )
    .await;
    assert_eq!(not_shipped.status, 409);
    assert_eq!(not_shipped.json()["error"]["type"], "OrderNotShipped");

    let too_large = vec![b' '; local::http::MAX_REQUEST_BYTES + 1];
    let refused = curl(
        a,
        "POST",
        "/orders",
        &[("Idempotency-Key", "big-1"), auth],
        &too_large,
    )
    .await;
    assert_eq!(refused.status, 413);

    server.stop.send(()).unwrap();
    server.task.await.unwrap().unwrap();
    assert_eq!(
        server.runner.summary().requests_served,
        7,
        "the 413 never reached a function"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn shutting_down_stops_accepting_and_delivers_what_was_published() {
    let server = start().await;
    let created = curl(
        server.address,
        "POST",
        "/orders",
        &[
            ("Idempotency-Key", "stop-1"),
            ("Authorization", &server.customer),
        ],
        ORDER.as_bytes(),
    )
    .await;
    assert_eq!(created.status, 201);
    server.stop.send(()).unwrap();
    server.task.await.unwrap().unwrap();
    assert!(
        TcpStream::connect(server.address).await.is_err(),
        "the listener is closed"
    );
    let summary = server.runner.summary();
    assert_eq!(
        (
            summary.events_published,
            summary.deliveries.fresh,
            summary.waiting
        ),
        (3, 5, 0),
        "{summary:?}"
    );
}

/// Every route of the template with a path that reaches it.
const ROUTES: [(&str, &str); 5] = [
    ("POST", "/orders"),
    ("GET", "/orders/o-404"),
    ("POST", "/returns"),
    ("GET", "/returns/RET-404"),
    ("POST", "/returns/RET-404/received"),
];

fn assert_refused(response: &Response, status: u16, error: &str, route: &str) {
    assert_eq!(response.status, status, "{route}: {}", response.body);
    let message = if status == 401 {
        "Unauthorized"
    } else {
        "Forbidden"
    };
    assert_eq!(
        response.json(),
        serde_json::json!({ "message": message }),
        "{route}: API Gateway's own body"
    );
    let challenge = response.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer") && challenge.contains(error),
        "{route}: challenge {challenge:?} lacks {error:?}"
    );
}

/// Whether the function answered (its typed error body or a result), not the authorizer.
fn reached_the_function(response: &Response) -> bool {
    !matches!(response.status, 401 | 403) && response.json().get("message").is_none()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_refuses_missing_expired_foreign_and_forged_tokens_as_api_gateway_does() {
    let server = start().await;
    let a = server.address;
    let authority = server.runner.authority();
    let expired = format!(
        "Bearer {}",
        authority
            .mint(&Grant::customer("C-1").expires_in(-1))
            .unwrap()
    );
    // Signed by a key the runner does not know (someone else's local runner).
    let foreign_key = format!(
        "Bearer {}",
        TokenAuthority::ephemeral()
            .unwrap()
            .mint(&Grant::customer("C-1"))
            .unwrap()
    );
    // A valid token whose claims were swapped for another customer's: the signature breaks.
    let genuine = authority.mint(&Grant::customer("C-1")).unwrap();
    let other = authority.mint(&Grant::customer("C-2")).unwrap();
    let (g, o): (Vec<&str>, Vec<&str>) = (genuine.split('.').collect(), other.split('.').collect());
    let forged = format!("Bearer {}.{}.{}", g[0], o[1], g[2]);
    let mut foreign_client = Grant::customer("C-1");
    foreign_client.client_id = "another-apps-client".into();
    let wrong_audience = format!("Bearer {}", authority.mint(&foreign_client).unwrap());
    let not_a_jwt = "Bearer not.a.jwt".to_owned();

    for (method, path) in ROUTES {
        let route = format!("{method} {path}");
        let none = curl(a, method, path, &[("Idempotency-Key", "k")], b"{}").await;
        assert_refused(&none, 401, "", &route);
        assert_eq!(none.header("www-authenticate"), Some("Bearer"));
        for (token, what) in [
            (&expired, "expired"),
            (&foreign_key, "signed by a key"),
            (&forged, "signature"),
            (&wrong_audience, "audience"),
            (&not_a_jwt, "not a valid JWT"),
        ] {
            let refused = curl(
                a,
                method,
                path,
                &[("Idempotency-Key", "k"), ("Authorization", token)],
                b"{}",
            )
            .await;
            assert_refused(&refused, 401, "error=\"invalid_token\"", &route);
            let challenge = refused.header("www-authenticate").unwrap_or_default();
            assert!(challenge.contains(what), "{route}: {what}: {challenge:?}");
        }
    }

    server.stop.send(()).unwrap();
    server.task.await.unwrap().unwrap();
    let summary = server.runner.summary();
    assert_eq!(summary.events_published, 0, "no function ran: {summary:?}");
    assert_eq!(summary.requests_served, ROUTES.len() * 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_receipt_is_for_the_warehouse_token_and_every_other_route_for_customers() {
    let server = start().await;
    let a = server.address;
    for (method, path) in ROUTES {
        let route = format!("{method} {path}");
        let as_customer = curl(
            a,
            method,
            path,
            &[
                ("Idempotency-Key", "k"),
                ("Authorization", &server.customer),
            ],
            b"{}",
        )
        .await;
        if path.ends_with("/received") {
            assert_refused(
                &as_customer,
                403,
                "scope=\"commerce/warehouse\" error=\"insufficient_scope\"",
                &route,
            );
        } else {
            assert!(
                reached_the_function(&as_customer),
                "{route}: {}",
                as_customer.body
            );
        }
    }
    // A customer in the warehouse group still has no staff scope: the group grants nothing.
    let grouped = format!(
        "Bearer {}",
        server
            .runner
            .authority()
            .mint(&Grant::customer("C-1").in_group("warehouse"))
            .unwrap()
    );
    let refused = curl(
        a,
        "POST",
        "/returns/RET-404/received",
        &[("Authorization", &grouped)],
        b"",
    )
    .await;
    assert_refused(
        &refused,
        403,
        "insufficient_scope",
        "receipt, warehouse group",
    );

    // The warehouse's token passes the authorizer: the function answers (an unknown return).
    let staff = curl(
        a,
        "POST",
        "/returns/RET-404/received",
        &[("Authorization", &server.warehouse)],
        b"",
    )
    .await;
    assert!(reached_the_function(&staff), "{}", staff.body);
    assert_eq!(staff.status, 404, "{}", staff.body);

    server.stop.send(()).unwrap();
    server.task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_authorizer_requests_reach_the_functions_and_the_summary_says_so() {
    let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
    let runner = Arc::new(
        Runner::load(
            template,
            RunnerOptions {
                authorization: local::auth::Authorization::Off,
                ..RunnerOptions::in_memory()
            },
        )
        .unwrap(),
    );
    assert!(
        runner.banner().contains("AUTHORIZATION IS OFF"),
        "{}",
        runner.banner()
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(local::cli::serve(Arc::clone(&runner), listener, async {
        let _ = stopped.await;
    }));
    // No scope is checked on the way in: the customer's request reaches the receipt's handler,
    // whose own check refuses it (defence in depth).
    let customer = format!("Bearer {}", runner.customer_token("C-1").unwrap());
    let staff = curl(
        a,
        "POST",
        "/returns/RET-404/received",
        &[("Authorization", &customer)],
        b"",
    )
    .await;
    assert_eq!(staff.status, 403, "{}", staff.body);
    assert_eq!(
        staff.json()["error"]["type"],
        "Forbidden",
        "the handler's answer"
    );
    // An expired token still names its caller.
    let expired = format!(
        "Bearer {}",
        runner
            .authority()
            .mint(&Grant::customer("C-1").expires_in(-60))
            .unwrap()
    );
    let read = curl(
        a,
        "GET",
        "/orders/o-404",
        &[("Authorization", &expired)],
        b"",
    )
    .await;
    assert!(reached_the_function(&read), "{}", read.body);
    assert_eq!(read.status, 404, "{}", read.body);
    // Without a token there is nobody to act for: the function says 401 itself.
    let anonymous = curl(a, "GET", "/orders/o-404", &[], b"").await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    assert_eq!(anonymous.json()["error"]["type"], "Unauthorized");
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    let summary = runner.summary();
    assert!(summary.authorization_off);
    assert!(
        summary.text().starts_with("WARNING: AUTHORIZATION IS OFF"),
        "{}",
        summary.text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_customer_reads_and_returns_only_their_own_orders_with_real_tokens() {
    let server = start().await;
    let a = server.address;
    let body = br#"{"currency":"EUR","items":[{"sku":"MUG","quantity":1,"unit-price":"9.90"}]}"#;
    let created = curl(
        a,
        "POST",
        "/orders",
        &[
            ("Authorization", &server.customer),
            ("Idempotency-Key", "own-1"),
            ("Content-Type", "application/json"),
        ],
        body,
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let order = created.json();
    assert_eq!(
        order["customer-id"], "C-1",
        "the customer is the token's subject"
    );
    let path = format!("/orders/{}", order["order-id"].as_str().unwrap());

    let other = format!("Bearer {}", server.runner.customer_token("C-2").unwrap());
    let foreign = curl(a, "GET", &path, &[("Authorization", &other)], b"").await;
    assert_eq!(foreign.status, 404, "no existence leak: {}", foreign.body);
    let own = curl(a, "GET", &path, &[("Authorization", &server.customer)], b"").await;
    assert_eq!(own.status, 200, "{}", own.body);

    // The same client key from another customer is another order.
    let theirs = curl(
        a,
        "POST",
        "/orders",
        &[
            ("Authorization", &other),
            ("Idempotency-Key", "own-1"),
            ("Content-Type", "application/json"),
        ],
        body,
    )
    .await;
    assert_eq!(theirs.status, 201, "{}", theirs.body);
    assert_eq!(theirs.header("idempotent-replayed"), None);
    assert_ne!(theirs.json()["order-id"], order["order-id"]);
    server.stop.send(()).unwrap();
    server.task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_return_is_the_owners_to_request_and_read_and_the_warehouses_to_receive() {
    let server = start().await;
    let a = server.address;
    fn json_headers<'a>(auth: &'a str, key: &'a str) -> [(&'a str, &'a str); 3] {
        [
            ("Authorization", auth),
            ("Idempotency-Key", key),
            ("Content-Type", "application/json"),
        ]
    }
    let customer = server.customer.as_str();
    let other = format!("Bearer {}", server.runner.customer_token("C-2").unwrap());
    let other = other.as_str();
    let warehouse = server.warehouse.as_str();
    let order = br#"{"currency":"EUR","items":[{"sku":"MUG","quantity":1,"unit-price":"9.90"}]}"#;
    let created = curl(
        a,
        "POST",
        "/orders",
        &json_headers(customer, "ret-order-1"),
        order,
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let order_id = created.json()["order-id"].as_str().unwrap().to_owned();
    server.runner.settle().await.unwrap(); // picked, shipped; support has seen it ship
    let ask = format!(
        r#"{{"order-id":"{order_id}","reason":"chipped","items":[{{"sku":"MUG","quantity":1}}]}}"#
    );

    let stranger = curl(
        a,
        "POST",
        "/returns",
        &json_headers(other, "r-1"),
        ask.as_bytes(),
    )
    .await;
    assert_eq!(stranger.status, 409, "{}", stranger.body);
    assert_eq!(stranger.json()["error"]["type"], "OrderNotShipped");
    let requested = curl(
        a,
        "POST",
        "/returns",
        &json_headers(customer, "r-1"),
        ask.as_bytes(),
    )
    .await;
    assert_eq!(requested.status, 201, "{}", requested.body);
    let return_id = requested.json()["return-id"].as_str().unwrap().to_owned();

    let path = format!("/returns/{return_id}");
    assert_eq!(
        curl(a, "GET", &path, &[("Authorization", other)], b"")
            .await
            .status,
        404
    );
    assert_eq!(
        curl(a, "GET", &path, &[("Authorization", customer)], b"")
            .await
            .status,
        200
    );
    let receipt = format!("/returns/{return_id}/received");
    let by_customer = curl(a, "POST", &receipt, &[("Authorization", customer)], b"").await;
    assert_eq!(
        by_customer.status, 403,
        "the route's scope: {}",
        by_customer.body
    );
    let by_warehouse = curl(a, "POST", &receipt, &[("Authorization", warehouse)], b"").await;
    assert_eq!(by_warehouse.status, 200, "{}", by_warehouse.body);
    assert_eq!(by_warehouse.json()["status"], "Received");
    server.stop.send(()).unwrap();
    server.task.await.unwrap().unwrap();
}
