//! Any API Gateway HTTP API (2.0) event: converted and answered (never 5xx), or a 400 JSON
//! error (a body that is not valid base64).
#![no_main]

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use platform::http::{ApiRequest, ApiResponse};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<ApiGatewayV2httpRequest>(data) else {
        return;
    };
    match ApiRequest::from_apigw(event) {
        Ok(request) => {
            commerce_fuzz::check_request(&request);
        }
        Err(e) => {
            let response: ApiResponse = e.into();
            assert_eq!(response.status, 400);
            commerce_fuzz::check_error(&response);
        }
    }
});
