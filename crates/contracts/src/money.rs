//! Money as a decimal string, and currencies.

use std::str::FromStr;

use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ContractError;

/// A non-negative amount of money, exact, serialized as a decimal string (`"237.51"`).
///
/// Floats are refused on input: `237.51` as a JSON number is a contract violation, because a
/// binary float cannot hold most cent values exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Money(Decimal);

impl Money {
    /// Most fractional digits accepted (4 covers every ISO 4217 minor unit and unit prices).
    pub const MAX_SCALE: u32 = 4;

    /// Zero.
    pub const ZERO: Money = Money(Decimal::ZERO);

    /// The exact decimal value.
    pub fn amount(self) -> Decimal {
        self.0
    }

    /// Largest amount: 15 integer digits, so every amount parses back from its string form.
    pub fn max() -> Money {
        Money(Decimal::from_i128_with_scale(
            9_999_999_999_999_999_999,
            Self::MAX_SCALE,
        ))
    }

    fn bounded(value: Decimal) -> Option<Money> {
        (value <= Self::max().0).then_some(Money(value))
    }

    /// `self * quantity`, or `None` above [`Money::max`].
    pub fn checked_mul(self, quantity: u32) -> Option<Money> {
        self.0
            .checked_mul(Decimal::from(quantity))
            .and_then(Self::bounded)
    }

    /// `self + other`, or `None` above [`Money::max`].
    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).and_then(Self::bounded)
    }
}

impl FromStr for Money {
    type Err = ContractError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Plain decimal notation only: digits, one optional point, no sign, exponent or spaces.
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() || !digits(int) || !digits(frac) || (s.contains('.') && frac.is_empty()) {
            return Err(ContractError::InvalidMoney(truncate(s)));
        }
        if frac.len() > Self::MAX_SCALE as usize || int.len() > 15 {
            return Err(ContractError::InvalidMoney(truncate(s)));
        }
        Decimal::from_str_exact(s)
            .map(Money)
            .map_err(|_| ContractError::InvalidMoney(truncate(s)))
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(32).collect()
}

impl TryFrom<String> for Money {
    type Error = ContractError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Money> for String {
    fn from(value: Money) -> Self {
        value.0.to_string()
    }
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl JsonSchema for Money {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Money".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "Non-negative decimal amount as a string, at most 4 fractional digits.",
            "pattern": "^[0-9]{1,15}(\\.[0-9]{1,4})?$"
        })
    }
}

/// An ISO 4217 currency code that the product accepts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

impl Currency {
    /// Currencies accepted by the product.
    pub const SUPPORTED: [&'static str; 8] =
        ["USD", "EUR", "GBP", "JPY", "CAD", "AUD", "CHF", "SEK"];

    /// Validates a currency code against [`Currency::SUPPORTED`].
    pub fn new(code: &str) -> Result<Self, ContractError> {
        if Self::SUPPORTED.contains(&code) {
            Ok(Self(code.to_owned()))
        } else {
            Err(ContractError::UnsupportedCurrency(truncate(code)))
        }
    }

    /// The three-letter code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Currency {
    type Error = ContractError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.0
    }
}

impl JsonSchema for Currency {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Currency".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        // A pattern, not an enum: adding a currency must not be a breaking schema change.
        schemars::json_schema!({
            "type": "string",
            "description": "ISO 4217 currency code.",
            "pattern": "^[A-Z]{3}$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_round_trips_as_a_string_keeping_its_scale() {
        let m: Money = serde_json::from_str("\"237.50\"").unwrap();
        assert_eq!(serde_json::to_string(&m).unwrap(), "\"237.50\"");
    }

    #[test]
    fn money_as_a_json_number_is_rejected() {
        assert!(serde_json::from_str::<Money>("237.51").is_err());
    }

    #[test]
    fn malformed_money_is_rejected() {
        for bad in [
            "",
            "-1",
            "1e3",
            "1.",
            ".5",
            "1.23456",
            " 1",
            "1,00",
            "NaN",
            "9999999999999999",
        ] {
            assert!(bad.parse::<Money>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn arithmetic_is_exact() {
        let unit: Money = "0.10".parse().unwrap();
        let total = unit.checked_mul(3).unwrap();
        assert_eq!(total, "0.30".parse().unwrap());
    }

    #[test]
    fn arithmetic_beyond_the_parseable_maximum_is_refused() {
        let max = Money::max();
        assert_eq!(max.to_string().parse::<Money>().unwrap(), max);
        assert!(max.checked_add("0.0001".parse().unwrap()).is_none());
        assert!(max.checked_mul(2).is_none());
    }

    #[test]
    fn unknown_currency_is_rejected() {
        assert!(Currency::new("XYZ").is_err());
        assert!(Currency::new("usd").is_err());
        assert_eq!(Currency::new("EUR").unwrap().as_str(), "EUR");
    }
}
