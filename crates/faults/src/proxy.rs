//! The loopback HTTP proxy: sits between the SDK and the AWS-API stand-in and breaks calls
//! according to a [`FaultPlan`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::error::FaultError;
use crate::plan::{Call, Decision, Fault, FaultPlan, Injector};
use crate::wire;

/// Counters of what went through the proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Requests seen (SDK attempts, retries included), by `service.Operation`.
    pub calls: BTreeMap<String, u64>,
    /// Faults injected, by rule name.
    pub injected: BTreeMap<String, u64>,
    /// Faults injected, by kind ([`Fault::kind`]).
    pub by_kind: BTreeMap<String, u64>,
    /// PutEvents entries failed by [`Fault::FailEntries`].
    pub entries_failed: u64,
    /// Requests forwarded to the upstream.
    pub forwarded: u64,
    /// Forwards that failed (answered 502).
    pub upstream_errors: u64,
}

impl FaultStats {
    /// Every request seen.
    pub fn total_calls(&self) -> u64 {
        self.calls.values().sum()
    }

    /// Every fault injected.
    pub fn total_injected(&self) -> u64 {
        self.injected.values().sum()
    }

    /// Requests seen for one `service.Operation` (e.g. `dynamodb.PutItem`).
    pub fn calls_to(&self, operation: &str) -> u64 {
        self.calls.get(operation).copied().unwrap_or(0)
    }

    /// Requests seen for every operation of a service (e.g. `dynamodb`).
    pub fn calls_to_service(&self, service: &str) -> u64 {
        self.calls
            .iter()
            .filter(|(op, _)| op.split('.').next() == Some(service))
            .map(|(_, n)| n)
            .sum()
    }

    /// One line per counter group, for test reports.
    pub fn text(&self) -> String {
        format!(
            "calls {} {:?}; injected {} by rule {:?}, by kind {:?}; entries failed {}; forwarded {}; upstream errors {}",
            self.total_calls(),
            self.calls,
            self.total_injected(),
            self.injected,
            self.by_kind,
            self.entries_failed,
            self.forwarded,
            self.upstream_errors
        )
    }
}

struct Shared {
    upstream: String,
    injector: Mutex<Injector>,
    stats: Mutex<FaultStats>,
    /// Bumped whenever a fault is injected, so tests can wait for one.
    injected: watch::Sender<u64>,
    /// Bumped to let every hung request go (its connection is closed).
    release: watch::Sender<u64>,
    shutdown: watch::Receiver<bool>,
}

// Every update under these locks is a counter bump or a map insert, so a panic elsewhere cannot
// leave them half-written: a poisoned lock is still consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn stats(&self) -> MutexGuard<'_, FaultStats> {
        lock(&self.stats)
    }

    fn note_injected(&self, decision: &Decision) {
        {
            let mut stats = self.stats();
            *stats.injected.entry(decision.rule.clone()).or_default() += 1;
            *stats
                .by_kind
                .entry(decision.fault.kind().to_owned())
                .or_default() += 1;
        }
        self.injected.send_modify(|n| *n += 1);
    }
}

/// A loopback HTTP proxy in front of an AWS-API endpoint (the moto stand-in) that injects the
/// faults of a [`FaultPlan`]: throttling and 5xx answers, lost responses, delays, dropped
/// connections, failed PutEvents entries and hangs.
///
/// Point an SDK configuration (`endpoint_url`) or a child process (`AWS_ENDPOINT_URL`) at
/// [`FaultProxy::endpoint`]. Dropping the proxy stops it and closes its connections.
pub struct FaultProxy {
    endpoint: String,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("endpoint", &self.endpoint)
            .field("upstream", &self.shared.upstream)
            .finish_non_exhaustive()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Nobody listening only means every task has already stopped.
        let _ = self.shutdown.send(true);
    }
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port, forwarding to `upstream` (`http://host:port`).
    /// Must be called inside a Tokio runtime, which runs the proxy.
    pub async fn start(upstream: &str, plan: FaultPlan) -> Result<Self, FaultError> {
        let authority = upstream
            .strip_prefix("http://")
            .map(|rest| rest.trim_end_matches('/'))
            .filter(|rest| !rest.is_empty() && !rest.contains('/'))
            .ok_or_else(|| FaultError::InvalidUpstream(upstream.to_owned()))?
            .to_owned();
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(FaultError::Bind)?;
        let address = listener.local_addr().map_err(FaultError::Bind)?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            upstream: authority,
            injector: Mutex::new(Injector::new(plan)),
            stats: Mutex::new(FaultStats::default()),
            injected: watch::channel(0).0,
            release: watch::channel(0).0,
            shutdown: shutdown_rx.clone(),
        });
        tokio::spawn(accept_loop(listener, Arc::clone(&shared), shutdown_rx));
        Ok(Self {
            endpoint: endpoint_of(address),
            shared,
            shutdown,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Replaces the plan (limits and the die start over).
    pub fn set_plan(&self, plan: FaultPlan) {
        *lock(&self.shared.injector) = Injector::new(plan);
    }

    /// The counters so far.
    pub fn stats(&self) -> FaultStats {
        self.shared.stats().clone()
    }

    /// Sets every counter back to zero.
    pub fn reset_stats(&self) {
        *self.shared.stats() = FaultStats::default();
    }

    /// Waits until the rule `rule` has injected at least `n` faults in total.
    pub async fn injected_at_least(&self, rule: &str, n: u64) {
        let mut changes = self.shared.injected.subscribe();
        loop {
            if self.shared.stats().injected.get(rule).copied().unwrap_or(0) >= n {
                return;
            }
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    /// Lets every request held by a [`Fault::Hang`] go: their connections are closed.
    pub fn release_hung(&self) {
        self.shared.release.send_modify(|n| *n += 1);
    }
}

fn endpoint_of(address: SocketAddr) -> String {
    format!("http://{address}")
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // A failed accept (e.g. too many open files) is transient for a test proxy.
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    continue;
                };
                tokio::spawn(serve(stream, Arc::clone(&shared), shutdown.clone()));
            }
            _ = shutdown.changed() => return,
        }
    }
}

async fn serve(stream: TcpStream, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let service = service_fn(move |request| handle(Arc::clone(&shared), request));
    let connection = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        // A connection ends with an error when a fault closed it on purpose: nothing to report.
        _ = connection => {}
        _ = shutdown.changed() => {}
    }
}

type Answer = Response<Full<Bytes>>;

/// What a forward brought back.
struct Upstream {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Result<Answer, FaultError> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| FaultError::Request(Box::new(e)))?
        .to_bytes();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok());
    let (service, operation) = wire::identify(target, &body);
    let decision = lock(&shared.injector).decide(&Call {
        service: &service,
        operation: &operation,
        body: &body,
    });
    *shared
        .stats()
        .calls
        .entry(format!("{}.{operation}", service.name()))
        .or_default() += 1;
    let Some(decision) = decision else {
        return Ok(forward_or_502(&shared, &parts, body).await);
    };
    // Subscribed before the fault is announced: a test that waits for the hang and then
    // releases it must find this request already listening, or the release is missed and the
    // request hangs for good.
    let mut release = shared.release.subscribe();
    shared.note_injected(&decision);
    tracing::debug!(rule = %decision.rule, kind = decision.fault.kind(), operation, "injecting a fault");
    let content_type = parts.headers.get(header::CONTENT_TYPE).cloned();
    match decision.fault {
        Fault::Reject { status, code } => Ok(error_answer(
            status,
            &Fault::code_for(status, &code, &service),
            content_type,
        )),
        Fault::LoseResponse { status, code } => {
            // Applied upstream; whatever it answered is lost on the way back.
            let _ = forward(&shared, &parts, body).await;
            Ok(error_answer(
                status,
                &Fault::code_for(status, &code, &service),
                content_type,
            ))
        }
        Fault::Delay(delay) => {
            tokio::time::sleep(delay).await;
            Ok(forward_or_502(&shared, &parts, body).await)
        }
        Fault::Drop { after_forward } => {
            if after_forward {
                let _ = forward(&shared, &parts, body).await;
            }
            Err(FaultError::Aborted(decision.fault.kind()))
        }
        Fault::FailEntries { share, code } => {
            fail_entries(&shared, &parts, body, share, &code).await
        }
        Fault::Hang => {
            let mut shutdown = shared.shutdown.clone();
            tokio::select! {
                _ = release.changed() => {}
                _ = shutdown.changed() => {}
            }
            Err(FaultError::Aborted("hang"))
        }
    }
}

async fn fail_entries(
    shared: &Shared,
    parts: &http::request::Parts,
    body: Bytes,
    share: f64,
    code: &str,
) -> Result<Answer, FaultError> {
    let split = {
        let mut injector = lock(&shared.injector);
        wire::split_put_events(&body, |_| injector.roll() < share)
    };
    let Some(split) = split else {
        return Ok(forward_or_502(shared, parts, body).await);
    };
    let failed = split.failed.iter().filter(|f| **f).count() as u64;
    shared.stats().entries_failed += failed;
    let upstream = match split.forward {
        Some(forwarded) => match forward(shared, parts, Bytes::from(forwarded)).await {
            Ok(upstream) if upstream.status.is_success() => Some(upstream),
            // The forwarded part failed as a whole: answer that failure as is.
            Ok(upstream) => return Ok(answer(upstream)),
            Err(_) => {
                return Ok(bad_gateway(
                    parts.headers.get(header::CONTENT_TYPE).cloned(),
                ));
            }
        },
        None => None,
    };
    let merged = wire::merge_put_events(
        upstream.as_ref().map(|u| u.body.as_ref()),
        &split.failed,
        code,
    );
    match (merged, upstream) {
        (Some(merged), Some(upstream)) => Ok(answer(Upstream {
            body: Bytes::from(merged),
            ..upstream
        })),
        (Some(merged), None) => {
            let mut headers = HeaderMap::new();
            if let Some(content_type) = parts.headers.get(header::CONTENT_TYPE) {
                headers.insert(header::CONTENT_TYPE, content_type.clone());
            }
            Ok(answer(Upstream {
                status: StatusCode::OK,
                headers,
                body: Bytes::from(merged),
            }))
        }
        // The upstream answer was not a PutEvents result: pass it on untouched.
        (None, Some(upstream)) => Ok(answer(upstream)),
        (None, None) => Ok(bad_gateway(
            parts.headers.get(header::CONTENT_TYPE).cloned(),
        )),
    }
}

/// Headers that belong to one connection, not to the message.
fn hop_by_hop(name: &HeaderName) -> bool {
    [
        header::CONNECTION,
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::TE,
        header::TRAILER,
        header::UPGRADE,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
    ]
    .contains(name)
        || name.as_str() == "keep-alive"
}

async fn forward(
    shared: &Shared,
    parts: &http::request::Parts,
    body: Bytes,
) -> Result<Upstream, FaultError> {
    let upstream = |e: Box<dyn std::error::Error + Send + Sync>| FaultError::Upstream(e);
    let stream = TcpStream::connect(&shared.upstream)
        .await
        .map_err(|e| upstream(Box::new(e)))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| upstream(Box::new(e)))?;
    tokio::spawn(connection);
    let mut request = Request::builder()
        .method(parts.method.clone())
        .uri(parts.uri.path_and_query().map_or("/", |p| p.as_str()));
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) {
            request = request.header(name, value);
        }
    }
    let request = request
        .body(Full::new(body))
        .map_err(|e| upstream(Box::new(e)))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| upstream(Box::new(e)))?;
    let (response, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| upstream(Box::new(e)))?
        .to_bytes();
    shared.stats().forwarded += 1;
    Ok(Upstream {
        status: response.status,
        headers: response.headers,
        body,
    })
}

async fn forward_or_502(shared: &Shared, parts: &http::request::Parts, body: Bytes) -> Answer {
    match forward(shared, parts, body).await {
        Ok(upstream) => answer(upstream),
        Err(e) => {
            shared.stats().upstream_errors += 1;
            tracing::warn!(error = %e, source = ?std::error::Error::source(&e), "fault proxy: upstream unreachable");
            bad_gateway(parts.headers.get(header::CONTENT_TYPE).cloned())
        }
    }
}

fn answer(upstream: Upstream) -> Answer {
    let mut response = Response::new(Full::new(upstream.body));
    *response.status_mut() = upstream.status;
    for (name, value) in &upstream.headers {
        if !hop_by_hop(name) {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}

fn error_answer(status: u16, code: &str, content_type: Option<HeaderValue>) -> Answer {
    let mut response = Response::new(Full::new(Bytes::from(wire::error_body(
        code,
        "fault injected by the test proxy",
    ))));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        content_type.unwrap_or(HeaderValue::from_static("application/x-amz-json-1.0")),
    );
    if let Ok(code) = HeaderValue::from_str(code) {
        headers.insert("x-amzn-errortype", code);
    }
    response
}

fn bad_gateway(content_type: Option<HeaderValue>) -> Answer {
    error_answer(502, "BadGateway", content_type)
}
