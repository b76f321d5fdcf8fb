//! Process initialisation shared by every function: logging, the AWS SDK configuration, and the
//! timing of each init phase.
//!
//! [`function`] is a binary's whole init: tracing, configuration, SDK configuration and clients,
//! each phase timed and logged once as an `init complete` line (`started_at_us` and one `*_us`
//! field per phase), so a cold start's breakdown shows in the function's own logs and
//! `crates/lambda-bench` can place it between exec and the first `/next` poll.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::{ConfigError, Env};

/// Installs the tracing subscriber lambda_runtime's `init_default_subscriber` would, in the same
/// format (JSON lines without time or target when `AWS_LAMBDA_LOG_FORMAT=JSON`, which the
/// template sets, with the span list but without repeating the current span; text otherwise),
/// with the level from `AWS_LAMBDA_LOG_LEVEL` (Lambda's log-level control), else `RUST_LOG`,
/// else INFO.
///
/// The filter is [`tracing_subscriber::filter::Targets`] rather than `EnvFilter`: it reads the
/// same `level` and `target=level,...` directives, but not `EnvFilter`'s span and field-value
/// matching, whose regex engine was 180 KB of every binary.
pub fn tracing() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let filter = log_filter(
        std::env::var("AWS_LAMBDA_LOG_LEVEL")
            .or_else(|_| std::env::var("RUST_LOG"))
            .ok()
            .as_deref(),
    );
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let format = tracing_subscriber::fmt::layer()
        .with_target(false)
        .without_time()
        .with_writer(std::io::stdout);
    let registry = tracing_subscriber::registry().with(filter);
    // A second install (a test, a host process) keeps the first subscriber: not an error.
    let _ = if json {
        // The span list already ends with the current span: printing it again as `span` only
        // doubled the span fields of every line (a third of the log bytes, which CloudWatch
        // bills per GB ingested).
        registry
            .with(format.json().with_current_span(false))
            .try_init()
    } else {
        registry.with(format).try_init()
    };
}

/// The log filter for a level or `target=level` directives; INFO when unset or unreadable.
/// Lambda's `FATAL` (which tracing lacks) means ERROR.
fn log_filter(directives: Option<&str>) -> tracing_subscriber::filter::Targets {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    let info = || Targets::new().with_default(LevelFilter::INFO);
    let Some(directives) = directives.map(str::trim).filter(|d| !d.is_empty()) else {
        return info();
    };
    if directives.eq_ignore_ascii_case("fatal") {
        return Targets::new().with_default(LevelFilter::ERROR);
    }
    if let Ok(level) = directives.parse::<LevelFilter>() {
        return Targets::new().with_default(level);
    }
    directives.parse::<Targets>().unwrap_or_else(|_| info())
}

/// SDK attempts per call: the first try plus two retries (standard mode: exponential backoff with
/// jitter, retrying throttling, 5xx and transient network errors). Three covers a throttling burst
/// on on-demand DynamoDB; beyond that the record is better retried by SQS (visibility timeout)
/// than by holding the invocation, whose claim would otherwise approach its in-progress expiry.
pub const SDK_MAX_ATTEMPTS: u32 = 3;

/// Timeouts for every SDK call, chosen against the 15 s function timeout: a connection that does
/// not open in 1 s is dead (same-region endpoints answer in single-digit ms); an attempt gets 2 s
/// (DynamoDB and EventBridge p99 is far below); a whole call including retries and backoff gets
/// 5 s. These bound one call; an invocation makes several (and the publisher re-sends), so what
/// keeps the whole invocation inside its timeout is its time budget ([`crate::budget`]), which
/// cancels the calls still running when it ends.
pub fn sdk_timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(1))
        .operation_attempt_timeout(std::time::Duration::from_secs(2))
        .operation_timeout(std::time::Duration::from_secs(5))
        .build()
}

/// aws-config's loader with the product's HTTP client (rustls with ring, trusting the OS trust
/// store) and the retry and timeout policy above: what every process that is not a Lambda
/// function (the local runner, tests, tools) starts from. The SDK crates are built without
/// their default HTTP client (one TLS stack in every binary), so a configuration loaded
/// without this one would have no client at all.
pub fn loader() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http_client(true))
        .retry_config(
            aws_config::retry::RetryConfig::standard().with_max_attempts(SDK_MAX_ATTEMPTS),
        )
        .timeout_config(sdk_timeouts())
}

/// Loads the SDK configuration with the SDK's default chains (environment, profile files, SSO,
/// IMDS, ...) and the retry and timeout policy above: for processes that are not Lambda
/// functions, such as the local runner. Lambda functions use [`lambda_sdk_config`] (through
/// [`function`]).
pub async fn aws_config() -> aws_config::SdkConfig {
    loader().load().await
}

/// The SDK configuration of a Lambda function, from Lambda's environment variables alone, with
/// the retry and timeout policy above:
///
/// - region from `AWS_REGION` (else `AWS_DEFAULT_REGION`), credentials from `AWS_ACCESS_KEY_ID`
///   / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, which Lambda always sets (as do
///   `sam local invoke` and the README's `cargo lambda watch` setup);
/// - the endpoint from `AWS_ENDPOINT_URL` when set (how the local stand-in is reached), and
///   `AWS_USE_FIPS_ENDPOINT` / `AWS_USE_DUALSTACK_ENDPOINT`, as the SDK reads them;
/// - one HTTP client shared by every client built from it, trusting the Amazon Trust Services
///   roots that AWS endpoints chain to ([`AMAZON_TRUST_SERVICES_ROOTS`]), or the OS trust store
///   when `SSL_CERT_FILE` or `SSL_CERT_DIR` is set (an endpoint with another CA).
///
/// Why not aws-config's loader: its chains end with the same region and credentials on Lambda,
/// but building them costs init time (the IMDS, ECS and STS providers, and an HTTP client that
/// reads and parses every certificate of the OS trust store: 3 ms of a 7 ms init on the bench
/// machine), and linking them costs 0.85 MB of every binary. Not supported here, because Lambda
/// does not use them: profile files, SSO, IMDS, web identity, `credential_process`, and the
/// per-service `AWS_ENDPOINT_URL_<SERVICE>` variables.
pub fn lambda_sdk_config<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> aws_config::SdkConfig {
    let non_empty = |name: &'static str| {
        env.parsed_or(name, String::new())
            .ok()
            .filter(|v| !v.trim().is_empty())
    };
    let region = non_empty("AWS_REGION")
        .or_else(|| non_empty("AWS_DEFAULT_REGION"))
        .unwrap_or_default();
    let flag = |name: &'static str| non_empty(name).map(|v| v.trim().eq_ignore_ascii_case("true"));
    let os_trust_store =
        non_empty("SSL_CERT_FILE").is_some() || non_empty("SSL_CERT_DIR").is_some();
    let mut builder = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region))
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        ))
        .http_client(http_client(os_trust_store))
        .retry_config(
            aws_config::retry::RetryConfig::standard().with_max_attempts(SDK_MAX_ATTEMPTS),
        )
        .timeout_config(sdk_timeouts());
    builder.set_endpoint_url(non_empty("AWS_ENDPOINT_URL"));
    builder.set_use_fips(flag("AWS_USE_FIPS_ENDPOINT"));
    builder.set_use_dual_stack(flag("AWS_USE_DUALSTACK_ENDPOINT"));
    builder.build()
}

/// The HTTP client of every SDK configuration: rustls with ring as its crypto provider (the
/// SDK's default would be aws-lc, 0.9 MB more per binary for nothing AWS endpoints need),
/// trusting [`AMAZON_TRUST_SERVICES_ROOTS`], or the OS trust store when asked (Lambda: when
/// `SSL_CERT_FILE` / `SSL_CERT_DIR` are set). Plain `http://` endpoints (a stand-in on loopback)
/// work too. Unlike the SDK's default client it ignores `HTTPS_PROXY`: Lambda sets none.
pub fn http_client(os_trust_store: bool) -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
    let trust_store = if os_trust_store {
        TrustStore::default()
    } else {
        TrustStore::empty().with_pem_certificate(AMAZON_TRUST_SERVICES_ROOTS.as_bytes())
    };
    let builder = aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(
        tls::rustls_provider::CryptoMode::Ring,
    ));
    // Building a TLS context cannot fail today; if it ever does, the OS trust store still works.
    match TlsContext::builder().with_trust_store(trust_store).build() {
        Ok(context) => builder.tls_context(context).build_https(),
        Err(_) => builder.build_https(),
    }
}

/// The root certificates of Amazon Trust Services, which issues the certificates of AWS service
/// endpoints: Amazon Root CA 1-4 and Starfield Services Root CA - G2 (which cross-signs
/// Amazon Root CA 1 for older chains). SHA-256 fingerprints, in order:
/// `8ECDE688…AE98196E`, `1BA5B2AA…1EA46DB4`, `18CE6CFE…B46DB3A4`, `E35D2841…25897092`,
/// `568D6905…3EDAB5`.
pub const AMAZON_TRUST_SERVICES_ROOTS: &str = "\
-----BEGIN CERTIFICATE-----
MIIDQTCCAimgAwIBAgITBmyfz5m/jAo54vB4ikPmljZbyjANBgkqhkiG9w0BAQsF
ADA5MQswCQYDVQQGEwJVUzEPMA0GA1UEChMGQW1hem9uMRkwFwYDVQQDExBBbWF6
b24gUm9vdCBDQSAxMB4XDTE1MDUyNjAwMDAwMFoXDTM4MDExNzAwMDAwMFowOTEL
MAkGA1UEBhMCVVMxDzANBgNVBAoTBkFtYXpvbjEZMBcGA1UEAxMQQW1hem9uIFJv
b3QgQ0EgMTCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBALJ4gHHKeNXj
ca9HgFB0fW7Y14h29Jlo91ghYPl0hAEvrAIthtOgQ3pOsqTQNroBvo3bSMgHFzZM
9O6II8c+6zf1tRn4SWiw3te5djgdYZ6k/oI2peVKVuRF4fn9tBb6dNqcmzU5L/qw
IFAGbHrQgLKm+a/sRxmPUDgH3KKHOVj4utWp+UhnMJbulHheb4mjUcAwhmahRWa6
VOujw5H5SNz/0egwLX0tdHA114gk957EWW67c4cX8jJGKLhD+rcdqsq08p8kDi1L
93FcXmn/6pUCyziKrlA4b9v7LWIbxcceVOF34GfID5yHI9Y/QCB/IIDEgEw+OyQm
jgSubJrIqg0CAwEAAaNCMEAwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMC
AYYwHQYDVR0OBBYEFIQYzIU07LwMlJQuCFmcx7IQTgoIMA0GCSqGSIb3DQEBCwUA
A4IBAQCY8jdaQZChGsV2USggNiMOruYou6r4lK5IpDB/G/wkjUu0yKGX9rbxenDI
U5PMCCjjmCXPI6T53iHTfIUJrU6adTrCC2qJeHZERxhlbI1Bjjt/msv0tadQ1wUs
N+gDS63pYaACbvXy8MWy7Vu33PqUXHeeE6V/Uq2V8viTO96LXFvKWlJbYK8U90vv
o/ufQJVtMVT8QtPHRh8jrdkPSHCa2XV4cdFyQzR1bldZwgJcJmApzyMZFo6IQ6XU
5MsI+yMRQ+hDKXJioaldXgjUkK642M4UwtBV8ob2xJNDd2ZhwLnoQdeXeGADbkpy
rqXRfboQnoZsG4q5WTP468SQvvG5
-----END CERTIFICATE-----
-----BEGIN CERTIFICATE-----
MIIFQTCCAymgAwIBAgITBmyf0pY1hp8KD+WGePhbJruKNzANBgkqhkiG9w0BAQwF
ADA5MQswCQYDVQQGEwJVUzEPMA0GA1UEChMGQW1hem9uMRkwFwYDVQQDExBBbWF6
b24gUm9vdCBDQSAyMB4XDTE1MDUyNjAwMDAwMFoXDTQwMDUyNjAwMDAwMFowOTEL
MAkGA1UEBhMCVVMxDzANBgNVBAoTBkFtYXpvbjEZMBcGA1UEAxMQQW1hem9uIFJv
b3QgQ0EgMjCCAiIwDQYJKoZIhvcNAQEBBQADggIPADCCAgoCggIBAK2Wny2cSkxK
gXlRmeyKy2tgURO8TW0G/LAIjd0ZEGrHJgw12MBvIITplLGbhQPDW9tK6Mj4kHbZ
W0/jTOgGNk3Mmqw9DJArktQGGWCsN0R5hYGCrVo34A3MnaZMUnbqQ523BNFQ9lXg
1dKmSYXpN+nKfq5clU1Imj+uIFptiJXZNLhSGkOQsL9sBbm2eLfq0OQ6PBJTYv9K
8nu+NQWpEjTj82R0Yiw9AElaKP4yRLuH3WUnAnE72kr3H9rN9yFVkE8P7K6C4Z9r
2UXTu/Bfh+08LDmG2j/e7HJV63mjrdvdfLC6HM783k81ds8P+HgfajZRRidhW+me
z/CiVX18JYpvL7TFz4QuK/0NURBs+18bvBt+xa47mAExkv8LV/SasrlX6avvDXbR
8O70zoan4G7ptGmh32n2M8ZpLpcTnqWHsFcQgTfJU7O7f/aS0ZzQGPSSbtqDT6Zj
mUyl+17vIWR6IF9sZIUVyzfpYgwLKhbcAS4y2j5L9Z469hdAlO+ekQiG+r5jqFoz
7Mt0Q5X5bGlSNscpb/xVA1wf+5+9R+vnSUeVC06JIglJ4PVhHvG/LopyboBZ/1c6
+XUyo05f7O0oYtlNc/LMgRdg7c3r3NunysV+Ar3yVAhU/bQtCSwXVEqY0VThUWcI
0u1ufm8/0i2BWSlmy5A5lREedCf+3euvAgMBAAGjQjBAMA8GA1UdEwEB/wQFMAMB
Af8wDgYDVR0PAQH/BAQDAgGGMB0GA1UdDgQWBBSwDPBMMPQFWAJI/TPlUq9LhONm
UjANBgkqhkiG9w0BAQwFAAOCAgEAqqiAjw54o+Ci1M3m9Zh6O+oAA7CXDpO8Wqj2
LIxyh6mx/H9z/WNxeKWHWc8w4Q0QshNabYL1auaAn6AFC2jkR2vHat+2/XcycuUY
+gn0oJMsXdKMdYV2ZZAMA3m3MSNjrXiDCYZohMr/+c8mmpJ5581LxedhpxfL86kS
k5Nrp+gvU5LEYFiwzAJRGFuFjWJZY7attN6a+yb3ACfAXVU3dJnJUH/jWS5E4ywl
7uxMMne0nxrpS10gxdr9HIcWxkPo1LsmmkVwXqkLN1PiRnsn/eBG8om3zEK2yygm
btmlyTrIQRNg91CMFa6ybRoVGld45pIq2WWQgj9sAq+uEjonljYE1x2igGOpm/Hl
urR8FLBOybEfdF849lHqm/osohHUqS0nGkWxr7JOcQ3AWEbWaQbLU8uz/mtBzUF+
fUwPfHJ5elnNXkoOrJupmHN5fLT0zLm4BwyydFy4x2+IoZCn9Kr5v2c69BoVYh63
n749sSmvZ6ES8lgQGVMDMBu4Gon2nL2XA46jCfMdiyHxtN/kHNGfZQIG6lzWE7OE
76KlXIx3KadowGuuQNKotOrN8I1LOJwZmhsoVLiJkO/KdYE+HvJkJMcYr07/R54H
9jVlpNMKVv/1F2Rs76giJUmTtt8AF9pYfl3uxRuw0dFfIRDH+fO6AgonB8Xx1sfT
4PsJYGw=
-----END CERTIFICATE-----
-----BEGIN CERTIFICATE-----
MIIBtjCCAVugAwIBAgITBmyf1XSXNmY/Owua2eiedgPySjAKBggqhkjOPQQDAjA5
MQswCQYDVQQGEwJVUzEPMA0GA1UEChMGQW1hem9uMRkwFwYDVQQDExBBbWF6b24g
Um9vdCBDQSAzMB4XDTE1MDUyNjAwMDAwMFoXDTQwMDUyNjAwMDAwMFowOTELMAkG
A1UEBhMCVVMxDzANBgNVBAoTBkFtYXpvbjEZMBcGA1UEAxMQQW1hem9uIFJvb3Qg
Q0EgMzBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABCmXp8ZBf8ANm+gBG1bG8lKl
ui2yEujSLtf6ycXYqm0fc4E7O5hrOXwzpcVOho6AF2hiRVd9RFgdszflZwjrZt6j
QjBAMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgGGMB0GA1UdDgQWBBSr
ttvXBp43rDCGB5Fwx5zEGbF4wDAKBggqhkjOPQQDAgNJADBGAiEA4IWSoxe3jfkr
BqWTrBqYaGFy+uGh0PsceGCmQ5nFuMQCIQCcAu/xlJyzlvnrxir4tiz+OpAUFteM
YyRIHN8wfdVoOw==
-----END CERTIFICATE-----
-----BEGIN CERTIFICATE-----
MIIB8jCCAXigAwIBAgITBmyf18G7EEwpQ+Vxe3ssyBrBDjAKBggqhkjOPQQDAzA5
MQswCQYDVQQGEwJVUzEPMA0GA1UEChMGQW1hem9uMRkwFwYDVQQDExBBbWF6b24g
Um9vdCBDQSA0MB4XDTE1MDUyNjAwMDAwMFoXDTQwMDUyNjAwMDAwMFowOTELMAkG
A1UEBhMCVVMxDzANBgNVBAoTBkFtYXpvbjEZMBcGA1UEAxMQQW1hem9uIFJvb3Qg
Q0EgNDB2MBAGByqGSM49AgEGBSuBBAAiA2IABNKrijdPo1MN/sGKe0uoe0ZLY7Bi
9i0b2whxIdIA6GO9mif78DluXeo9pcmBqqNbIJhFXRbb/egQbeOc4OO9X4Ri83Bk
M6DLJC9wuoihKqB1+IGuYgbEgds5bimwHvouXKNCMEAwDwYDVR0TAQH/BAUwAwEB
/zAOBgNVHQ8BAf8EBAMCAYYwHQYDVR0OBBYEFNPsxzplbszh2naaVvuc84ZtV+WB
MAoGCCqGSM49BAMDA2gAMGUCMDqLIfG9fhGt0O9Yli/W651+kI0rz2ZVwyzjKKlw
CkcO8DdZEv8tmZQoTipPNU0zWgIxAOp1AE47xDqUEpHJWEadIRNyp4iciuRMStuW
1KyLa2tJElMzrdfkviT8tQp21KW8EA==
-----END CERTIFICATE-----
-----BEGIN CERTIFICATE-----
MIID7zCCAtegAwIBAgIBADANBgkqhkiG9w0BAQsFADCBmDELMAkGA1UEBhMCVVMx
EDAOBgNVBAgTB0FyaXpvbmExEzARBgNVBAcTClNjb3R0c2RhbGUxJTAjBgNVBAoT
HFN0YXJmaWVsZCBUZWNobm9sb2dpZXMsIEluYy4xOzA5BgNVBAMTMlN0YXJmaWVs
ZCBTZXJ2aWNlcyBSb290IENlcnRpZmljYXRlIEF1dGhvcml0eSAtIEcyMB4XDTA5
MDkwMTAwMDAwMFoXDTM3MTIzMTIzNTk1OVowgZgxCzAJBgNVBAYTAlVTMRAwDgYD
VQQIEwdBcml6b25hMRMwEQYDVQQHEwpTY290dHNkYWxlMSUwIwYDVQQKExxTdGFy
ZmllbGQgVGVjaG5vbG9naWVzLCBJbmMuMTswOQYDVQQDEzJTdGFyZmllbGQgU2Vy
dmljZXMgUm9vdCBDZXJ0aWZpY2F0ZSBBdXRob3JpdHkgLSBHMjCCASIwDQYJKoZI
hvcNAQEBBQADggEPADCCAQoCggEBANUMOsQq+U7i9b4Zl1+OiFOxHz/Lz58gE20p
OsgPfTz3a3Y4Y9k2YKibXlwAgLIvWX/2h/klQ4bnaRtSmpDhcePYLQ1Ob/bISdm2
8xpWriu2dBTrz/sm4xq6HZYuajtYlIlHVv8loJNwU4PahHQUw2eeBGg6345AWh1K
Ts9DkTvnVtYAcMtS7nt9rjrnvDH5RfbCYM8TWQIrgMw0R9+53pBlbQLPLJGmpufe
hRhJfGZOozptqbXuNC66DQO4M99H67FrjSXZm86B0UVGMpZwh94CDklDhbZsc7tk
6mFBrMnUVN+HL8cisibMn1lUaJ/8viovxFUcdUBgF4UCVTmLfwUCAwEAAaNCMEAw
DwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAQYwHQYDVR0OBBYEFJxfAN+q
AdcwKziIorhtSpzyEZGDMA0GCSqGSIb3DQEBCwUAA4IBAQBLNqaEd2ndOxmfZyMI
bw5hyf2E3F/YNoHN2BtBLZ9g3ccaaNnRbobhiCPPE95Dz+I0swSdHynVv/heyNXB
ve6SbzJ08pGCL72CQnqtKrcgfU28elUSwhXqvfdqlS5sdJ/PHLTyxQGjhdByPq1z
qwubdQxtRbeOlKyWN7Wg0I8VRw7j6IPdj/3vQQF3zCepYoUz8jcI73HPdwbeyBkd
iEDPfUYd/x7H4c7/I9vG+o1VTqkC50cRRj70/b17KSa7qWFiNyi2LSr2EIZkyXCn
0q23KXB56jzaYyWf/Wi3MOxw+3WKt21gZ7IeyLnp2KhvAotnDU0mV3HaIPzBSlCN
sSi6
-----END CERTIFICATE-----
";

/// Timing of a function's init, phase by phase.
#[derive(Debug)]
pub struct InitTimer {
    started_at_us: u64,
    last: Instant,
    phases: Vec<(&'static str, Duration)>,
}

impl InitTimer {
    /// Starts timing now (call first thing in `main`).
    pub fn start() -> Self {
        let started_at_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .unwrap_or_default();
        Self {
            started_at_us,
            last: Instant::now(),
            phases: Vec::new(),
        }
    }

    /// Ends the current phase, naming it.
    pub fn phase(&mut self, name: &'static str) {
        let now = Instant::now();
        self.phases.push((name, now.duration_since(self.last)));
        self.last = now;
    }

    /// The phases so far, in order.
    pub fn phases(&self) -> &[(&'static str, Duration)] {
        &self.phases
    }

    /// Logs the breakdown once, at INFO (one line per cold start).
    pub fn log(&self) {
        let us = |name: &str| {
            self.phases
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, d)| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        };
        tracing::info!(
            started_at_us = self.started_at_us,
            tracing_us = us("tracing"),
            config_us = us("config"),
            sdk_config_us = us("sdk_config"),
            clients_us = us("clients"),
            warm_up_us = us("warm_up"),
            "init complete"
        );
    }
}

/// Whether a function opens its AWS connection during init.
///
/// Chosen per function from measurements (docs/performance.md): the HTTP APIs warm up, because
/// a client waits on the first request of a new environment, which would otherwise open the
/// DynamoDB connection (TCP and TLS) at the throttled CPU share of an invocation; the warm-up
/// opens it during init, where Lambda gives the CPU unthrottled. Init is billed like invocation
/// time, so this is a latency choice, not a saving. The APIs reach DynamoDB only (their facts go
/// out through the outbox); SQS consumers and relays do not warm up: nobody waits on their
/// first batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarmUp {
    /// Nothing before the first event: the first event's calls open the connections.
    Off,
    /// One cheap request to DynamoDB during init (an eventually consistent `GetItem` of an
    /// absent key, `<IDEMPOTENCY_KEY_PREFIX>#warm-up`, in `IDEMPOTENCY_TABLE`: half a read
    /// unit), so the first event finds the TCP and TLS connection open. Failures are ignored; it never takes more than
    /// [`WARM_UP_LIMIT`].
    DynamoDb,
}

/// The longest a warm-up may add to init.
pub const WARM_UP_LIMIT: Duration = Duration::from_millis(500);

/// A function's whole init: installs tracing, reads its configuration with `config`, builds the
/// SDK configuration ([`lambda_sdk_config`]) and its clients with `wire`, warms the connections
/// up if asked, and logs the time of each phase. Fails (before any client is built) when the
/// configuration is missing or invalid.
pub async fn function<C, T>(
    config: impl FnOnce(&Env<fn(&str) -> Option<String>>) -> Result<C, ConfigError>,
    wire: impl FnOnce(&C, &aws_config::SdkConfig) -> T,
    warm: WarmUp,
) -> Result<T, ConfigError> {
    let mut timer = InitTimer::start();
    tracing();
    timer.phase("tracing");
    let env = Env::process();
    let config = config(&env)?;
    timer.phase("config");
    let sdk = lambda_sdk_config(&env);
    timer.phase("sdk_config");
    let wired = wire(&config, &sdk);
    timer.phase("clients");
    if warm == WarmUp::DynamoDb {
        warm_up(&sdk, &env).await;
        timer.phase("warm_up");
    }
    timer.log();
    Ok(wired)
}

/// Opens a connection to DynamoDB through the configuration's shared HTTP client (so into the
/// pool the function's own clients use).
async fn warm_up<F: Fn(&str) -> Option<String>>(sdk: &aws_config::SdkConfig, env: &Env<F>) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let table = env.required("IDEMPOTENCY_TABLE").unwrap_or_default();
    // Under the function's own prefix: IAM lets it read no other key of the table.
    let key = format!(
        "{}#warm-up",
        env.required("IDEMPOTENCY_KEY_PREFIX").unwrap_or_default()
    );
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk)
        .get_item()
        .table_name(table)
        .key("id", AttributeValue::S(key))
        .customize()
        .config_override(
            aws_sdk_dynamodb::config::Builder::default()
                .retry_config(aws_config::retry::RetryConfig::disabled())
                .timeout_config(
                    aws_config::timeout::TimeoutConfig::builder()
                        .connect_timeout(WARM_UP_LIMIT)
                        .operation_timeout(WARM_UP_LIMIT)
                        .build(),
                ),
        )
        .send()
        .await;
    tracing::debug!(dynamodb_ok = dynamodb.is_ok(), "connection warmed up");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_filter_reads_lambda_levels_and_rust_log_directives() {
        use tracing::Level;
        let enabled = |d: Option<&str>, target: &str, level: Level| {
            log_filter(d).would_enable(target, &level)
        };
        assert!(enabled(None, "orders", Level::INFO));
        assert!(!enabled(None, "orders", Level::DEBUG));
        assert!(enabled(Some("DEBUG"), "orders", Level::DEBUG));
        assert!(!enabled(Some("WARN"), "orders", Level::INFO));
        assert!(enabled(Some("FATAL"), "orders", Level::ERROR));
        assert!(!enabled(Some("FATAL"), "orders", Level::WARN));
        let directives = Some("info,aws_smithy_runtime=debug");
        assert!(enabled(
            directives,
            "aws_smithy_runtime::client",
            Level::DEBUG
        ));
        assert!(!enabled(directives, "orders", Level::DEBUG));
        assert!(enabled(Some("not a level=at all=x"), "orders", Level::INFO));
    }

    #[test]
    fn the_amazon_roots_are_five_certificates() {
        use base64::Engine as _;
        let bodies: Vec<String> = AMAZON_TRUST_SERVICES_ROOTS
            .split("-----BEGIN CERTIFICATE-----")
            .skip(1)
            .map(|c| {
                c.split("-----END CERTIFICATE-----")
                    .next()
                    .unwrap_or_default()
                    .split_whitespace()
                    .collect()
            })
            .collect();
        assert_eq!(bodies.len(), 5);
        for body in bodies {
            let der = base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap();
            assert_eq!(der[0], 0x30, "a DER SEQUENCE");
        }
    }

    #[test]
    fn the_lambda_sdk_config_comes_from_the_environment_alone() {
        let vars: std::collections::BTreeMap<&str, &str> = [
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_USE_FIPS_ENDPOINT", "true"),
        ]
        .into();
        let env = Env::from_fn(|name| vars.get(name).map(|v| (*v).to_owned()));
        let sdk = lambda_sdk_config(&env);
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert_eq!(sdk.endpoint_url(), Some("http://127.0.0.1:5000"));
        assert_eq!(sdk.use_fips(), Some(true));
        assert_eq!(sdk.use_dual_stack(), None);
        assert_eq!(
            sdk.retry_config().map(|r| r.max_attempts()),
            Some(SDK_MAX_ATTEMPTS)
        );
        // Building a client builds the HTTP connector, which parses the embedded roots (and
        // would panic on a malformed one).
        let _client = aws_sdk_dynamodb::Client::new(&sdk);

        let regional =
            Env::from_fn(|name| (name == "AWS_DEFAULT_REGION").then(|| "us-east-2".to_owned()));
        let sdk = lambda_sdk_config(&regional);
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("us-east-2"));
        assert_eq!(sdk.endpoint_url(), None);
    }

    #[test]
    fn the_timer_keeps_phases_in_order() {
        let mut timer = InitTimer::start();
        timer.phase("tracing");
        timer.phase("config");
        let names: Vec<_> = timer.phases().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["tracing", "config"]);
    }
}
