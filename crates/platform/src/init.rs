//! Process initialisation shared by every function: logging and the AWS SDK configuration.

/// Installs lambda_runtime's tracing subscriber: JSON lines when `AWS_LAMBDA_LOG_FORMAT=JSON`
/// (the template sets it), level from `AWS_LAMBDA_LOG_LEVEL` / `RUST_LOG`.
pub fn tracing() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// SDK attempts per call: the first try plus two retries (standard mode: exponential backoff with
/// jitter, retrying throttling, 5xx and transient network errors). Three covers a throttling burst
/// on on-demand DynamoDB; beyond that the record is better retried by SQS (visibility timeout)
/// than by holding the invocation, whose claim would otherwise approach its in-progress expiry.
pub const SDK_MAX_ATTEMPTS: u32 = 3;

/// Timeouts for every SDK call, chosen against the 15 s function timeout: a connection that does
/// not open in 1 s is dead (same-region endpoints answer in single-digit ms); an attempt gets 2 s
/// (DynamoDB and EventBridge p99 is far below); a whole call including retries and backoff gets
/// 5 s, so one stuck dependency cannot eat the invocation and every record still gets an answer.
pub fn sdk_timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(1))
        .operation_attempt_timeout(std::time::Duration::from_secs(2))
        .operation_timeout(std::time::Duration::from_secs(5))
        .build()
}

/// Loads the SDK configuration once per process, with the retry and timeout policy above. Region
/// and credentials come from Lambda's environment variables (the provider chain reads them first,
/// so nothing is probed when they are present); the endpoint comes from the SDK's standard
/// `AWS_ENDPOINT_URL` handling, which is how the local stand-in is reached.
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(
            aws_config::retry::RetryConfig::standard().with_max_attempts(SDK_MAX_ATTEMPTS),
        )
        .timeout_config(sdk_timeouts())
        .load()
        .await
}

/// Remaining time of an invocation from its context deadline (epoch ms). A deadline in the past
/// is a real remaining time of zero, never "unknown".
pub fn remaining_time(context: &lambda_runtime::Context) -> std::time::Duration {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let deadline_ms = u128::from(context.deadline);
    std::time::Duration::from_millis(
        u64::try_from(deadline_ms.saturating_sub(now_ms)).unwrap_or(u64::MAX),
    )
}

/// The Lambda error answer for an error with a stable type string (the runtime would otherwise use
/// the Rust type name, which changes with refactors and means nothing to operators).
pub fn diagnostic(error_type: &str, error: &dyn std::fmt::Display) -> lambda_runtime::Diagnostic {
    lambda_runtime::Diagnostic {
        error_type: error_type.to_owned(),
        error_message: error.to_string(),
    }
}
