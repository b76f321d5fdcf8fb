//! Serving the HTTP APIs on loopback, as API Gateway's HTTP API would: the template's routes,
//! lower-case header names, a request id, API Gateway's own 404 and 413 answers.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use platform::http::{ApiRequest, ApiResponse};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::runner::Runner;

/// Largest request body API Gateway accepts (10 MB); larger ones get its 413.
pub const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;

fn respond(response: ApiResponse) -> Response<Full<Bytes>> {
    let mut builder = Response::builder()
        .status(response.status)
        .header(http::header::CONTENT_TYPE, "application/json");
    for (name, value) in &response.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder
        .body(Full::new(Bytes::from(response.body)))
        // Only a header our own handlers set could be invalid; answer 500 rather than panic.
        .unwrap_or_else(|_| {
            let mut fallback = Response::new(Full::new(Bytes::from_static(
                b"{\"message\":\"Internal Server Error\"}",
            )));
            *fallback.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            fallback
        })
}

/// Converts a hyper request into the functions' plain request (what API Gateway's payload 2.0
/// carries): upper-case method, raw path, lower-case header names, body, a fresh request id.
pub async fn to_api_request(request: Request<Incoming>) -> Result<ApiRequest, ApiResponse> {
    let (parts, body) = request.into_parts();
    let body = Limited::new(body, MAX_REQUEST_BYTES)
        .collect()
        .await
        .map_err(|_| {
            ApiResponse::json(
                413,
                &serde_json::json!({ "message": "Request Entity Too Large" }),
            )
        })?
        .to_bytes();
    let headers = parts
        .headers
        .iter()
        .filter_map(|(name, value)| {
            Some((
                name.as_str().to_ascii_lowercase(),
                value.to_str().ok()?.to_owned(),
            ))
        })
        .collect();
    Ok(ApiRequest {
        method: parts.method.as_str().to_ascii_uppercase(),
        path: parts.uri.path().to_owned(),
        headers,
        body: body.to_vec(),
        request_id: Some(uuid::Uuid::new_v4().to_string()),
        identity: None,
    })
}

async fn handle(runner: Arc<Runner>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    match to_api_request(request).await {
        Ok(request) => respond(runner.request(&request).await),
        Err(refusal) => respond(refusal),
    }
}

/// Serves the runner's HTTP routes on `listener` until `shutdown` completes, then stops
/// accepting, lets open connections finish their current request, and returns.
pub async fn serve(runner: Arc<Runner>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let (stop, stopped) = watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            // Shutdown first: its first poll installs the Ctrl-C handler, which must happen
            // before the first request is answered (a client that interrupts the server right
            // after its answer would otherwise kill it instead of stopping it).
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // A failed accept (e.g. too many open files) concerns that one connection.
                    continue;
                };
                while connections.try_join_next().is_some() {}
                let runner = Arc::clone(&runner);
                let mut stopped = stopped.clone();
                connections.spawn(async move {
                    let service = service_fn(move |request| {
                        let runner = Arc::clone(&runner);
                        async move { Ok::<_, Infallible>(handle(runner, request).await) }
                    });
                    let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                    tokio::pin!(connection);
                    tokio::select! {
                        _ = connection.as_mut() => {}
                        _ = stopped.changed() => {
                            connection.as_mut().graceful_shutdown();
                            let _ = connection.await;
                        }
                    }
                });
            }
        }
    }
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
}
