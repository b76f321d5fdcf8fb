//! A Lambda Runtime API emulator: the HTTP server a custom runtime talks to through
//! `AWS_LAMBDA_RUNTIME_API`, with the timestamps Lambda itself reports.
//!
//! It serves `GET /2018-06-01/runtime/invocation/next` (a long poll that hands out one queued
//! invocation with Lambda's headers), `POST .../invocation/{id}/response`, `POST
//! .../invocation/{id}/error` and `POST .../init/error`. It records the instant of the first
//! `/next` poll (the end of init) and, per invocation, the time from handing the event out to
//! receiving the answer (Lambda's duration).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::error::BenchError;

const NEXT: &str = "/2018-06-01/runtime/invocation/next";
const INVOCATION_PREFIX: &str = "/2018-06-01/runtime/invocation/";
const INIT_ERROR: &str = "/2018-06-01/runtime/init/error";

/// How the function answered one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `POST .../response`: the handler's result.
    Response(Bytes),
    /// `POST .../error`: the runtime's error report, with its `Lambda-Runtime-Function-Error-Type`.
    Error {
        /// The error type header, when sent.
        error_type: Option<String>,
        /// The error body (JSON with `errorType` and `errorMessage`).
        body: Bytes,
    },
}

impl Answer {
    /// The response body as JSON; `None` for an error or a non-JSON body.
    pub fn json(&self) -> Option<serde_json::Value> {
        match self {
            Self::Response(body) => serde_json::from_slice(body).ok(),
            Self::Error { .. } => None,
        }
    }

    /// A short printable form, for error messages.
    pub fn describe(&self) -> String {
        let (kind, body) = match self {
            Self::Response(body) => ("response", body),
            Self::Error { body, .. } => ("error", body),
        };
        let text = String::from_utf8_lossy(body);
        let cut: String = text.chars().take(400).collect();
        format!("{kind}: {cut}")
    }
}

/// One served invocation.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The request id handed to the function.
    pub request_id: String,
    /// Its answer.
    pub answer: Answer,
    /// From handing the event out (the `/next` response) to receiving the answer.
    pub duration: Duration,
}

/// What the emulator saw of the function's init.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum InitState {
    #[default]
    Initialising,
    /// The first `/next` poll arrived at this instant.
    Polled(Instant),
    /// The runtime posted an init error (body).
    Failed(String),
}

struct Queued {
    payload: Bytes,
    reply: oneshot::Sender<(Answer, Duration)>,
    request_id: String,
}

struct InFlight {
    reply: oneshot::Sender<(Answer, Duration)>,
    handed_out: Instant,
}

struct Shared {
    function_arn: String,
    timeout: Duration,
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Queued>>,
    in_flight: Mutex<HashMap<String, InFlight>>,
    init: watch::Sender<InitState>,
}

/// A running Runtime API emulator for one function instance (one execution environment).
pub struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    queue: mpsc::UnboundedSender<Queued>,
    next_id: AtomicU64,
    server: JoinHandle<()>,
}

impl RuntimeApi {
    /// Starts the emulator on a free loopback port. `function_name` makes the invoked function
    /// ARN; `timeout` sets each invocation's deadline header (the function's configured timeout).
    pub async fn start(function_name: &str, timeout: Duration) -> Result<Self, BenchError> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| BenchError::io("binding the Runtime API port", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| BenchError::io("reading the Runtime API port", e))?;
        let (queue, receiver) = mpsc::unbounded_channel();
        let (init, _) = watch::channel(InitState::default());
        let shared = Arc::new(Shared {
            function_arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{function_name}"),
            timeout,
            queue: tokio::sync::Mutex::new(receiver),
            in_flight: Mutex::new(HashMap::new()),
            init,
        });
        let server = tokio::spawn(serve(listener, Arc::clone(&shared)));
        Ok(Self {
            addr,
            shared,
            queue,
            next_id: AtomicU64::new(1),
            server,
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Waits for the end of init: the instant of the first `/next` poll. Fails on an init error
    /// report, or when `give_up` resolves first (the process exited, or a timeout).
    pub async fn first_poll<F>(&self, give_up: F) -> Result<Instant, InitOutcome>
    where
        F: std::future::Future<Output = InitOutcome>,
    {
        let mut watcher = self.shared.init.subscribe();
        let wait = async {
            loop {
                match &*watcher.borrow_and_update() {
                    InitState::Polled(at) => return Ok(*at),
                    InitState::Failed(body) => return Err(InitOutcome::Reported(body.clone())),
                    InitState::Initialising => {}
                }
                if watcher.changed().await.is_err() {
                    return Err(InitOutcome::Exited(
                        "the emulator stopped before init ended".to_owned(),
                    ));
                }
            }
        };
        tokio::select! {
            result = wait => result,
            outcome = give_up => Err(outcome),
        }
    }

    /// Queues `payload` for the function and waits for its answer.
    pub async fn invoke(&self, payload: Bytes) -> Result<Invocation, InvokeFailure> {
        let request_id = format!(
            "00000000-0000-4000-8000-{:012x}",
            self.next_id.fetch_add(1, Ordering::Relaxed)
        );
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Queued {
                payload,
                reply,
                request_id: request_id.clone(),
            })
            .map_err(|_| InvokeFailure {
                request_id: request_id.clone(),
                problem: "the emulator is stopped".to_owned(),
            })?;
        // The duration is measured by the server side (event handed out -> answer arrived), so
        // this task's scheduling does not count.
        match tokio::time::timeout(self.shared.timeout + Duration::from_secs(5), answer).await {
            Ok(Ok((answer, duration))) => Ok(Invocation {
                request_id,
                answer,
                duration,
            }),
            Ok(Err(_)) => Err(InvokeFailure {
                request_id,
                problem: "the function's connection closed without an answer".to_owned(),
            }),
            Err(_) => Err(InvokeFailure {
                request_id,
                problem: format!("no answer within {:?}", self.shared.timeout),
            }),
        }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Why init did not end with a `/next` poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitOutcome {
    /// The runtime posted to `/runtime/init/error` (body).
    Reported(String),
    /// The process exited, or the caller gave up (why).
    Exited(String),
}

/// An invocation without an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokeFailure {
    /// The emulator's request id.
    pub request_id: String,
    /// What happened.
    pub problem: String,
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, Infallible>(route(&shared, request).await) }
            });
            // A connection error only ends that connection (the function exiting, typically).
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}

async fn route(shared: &Shared, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    if method == Method::GET && path == NEXT {
        return next(shared).await;
    }
    if method != Method::POST {
        return text(StatusCode::NOT_FOUND, "unknown route");
    }
    let error_type = request
        .headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return text(StatusCode::BAD_REQUEST, "unreadable body"),
    };
    if path == INIT_ERROR {
        shared.init.send_replace(InitState::Failed(
            String::from_utf8_lossy(&body).into_owned(),
        ));
        return text(StatusCode::ACCEPTED, "{\"status\":\"OK\"}");
    }
    let Some(rest) = path.strip_prefix(INVOCATION_PREFIX) else {
        return text(StatusCode::NOT_FOUND, "unknown route");
    };
    let answer = if let Some(id) = rest.strip_suffix("/response") {
        (id, Answer::Response(body))
    } else if let Some(id) = rest.strip_suffix("/error") {
        (id, Answer::Error { error_type, body })
    } else {
        return text(StatusCode::NOT_FOUND, "unknown route");
    };
    let arrived = Instant::now();
    let in_flight = shared
        .in_flight
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(answer.0);
    match in_flight {
        Some(in_flight) => {
            let duration = arrived.saturating_duration_since(in_flight.handed_out);
            let _ = in_flight.reply.send((answer.1, duration));
            text(StatusCode::ACCEPTED, "{\"status\":\"OK\"}")
        }
        None => text(StatusCode::BAD_REQUEST, "unknown or answered request id"),
    }
}

async fn next(shared: &Shared) -> Response<Full<Bytes>> {
    shared.init.send_if_modified(|state| {
        if *state == InitState::Initialising {
            *state = InitState::Polled(Instant::now());
            true
        } else {
            false
        }
    });
    let queued = {
        let mut queue = shared.queue.lock().await;
        queue.recv().await
    };
    let Some(queued) = queued else {
        return text(StatusCode::GONE, "the emulator is stopping");
    };
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_add(shared.timeout)
        .as_millis();
    let mut response = Response::new(Full::new(queued.payload));
    let headers = response.headers_mut();
    let pairs = [
        ("lambda-runtime-aws-request-id", queued.request_id.clone()),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            shared.function_arn.clone(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0".to_owned(),
        ),
        ("content-type", "application/json".to_owned()),
    ];
    for (name, value) in pairs {
        if let Ok(value) = http::HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    shared
        .in_flight
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(
            queued.request_id,
            InFlight {
                reply: queued.reply,
                handed_out: Instant::now(),
            },
        );
    response
}
