//! A counting HTTP proxy in front of the stand-in: a function's `AWS_ENDPOINT_URL` points here,
//! every request is classified ([`crate::calls::classify`]) and forwarded unchanged (the SigV4
//! signature covers the `Host` header, which is kept), and the answer is passed back.
//!
//! Each incoming connection gets its own upstream connection, so the function's connection pool
//! behaves as it would against the real endpoint (one TCP connection per pooled connection).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::calls::{CallCounts, classify, mark_outcome};
use crate::error::BenchError;

type Upstream = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// A running proxy and its counters.
pub struct CountingProxy {
    addr: SocketAddr,
    counts: Arc<Mutex<CallCounts>>,
    server: JoinHandle<()>,
}

impl CountingProxy {
    /// Starts a proxy on a free loopback port, forwarding to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> Result<Self, BenchError> {
        let upstream = upstream
            .strip_prefix("http://")
            .unwrap_or(upstream)
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| BenchError::io("binding the proxy port", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| BenchError::io("reading the proxy port", e))?;
        let counts = Arc::new(Mutex::new(CallCounts::default()));
        let server = tokio::spawn(serve(listener, upstream, Arc::clone(&counts)));
        Ok(Self {
            addr,
            counts,
            server,
        })
    }

    /// `http://127.0.0.1:<port>`: the function's `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The calls counted so far.
    pub fn snapshot(&self) -> CallCounts {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve(listener: TcpListener, upstream: String, counts: Arc<Mutex<CallCounts>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let upstream = upstream.clone();
        let counts = Arc::clone(&counts);
        tokio::spawn(async move {
            // One upstream connection per downstream connection, opened on its first request.
            let sender: Arc<tokio::sync::Mutex<Option<Upstream>>> =
                Arc::new(tokio::sync::Mutex::new(None));
            let service = hyper::service::service_fn(move |request| {
                let upstream = upstream.clone();
                let counts = Arc::clone(&counts);
                let sender = Arc::clone(&sender);
                async move {
                    let response = forward(request, &upstream, &sender, &counts)
                        .await
                        .unwrap_or_else(|e| {
                            let mut response =
                                Response::new(Full::new(Bytes::from(format!("proxy: {e}"))));
                            *response.status_mut() = StatusCode::BAD_GATEWAY;
                            response
                        });
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn connect(upstream: &str) -> Result<Upstream, BenchError> {
    let stream = TcpStream::connect(upstream)
        .await
        .map_err(|e| BenchError::io(format!("connecting to the stand-in at {upstream}"), e))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| BenchError::http("handshake with the stand-in", e))?;
    tokio::spawn(connection);
    Ok(sender)
}

async fn forward(
    request: Request<Incoming>,
    upstream: &str,
    sender: &tokio::sync::Mutex<Option<Upstream>>,
    counts: &Mutex<CallCounts>,
) -> Result<Response<Full<Bytes>>, BenchError> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| BenchError::http("reading a request body", e))?
        .to_bytes();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok());
    let (key, mut tally) = classify(target, &body);

    let mut guard = sender.lock().await;
    let usable = match guard.as_mut() {
        Some(existing) => existing.ready().await.is_ok(),
        None => false,
    };
    if !usable {
        *guard = Some(connect(upstream).await?);
    }
    let Some(upstream_sender) = guard.as_mut() else {
        return Err(BenchError::http(
            "opening an upstream connection",
            "no connection after connecting",
        ));
    };
    let outgoing = Request::from_parts(parts, Full::new(body));
    let response = upstream_sender
        .send_request(outgoing)
        .await
        .map_err(|e| BenchError::http("forwarding to the stand-in", e))?;
    drop(guard);
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| BenchError::http("reading a stand-in response", e))?
        .to_bytes();
    mark_outcome(&mut tally, parts.status.as_u16(), &body);
    counts
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .record(key, tally);
    Ok(Response::from_parts(parts, Full::new(body)))
}
