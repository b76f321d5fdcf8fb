//! Any bytes as the body of `POST /orders` and `POST /returns`: created, or a 4xx JSON error.
#![no_main]

use platform::http::ApiRequest;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for path in ["/orders", "/returns"] {
        let mut request = ApiRequest {
            method: "POST".into(),
            path: path.into(),
            body: data.to_vec(),
            ..ApiRequest::default()
        };
        request
            .headers
            .insert("idempotency-key".into(), format!("fuzz-{}", data.len()));
        commerce_fuzz::check_request(&request);
    }
});
