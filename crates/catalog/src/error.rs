//! The crate's one error type.

use sam_template::TemplateError;

/// Why the catalog could not be built or written. Messages name the file, the resource or the
/// schema path at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The template could not be read or interpreted.
    #[error(transparent)]
    Template(#[from] TemplateError),

    /// The template has no custom event bus, or several, so the bus the contract's events are
    /// published on is unknown.
    #[error("template {path}: expected exactly one AWS::Events::EventBus, found {found}")]
    Bus {
        /// The template's path.
        path: String,
        /// How many buses it declares.
        found: usize,
    },

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

    /// A rule on the bus matches no event of the contract: a dead rule or a typo.
    #[error(
        "template {path}: {rule}.Properties.EventPattern matches no (source, detail-type) of the contract"
    )]
    RuleMatchesNothing {
        /// The template's path.
        path: String,
        /// The rule's logical id.
        rule: String,
    },

    /// Two functions consume one queue, so a subscription has no single consumer.
    #[error("template {path}: queue {queue} feeds both {first} and {second}")]
    SharedQueue {
        /// The template's path.
        path: String,
        /// The queue's logical id.
        queue: String,
        /// One consumer's logical id.
        first: String,
        /// The other consumer's logical id.
        second: String,
    },

    /// An example file could not be read.
    #[error("{path}: cannot read: {source}")]
    ExampleUnreadable {
        /// The file or directory.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// An example file is not an event of the contract.
    #[error("{path}: not an example of the contract: {problem}")]
    InvalidExample {
        /// The file.
        path: String,
        /// What is wrong with it.
        problem: String,
    },

    /// A schema uses a keyword the conversion to an older JSON Schema dialect cannot translate
    /// faithfully.
    #[error("schema {schema}: {at}: cannot convert `{keyword}` to {dialect}")]
    UnsupportedKeyword {
        /// The schema's name (the detail type).
        schema: String,
        /// JSON pointer of the schema object using it.
        at: String,
        /// The keyword.
        keyword: String,
        /// The target dialect.
        dialect: &'static str,
    },

    /// Two detail types' schemas define one name differently, so they cannot share the
    /// AsyncAPI document's `components.schemas`.
    #[error(
        "schema definition {name} differs between {first} and {second}: give the Rust types distinct names"
    )]
    DefinitionConflict {
        /// The definition's name.
        name: String,
        /// The first detail type defining it.
        first: String,
        /// The second.
        second: String,
    },

    /// The template has no generated catalog block to replace.
    #[error(
        "template {path}: no line `{marker}`; the generated Schema Registry block must sit between its markers"
    )]
    MissingMarker {
        /// The template's path.
        path: String,
        /// The marker line looked for.
        marker: &'static str,
    },
}
