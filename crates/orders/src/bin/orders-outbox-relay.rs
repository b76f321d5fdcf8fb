//! `orders-outbox-relay` Lambda: the orders table's stream -> `OrderCreated` on the bus.

use lambda_runtime::{LambdaEvent, service_fn};
use platform::config::BusConfig;
use platform::init::WarmUp;

// One thread: an environment serves one event at a time on a share of a vCPU, and worker
// threads only add malloc arenas (peak RSS; see docs/performance.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let relay =
        platform::init::function(BusConfig::from_env, orders::wire_outbox_relay, WarmUp::Off)
            .await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let relay = &relay;
        async move {
            let remaining = platform::init::remaining_time(&event.context);
            relay
                .handle_payload(event.payload, Some(remaining))
                .await
                .map_err(|e| platform::init::diagnostic(e.error_type(), &e))
        }
    }))
    .await
}
