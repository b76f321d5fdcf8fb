//! EventBridge rule matching with a real pattern engine (quamina, the EventBridge pattern
//! language), one automaton per bus.

use std::collections::HashMap;

use quamina::Quamina;

use crate::LocalError;
use crate::topology::Topology;

/// Matches envelopes against the template's rules.
///
/// Every rule's pattern is compiled into its bus's automaton once; matching an event walks the
/// automaton once, whatever the number of rules.
pub struct Router {
    buses: HashMap<String, Quamina<usize>>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("buses", &self.buses.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Router {
    /// Compiles every rule of `topology`. A pattern the engine refuses is an error naming the
    /// rule's `EventPattern`.
    pub fn new(topology: &Topology) -> Result<Self, LocalError> {
        let mut buses: HashMap<String, Quamina<usize>> = HashMap::new();
        for (index, rule) in topology.rules.iter().enumerate() {
            buses
                .entry(rule.bus.clone())
                .or_default()
                .add_pattern(index, &rule.pattern)
                .map_err(|source| LocalError::Pattern {
                    path: topology.path.clone(),
                    rule: rule.logical_id.clone(),
                    source,
                })?;
        }
        Ok(Self { buses })
    }

    /// Indexes (in [`Topology::rules`]) of the rules of `bus` that match `envelope`, ascending.
    /// An envelope the engine cannot read matches nothing: EventBridge would have refused it
    /// at `PutEvents`, and the runner only routes envelopes it built or validated.
    pub fn matching(&self, bus: &str, envelope: &[u8]) -> Vec<usize> {
        let Some(matcher) = self.buses.get(bus) else {
            return Vec::new();
        };
        let mut rules = matcher.matches_for_event(envelope).unwrap_or_default();
        rules.sort_unstable();
        rules.dedup();
        rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sam_template::{Stack, Template};

    fn router_for(yaml: &str) -> Result<(Topology, Router), LocalError> {
        let topology =
            Topology::from_template(&Template::from_yaml(yaml, "p.yaml")?, &Stack::new("s"))?;
        let router = Router::new(&topology)?;
        Ok((topology, router))
    }

    const RULES: &str = r#"
Resources:
  Bus: { Type: AWS::Events::EventBus, Properties: { Name: b } }
  Q: { Type: AWS::SQS::Queue }
  Exact:
    Type: AWS::Events::Rule
    Properties:
      EventBusName: !Ref Bus
      EventPattern: { source: [com.fulfillment], detail-type: [OrderPicked, OrderShipped] }
      Targets: [{ Id: q, Arn: !GetAtt Q.Arn }]
  Prefix:
    Type: AWS::Events::Rule
    Properties:
      EventBusName: !Ref Bus
      EventPattern: { source: [{ prefix: com. }], detail: { data: { total: [{ numeric: [">", 100] }] } } }
      Targets: [{ Id: q, Arn: !GetAtt Q.Arn }]
"#;

    fn envelope(source: &str, detail_type: &str, total: f64) -> Vec<u8> {
        serde_json::json!({
            "version": "0", "id": "1", "source": source, "detail-type": detail_type,
            "detail": { "data": { "total": total } }
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn exact_string_arrays_match_any_listed_value_and_every_field() {
        let (_, router) = router_for(RULES).unwrap();
        assert_eq!(
            router.matching("b", &envelope("com.fulfillment", "OrderShipped", 1.0)),
            [0]
        );
        assert_eq!(
            router.matching("b", &envelope("com.fulfillment", "OrderCreated", 1.0)),
            Vec::<usize>::new()
        );
        assert_eq!(
            router.matching("b", &envelope("com.orders", "OrderPicked", 1.0)),
            Vec::<usize>::new()
        );
    }

    #[test]
    fn the_engine_speaks_the_whole_pattern_language_not_just_equality() {
        let (_, router) = router_for(RULES).unwrap();
        assert_eq!(
            router.matching("b", &envelope("com.fulfillment", "OrderPicked", 237.51)),
            [0, 1]
        );
        assert_eq!(
            router.matching("b", &envelope("com.orders", "OrderCreated", 99.0)),
            Vec::<usize>::new()
        );
        assert_eq!(
            router.matching(
                "other-bus",
                &envelope("com.fulfillment", "OrderPicked", 1.0)
            ),
            Vec::<usize>::new()
        );
    }

    #[test]
    fn an_invalid_pattern_is_an_error_naming_the_rule_field() {
        let yaml = RULES.replace("source: [com.fulfillment]", "source: com.fulfillment");
        let err = router_for(&yaml).unwrap_err();
        assert_eq!(err.error_type(), "InvalidEventPattern");
        let text = err.to_string();
        assert!(
            text.contains("p.yaml") && text.contains("Exact.Properties.EventPattern"),
            "{text}"
        );
    }

    #[test]
    fn garbage_matches_nothing_instead_of_failing() {
        let (_, router) = router_for(RULES).unwrap();
        assert!(router.matching("b", b"{not json").is_empty());
    }
}
