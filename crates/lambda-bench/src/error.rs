//! The one error type of the crate.

/// Boxed source error (the stand-in's provisioning errors, HTTP plumbing errors).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Anything that stops a measurement. Every variant names what was being measured, so a failed
/// bench run says which function, file or call broke.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A file, socket or process operation failed.
    #[error("I/O: {what}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The function did not poll `/next` in time (a hang, or a crash before the runtime started).
    #[error("{function} did not poll /next within {timeout_ms} ms of exec{stderr}")]
    InitTimeout {
        /// The function's binary name.
        function: String,
        /// The limit.
        timeout_ms: u128,
        /// The tail of its stderr, if any, prefixed for display.
        stderr: String,
    },
    /// The function reported an init error to the Runtime API or exited before polling.
    #[error("{function} failed at init: {message}")]
    InitFailed {
        /// The function's binary name.
        function: String,
        /// The error body or exit status, with the tail of its output.
        message: String,
    },
    /// An invocation got no answer in time, or the process died while serving it.
    #[error("{function}: invocation {request_id} got no answer: {problem}")]
    NoAnswer {
        /// The function's binary name.
        function: String,
        /// The emulator's request id.
        request_id: String,
        /// Timeout or exit.
        problem: String,
    },
    /// The function answered, but not what the scenario needs (an error, a failed record, a
    /// response without the expected field).
    #[error("{function}: unexpected answer to {input}: {answer}")]
    UnexpectedAnswer {
        /// The function's binary name.
        function: String,
        /// What was sent (event type or route).
        input: String,
        /// What came back.
        answer: String,
    },
    /// The local AWS stand-in could not be started, provisioned or read.
    #[error("stand-in: {what}")]
    StandIn {
        /// What was being done.
        what: String,
        /// The SDK or provisioning error.
        #[source]
        source: BoxError,
    },
    /// A fixture, the template or the prices file is missing a field or does not parse.
    #[error("{path}: {problem}")]
    Input {
        /// The file.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// The emulator's or the proxy's HTTP plumbing failed.
    #[error("HTTP: {what}")]
    Http {
        /// What was being done.
        what: String,
        /// The hyper / http error.
        #[source]
        source: BoxError,
    },
}

impl BenchError {
    /// Stable error type string.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Io { .. } => "Io",
            Self::InitTimeout { .. } => "InitTimeout",
            Self::InitFailed { .. } => "InitFailed",
            Self::NoAnswer { .. } => "NoAnswer",
            Self::UnexpectedAnswer { .. } => "UnexpectedAnswer",
            Self::StandIn { .. } => "StandInFailed",
            Self::Input { .. } => "InvalidInput",
            Self::Http { .. } => "HttpFailed",
        }
    }

    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn input(path: impl Into<String>, problem: impl std::fmt::Display) -> Self {
        Self::Input {
            path: path.into(),
            problem: problem.to_string(),
        }
    }

    pub(crate) fn http(what: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Http {
            what: what.into(),
            source: source.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_a_stable_type_and_names_its_subject() {
        let e = BenchError::InitTimeout {
            function: "orders-api".into(),
            timeout_ms: 5000,
            stderr: String::new(),
        };
        assert_eq!(e.error_type(), "InitTimeout");
        assert!(e.to_string().contains("orders-api"));
        let e = BenchError::input("docs/prices.yaml", "missing lambda");
        assert_eq!(e.error_type(), "InvalidInput");
        assert!(e.to_string().starts_with("docs/prices.yaml"));
    }
}
