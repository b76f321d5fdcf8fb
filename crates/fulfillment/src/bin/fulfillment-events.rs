//! `fulfillment-events` Lambda: SQS batches (or a bare EventBridge event) -> picking and shipping.

use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let consumer =
        platform::init::function(fulfillment::Config::from_env, fulfillment::wire_events).await?;
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
