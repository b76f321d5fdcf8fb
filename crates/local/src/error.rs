//! The crate's one error type.

use sam_template::TemplateError;

/// Everything the local runner can refuse or fail at. Every message names the file and the
/// field at fault when there is one; [`LocalError::error_type`] is a stable machine string.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalError {
    /// The template could not be read, parsed or interpreted (the message names file and field).
    #[error(transparent)]
    Template(#[from] TemplateError),

    /// The event catalog could not be read from the template (`local routes`).
    #[error(transparent)]
    Catalog(#[from] catalog::CatalogError),

    /// A rule's event pattern is not one the EventBridge pattern engine accepts.
    #[error("template {path}: {rule}.Properties.EventPattern: not a valid event pattern: {source}")]
    Pattern {
        /// The template's path.
        path: String,
        /// The rule's logical id.
        rule: String,
        /// The pattern engine's error.
        #[source]
        source: quamina::QuaminaError,
    },

    /// The template asks for something the runner cannot host (a target that is not a queue, a
    /// binary it does not know, two functions on one queue...).
    #[error("template {path}: {at}: {problem}")]
    Unsupported {
        /// The template's path.
        path: String,
        /// Where: logical id and field.
        at: String,
        /// What the runner cannot do.
        problem: String,
    },

    /// A function's environment, as the template resolves it, does not configure the function.
    #[error("template {path}: {function}.Properties.Environment.Variables: {source}")]
    FunctionConfig {
        /// The template's path.
        path: String,
        /// The function's logical id.
        function: String,
        /// What the function's own configuration loader said.
        #[source]
        source: platform::config::ConfigError,
    },

    /// A fixture file could not be read.
    #[error("{path}: cannot read: {source}")]
    FixtureUnreadable {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A fixture file is not JSON (the message carries line and column).
    #[error("{path}: malformed JSON: {source}")]
    MalformedFixture {
        /// The file.
        path: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },

    /// A fixture is JSON but not an event the contract knows, or not a shape the runner takes.
    #[error("{path}: field `{field}`: {problem}")]
    InvalidFixture {
        /// The file.
        path: String,
        /// The JSON path of the offending field, e.g. `detail.data.total`.
        field: String,
        /// What is wrong with it.
        problem: String,
    },

    /// A command-line option has a value the runner cannot use.
    #[error("option {option}: {problem}")]
    InvalidOption {
        /// The option, e.g. `--duplicates`.
        option: &'static str,
        /// What is wrong.
        problem: String,
    },

    /// The HTTP listener could not be opened.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address asked for.
        address: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A step of the demo got an answer it did not expect.
    #[error("demo step `{step}` failed: HTTP {status}: {body}")]
    DemoStep {
        /// The step.
        step: String,
        /// The status received.
        status: u16,
        /// The body received.
        body: String,
    },

    /// A DynamoDB table's stream could not be read (the runner's `--dynamodb` mode).
    #[error("reading the stream of table {table}: {problem}")]
    Stream {
        /// The table.
        table: String,
        /// The call that failed and why.
        problem: String,
    },

    /// The local signing key could not be read, created or used.
    #[error("signing key {path}: {problem}")]
    SigningKey {
        /// The key file (`(in memory)` for a key generated for one run).
        path: String,
        /// What went wrong.
        problem: String,
    },

    /// A token could not be minted.
    #[error("cannot mint a token: {problem}")]
    Token {
        /// What went wrong.
        problem: String,
    },

    /// Events kept flowing after the round limit (a rule that routes a function's output back to
    /// itself would loop forever on AWS too).
    #[error("events still flowing after {batches} batches: is there a routing loop?")]
    Unsettled {
        /// Batches delivered.
        batches: usize,
    },
}

impl LocalError {
    /// A stable string naming the kind of error.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Template(TemplateError::Io { .. }) => "TemplateUnreadable",
            Self::Template(TemplateError::Yaml { .. }) => "TemplateNotYaml",
            Self::Template(_) => "TemplateInvalid",
            Self::Catalog(_) => "CatalogInvalid",
            Self::Pattern { .. } => "InvalidEventPattern",
            Self::Unsupported { .. } => "TemplateUnsupported",
            Self::FunctionConfig { .. } => "FunctionConfig",
            Self::FixtureUnreadable { .. } => "FixtureUnreadable",
            Self::MalformedFixture { .. } => "MalformedFixture",
            Self::InvalidFixture { .. } => "InvalidFixture",
            Self::InvalidOption { .. } => "InvalidOption",
            Self::Bind { .. } => "BindFailed",
            Self::DemoStep { .. } => "DemoStepFailed",
            Self::Stream { .. } => "StreamUnreadable",
            Self::SigningKey { .. } => "SigningKey",
            Self::Token { .. } => "TokenNotMinted",
            Self::Unsettled { .. } => "Unsettled",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_names_its_file_and_field_and_has_a_stable_type() {
        let err = LocalError::InvalidFixture {
            path: "events/bad/x.json".into(),
            field: "detail-type".into(),
            problem: "unknown event".into(),
        };
        assert_eq!(err.error_type(), "InvalidFixture");
        assert_eq!(
            err.to_string(),
            "events/bad/x.json: field `detail-type`: unknown event"
        );
        let err = LocalError::Unsupported {
            path: "t.yaml".into(),
            at: "Rule.Properties.Targets[0].Arn".into(),
            problem: "not a queue".into(),
        };
        assert_eq!(err.error_type(), "TemplateUnsupported");
        assert!(
            err.to_string()
                .starts_with("template t.yaml: Rule.Properties.Targets[0].Arn")
        );
    }
}
