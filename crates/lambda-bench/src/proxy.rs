//! A counting HTTP proxy in front of the stand-in: a function's `AWS_ENDPOINT_URL` points here,
//! every request is classified ([`crate::calls::classify`]) and forwarded unchanged (the SigV4
//! signature covers the `Host` header, which is kept), and the answer is passed back.
//!
//! Connection headers are not passed on, so the function's connection pool behaves as against an
//! AWS endpoint: its connections stay open between calls (the proxy opens a new connection to the
//! stand-in for each call instead, since the stand-in closes every one after its answer).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
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
    accepted: Arc<AtomicU64>,
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
        let accepted = Arc::new(AtomicU64::new(0));
        let server = tokio::spawn(serve(
            listener,
            upstream,
            Arc::clone(&counts),
            Arc::clone(&accepted),
        ));
        Ok(Self {
            addr,
            counts,
            accepted,
            server,
        })
    }

    /// `http://127.0.0.1:<port>`: the function's `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connections the functions opened to the proxy so far (an SDK that keeps its connections
    /// open opens one per concurrent call, once).
    pub fn connections_accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
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

async fn serve(
    listener: TcpListener,
    upstream: String,
    counts: Arc<Mutex<CallCounts>>,
    accepted: Arc<AtomicU64>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        accepted.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let upstream = upstream.clone();
        let counts = Arc::clone(&counts);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let upstream = upstream.clone();
                let counts = Arc::clone(&counts);
                async move {
                    let response = forward(request, &upstream, &counts)
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

    let mut parts = parts;
    strip_hop_by_hop(&mut parts.headers);
    // A new upstream connection per call: the stand-in closes each one after its answer.
    let mut sender = connect(upstream).await?;
    let response = sender
        .send_request(Request::from_parts(parts, Full::new(body)))
        .await
        .map_err(|e| BenchError::http("forwarding to the stand-in", e))?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| BenchError::http("reading a stand-in response", e))?
        .to_bytes();
    mark_outcome(&mut tally, parts.status.as_u16(), &body);
    let mut parts = parts;
    strip_hop_by_hop(&mut parts.headers);
    counts
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .record(key, tally);
    Ok(Response::from_parts(parts, Full::new(body)))
}

/// Removes the headers that describe one connection rather than the message (RFC 9110 7.6.1).
/// The stand-in closes every connection after its answer (`Connection: close`); AWS endpoints
/// keep them open, so passing that header on would make the function reconnect for every call,
/// as it never does on Lambda.
fn strip_hop_by_hop(headers: &mut http::HeaderMap) {
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
    ] {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_headers_are_not_passed_on() {
        let mut headers = http::HeaderMap::new();
        headers.insert("connection", http::HeaderValue::from_static("close"));
        headers.insert("x-amz-crc32", http::HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut headers);
        assert!(headers.get("connection").is_none());
        assert!(headers.get("x-amz-crc32").is_some());
    }
}
