//! Configuration from environment variables only.

/// A missing or invalid configuration variable. Functions fail at init with this message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The variable is unset or empty.
    #[error("configuration: environment variable {0} is required but not set")]
    Missing(&'static str),
    /// The variable is set but unusable.
    #[error("configuration: environment variable {name} is invalid: {problem}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

impl ConfigError {
    /// Stable error type string.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Missing(_) => "ConfigMissing",
            Self::Invalid { .. } => "ConfigInvalid",
        }
    }
}

/// Reads configuration through a lookup function (the process environment in binaries, a map in
/// tests and in the local runner, which hosts several functions with different environments).
pub struct Env<F> {
    lookup: F,
}

impl Env<fn(&str) -> Option<String>> {
    /// The process environment.
    pub fn process() -> Self {
        Self {
            lookup: |name| std::env::var(name).ok(),
        }
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// Any lookup function.
    pub fn from_fn(lookup: F) -> Self {
        Self { lookup }
    }

    /// A required, non-empty variable.
    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        match (self.lookup)(name) {
            Some(v) if !v.trim().is_empty() => Ok(v),
            _ => Err(ConfigError::Missing(name)),
        }
    }

    /// An optional variable parsed as `T`, `default` when unset.
    pub fn parsed_or<T: std::str::FromStr>(
        &self,
        name: &'static str,
        default: T,
    ) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match (self.lookup)(name) {
            None => Ok(default),
            Some(v) if v.trim().is_empty() => Ok(default),
            Some(v) => v.trim().parse().map_err(|e: T::Err| ConfigError::Invalid {
                name,
                problem: e.to_string(),
            }),
        }
    }
}

/// The configuration of a function that only publishes (an outbox relay): the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusConfig {
    /// `EVENT_BUS_NAME`.
    pub event_bus: String,
}

impl BusConfig {
    /// Reads the configuration; names the missing variable on failure.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            event_bus: env.required("EVENT_BUS_NAME")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_variable_is_named_in_the_error() {
        let env = Env::from_fn(|_| None);
        let err = env.required("ORDERS_TABLE").unwrap_err();
        assert!(err.to_string().contains("ORDERS_TABLE"));
        assert_eq!(err.error_type(), "ConfigMissing");
    }

    #[test]
    fn an_empty_variable_counts_as_missing() {
        let env = Env::from_fn(|_| Some("  ".to_owned()));
        assert_eq!(env.required("X"), Err(ConfigError::Missing("X")));
    }

    #[test]
    fn an_unparsable_number_is_invalid() {
        let env = Env::from_fn(|_| Some("ten".to_owned()));
        let err = env.parsed_or("CONCURRENCY", 10usize).unwrap_err();
        assert_eq!(err.error_type(), "ConfigInvalid");
        let env = Env::from_fn(|_| None);
        assert_eq!(env.parsed_or("CONCURRENCY", 10usize), Ok(10));
    }
}
