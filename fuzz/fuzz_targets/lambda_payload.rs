//! Any JSON payload a Lambda consumer could be invoked with (SQS batch, EventBridge event or
//! anything else): an answer or a typed error, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(payload) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    for consumer in &commerce_fuzz::functions().consumers {
        if let Ok(answer) = commerce_fuzz::block_on(consumer.handle_payload(payload.clone(), None))
        {
            assert!(!answer.to_string().contains("Panicked"), "{answer}");
        }
    }
});
