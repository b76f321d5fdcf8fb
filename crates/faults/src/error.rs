//! The crate's error type.

/// What can go wrong in the fault layer itself (never an injected fault: those are answers).
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// The upstream endpoint is not `http://host:port`.
    #[error("upstream endpoint {0:?} is not of the form http://host:port")]
    InvalidUpstream(String),
    /// The proxy could not listen on loopback.
    #[error("the fault proxy could not listen on loopback")]
    Bind(#[source] std::io::Error),
    /// The upstream could not be reached or answered malformed HTTP.
    #[error("forwarding to the upstream failed")]
    Upstream(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A request to the proxy could not be read.
    #[error("reading the request failed")]
    Request(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The proxy closed the connection on purpose (an injected drop or hang).
    #[error("connection closed by an injected {0} fault")]
    Aborted(&'static str),
}

impl FaultError {
    /// Stable error type string.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::InvalidUpstream(_) => "InvalidUpstream",
            Self::Bind(_) => "ProxyBind",
            Self::Upstream(_) => "UpstreamFailed",
            Self::Request(_) => "RequestUnreadable",
            Self::Aborted(_) => "InjectedAbort",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_a_stable_type() {
        let io = || std::io::Error::other("x");
        let all = [
            FaultError::InvalidUpstream("ftp://x".into()),
            FaultError::Bind(io()),
            FaultError::Upstream(Box::new(io())),
            FaultError::Request(Box::new(io())),
            FaultError::Aborted("drop"),
        ];
        let types: Vec<&str> = all.iter().map(FaultError::error_type).collect();
        assert_eq!(
            types,
            [
                "InvalidUpstream",
                "ProxyBind",
                "UpstreamFailed",
                "RequestUnreadable",
                "InjectedAbort"
            ]
        );
        assert!(all[0].to_string().contains("ftp://x"));
    }
}
