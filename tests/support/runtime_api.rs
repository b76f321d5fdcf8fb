//! A minimal Lambda Runtime API on loopback, enough to run a real function binary as Lambda
//! does: the binary polls `GET /2018-06-01/runtime/invocation/next`, gets an event with its
//! request id and deadline, and posts its response or error. Tests queue invocations and read
//! the answers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

/// One queued invocation.
struct Invocation {
    request_id: String,
    deadline_ms: u64,
    payload: Value,
}

/// What a function answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// `POST .../response`.
    Response(Value),
    /// `POST .../error` (or an init error).
    Error(Value),
}

struct State {
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    answers: Mutex<HashMap<String, Answer>>,
    answered: watch::Sender<u64>,
    /// Invocations handed out by `/next`.
    taken: watch::Sender<u64>,
}

/// The Runtime API server. Dropping it stops serving.
pub struct RuntimeApi {
    address: String,
    sender: mpsc::UnboundedSender<Invocation>,
    state: Arc<State>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeApi {
    /// Starts serving on a free loopback port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (sender, receiver) = mpsc::unbounded_channel();
        let state = Arc::new(State {
            queue: tokio::sync::Mutex::new(receiver),
            answers: Mutex::new(HashMap::new()),
            answered: watch::channel(0).0,
            taken: watch::channel(0).0,
        });
        let serving = Arc::clone(&state);
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = Arc::clone(&serving);
                tokio::spawn(async move {
                    let service = service_fn(move |request| handle(Arc::clone(&state), request));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            address,
            sender,
            state,
            server,
        }
    }

    /// `host:port`, what `AWS_LAMBDA_RUNTIME_API` is set to.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Queues an invocation of `payload` that must finish by `deadline_ms` (epoch ms); returns
    /// its request id.
    pub fn invoke(&self, payload: Value, deadline_ms: u64) -> String {
        let request_id = uuid::Uuid::new_v4().to_string();
        self.sender
            .send(Invocation {
                request_id: request_id.clone(),
                deadline_ms,
                payload,
            })
            .unwrap();
        request_id
    }

    /// Waits until the function has taken `n` invocations in total.
    pub async fn taken(&self, n: u64) {
        let mut changes = self.state.taken.subscribe();
        while *changes.borrow_and_update() < n {
            changes.changed().await.unwrap();
        }
    }

    /// Waits for the answer to `request_id`.
    pub async fn answer(&self, request_id: &str) -> Answer {
        let mut changes = self.state.answered.subscribe();
        loop {
            if let Some(answer) = self
                .state
                .answers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(request_id)
            {
                return answer.clone();
            }
            changes.changed().await.unwrap();
        }
    }
}

fn respond(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let answer = |answer: Answer, id: &str| {
        state
            .answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.to_owned(), answer);
        state.answered.send_modify(|n| *n += 1);
        respond(StatusCode::ACCEPTED, "{\"status\":\"OK\"}")
    };
    let json = || serde_json::from_slice(&body).unwrap_or(Value::Null);
    Ok(match (&parts.method, segments.as_slice()) {
        (&Method::GET, ["2018-06-01", "runtime", "invocation", "next"]) => {
            let next = state.queue.lock().await.recv().await;
            let Some(invocation) = next else {
                return Ok(respond(StatusCode::GONE, ""));
            };
            state.taken.send_modify(|n| *n += 1);
            let mut response = respond(StatusCode::OK, invocation.payload.to_string());
            let headers = response.headers_mut();
            let mut set = |name: &'static str, value: String| {
                headers.insert(name, value.parse().unwrap());
            };
            set("content-type", "application/json".into());
            set("lambda-runtime-aws-request-id", invocation.request_id);
            set(
                "lambda-runtime-deadline-ms",
                invocation.deadline_ms.to_string(),
            );
            set(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:fulfillment-events".into(),
            );
            set(
                "lambda-runtime-trace-id",
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0".into(),
            );
            response
        }
        (&Method::POST, ["2018-06-01", "runtime", "invocation", id, "response"]) => {
            answer(Answer::Response(json()), id)
        }
        (&Method::POST, ["2018-06-01", "runtime", "invocation", id, "error"]) => {
            answer(Answer::Error(json()), id)
        }
        (&Method::POST, ["2018-06-01", "runtime", "init", "error"]) => {
            answer(Answer::Error(json()), "init")
        }
        _ => respond(StatusCode::NOT_FOUND, ""),
    })
}
