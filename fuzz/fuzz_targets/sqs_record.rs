//! Any SQS message body, to every consumer: no panic; what the contract refuses is a failure.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    commerce_fuzz::check_record(&String::from_utf8_lossy(data));
});
