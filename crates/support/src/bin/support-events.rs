//! `support-events` Lambda: SQS batches (or a bare EventBridge event) -> shipped-orders projection.

use lambda_runtime::{LambdaEvent, service_fn};
use platform::init::WarmUp;

// One thread: an environment serves one event at a time on a share of a vCPU, and worker
// threads only add malloc arenas (peak RSS; see docs/performance.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let consumer =
        platform::init::function(support::Config::from_env, support::wire_events, WarmUp::Off)
            .await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let consumer = &consumer;
        async move {
            let remaining = platform::init::remaining_time(&event.context);
            consumer
                .handle_payload(event.payload, Some(remaining))
                .await
                .map_err(|e| platform::init::diagnostic(e.error_type(), &e))
        }
    }))
    .await
}
