//! `orders-api` Lambda: API Gateway HTTP API (payload 2.0) -> `orders::api::OrdersApi`.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use platform::http::{ApiRequest, ApiResponse};
use platform::init::WarmUp;

// One thread: an environment serves one event at a time on a share of a vCPU, and worker
// threads only add malloc arenas (peak RSS; see docs/performance.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let api =
        platform::init::function(orders::Config::from_env, orders::wire_api, WarmUp::DynamoDb)
            .await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<ApiGatewayV2httpRequest>| {
        let api = &api;
        async move {
            let remaining = platform::init::remaining_time(&event.context);
            let response = match ApiRequest::from_apigw(event.payload) {
                Ok(request) => api.handle(&request, Some(remaining)).await,
                Err(e) => ApiResponse::from(e),
            };
            Ok::<ApiGatewayV2httpResponse, Diagnostic>(response.into_apigw())
        }
    }))
    .await
}
