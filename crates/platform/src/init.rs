//! Process initialisation shared by every function: logging and the AWS SDK configuration.

/// Installs lambda_runtime's tracing subscriber: JSON lines when `AWS_LAMBDA_LOG_FORMAT=JSON`
/// (the template sets it), level from `AWS_LAMBDA_LOG_LEVEL` / `RUST_LOG`.
pub fn tracing() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// Loads the SDK configuration once per process. Region and credentials come from Lambda's
/// environment variables (no IMDS or profile probing when they are present); the endpoint comes
/// from the SDK's standard `AWS_ENDPOINT_URL` handling, which is how the local stand-in is reached.
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
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
