//! Deploys on a fresh account and keeps data, without blocking a redeploy.

use std::collections::BTreeMap;

use serde_json::Value;
use testkit::{Stack, template};

use crate::support::logical_of;

#[test]
fn tables_are_on_demand_encrypted_recoverable_retained_and_protected() {
    let t = template();
    for table in t.resources_of("AWS::DynamoDB::Table") {
        let id = &table.logical_id;
        let p = &table.properties;
        assert_eq!(p["BillingMode"], "PAY_PER_REQUEST", "{id}");
        assert_eq!(p["SSESpecification"]["SSEEnabled"], true, "{id}");
        assert_eq!(
            p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], true,
            "{id}"
        );
        // Retain, not RetainExceptOnCreate: a failed create could not delete a table under
        // deletion protection, and the rollback would fail. Tables are CloudFormation-named, so
        // one kept by a failed create blocks nothing.
        assert_eq!(table.raw["DeletionPolicy"], "Retain", "{id}");
        assert_eq!(table.raw["UpdateReplacePolicy"], "Retain", "{id}");
        assert_eq!(p["DeletionProtectionEnabled"], true, "{id}");
        assert_eq!(p["TableName"], Value::Null, "{id}");
    }
    let idem = t
        .tables(&Stack::new("s"))
        .unwrap()
        .into_iter()
        .find(|x| x.logical_id == "IdempotencyTable")
        .unwrap();
    assert_eq!(idem.hash_key, ("id".to_owned(), "S".to_owned()));
    assert_eq!(idem.ttl_attribute.as_deref(), Some("expiration"));
}

#[test]
fn log_groups_never_block_a_redeploy() {
    // A named log group kept by a failed first deploy makes every later create fail with
    // "already exists": CloudFormation names them, and deletes them when their create fails.
    let t = testkit::expanded_template();
    let groups: Vec<_> = t.resources_of("AWS::Logs::LogGroup").collect();
    assert!(!groups.is_empty());
    for group in groups {
        let id = &group.logical_id;
        assert_eq!(
            group.properties["LogGroupName"],
            Value::Null,
            "{id} is named"
        );
        assert_eq!(
            group.raw["DeletionPolicy"], "RetainExceptOnCreate",
            "{id}: kept on stack deletion, removed when the create that made it fails"
        );
        assert!(
            group.properties["RetentionInDays"].is_object()
                || group.properties["RetentionInDays"].is_u64(),
            "{id} keeps logs forever"
        );
    }
}

#[test]
fn no_function_reserves_concurrency_unless_asked() {
    // A fresh account's concurrency quota can be as low as 10, and Lambda keeps 100 unreserved:
    // any literal reservation fails the first deploy.
    let t = testkit::expanded_template();
    let root = t.root();
    for f in t.resources_of("AWS::Lambda::Function") {
        let reserved = &f.properties["ReservedConcurrentExecutions"];
        if reserved.is_null() {
            continue;
        }
        let branches = reserved["Fn::If"].as_array().unwrap_or_else(|| {
            panic!(
                "{}: ReservedConcurrentExecutions must be conditional",
                f.logical_id
            )
        });
        let condition = branches[0].as_str().unwrap();
        let parameter = branches[1]["Ref"].as_str().unwrap();
        assert_eq!(
            branches[2],
            serde_json::json!({"Ref": "AWS::NoValue"}),
            "{}",
            f.logical_id
        );
        assert_eq!(
            root["Parameters"][parameter]["Default"], 0,
            "{parameter} reserves nothing by default"
        );
        assert_eq!(
            root["Conditions"][condition],
            serde_json::json!({"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, "0"]}]}),
            "{condition} holds only when {parameter} is not 0"
        );
    }
}

#[test]
fn dead_letter_queues_are_kept_and_take_only_their_own_queues_redrive() {
    let t = template();
    let stack = Stack::new("s");
    let queues = t.queues(&stack).unwrap();
    let mut dead_letter_queues: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for q in &queues {
        if let Some(redrive) = &q.redrive {
            dead_letter_queues
                .entry(redrive.dead_letter_queue.clone())
                .or_default()
                .push(q.arn.clone());
            // A consumer's queue keeps a message as long as SQS allows: an outage of days
            // loses nothing.
            let retention =
                &t.resource(&q.logical_id).unwrap().properties["MessageRetentionPeriod"];
            assert_eq!(retention, 1_209_600, "{}", q.logical_id);
        }
    }
    for rule in t.rules(&stack).unwrap() {
        for target in t.resource(&rule.logical_id).unwrap().properties["Targets"]
            .as_array()
            .unwrap()
        {
            if let Some(dlq) = logical_of(&target["DeadLetterConfig"]["Arn"]) {
                dead_letter_queues.entry(dlq).or_default();
            }
        }
    }
    assert_eq!(dead_letter_queues.len(), 4, "{dead_letter_queues:?}");
    for (dlq, mut sources) in dead_letter_queues {
        let r = t.resource(&dlq).unwrap();
        assert_eq!(
            r.raw["DeletionPolicy"], "RetainExceptOnCreate",
            "{dlq}: kept on stack deletion"
        );
        assert_eq!(r.raw["UpdateReplacePolicy"], "Retain", "{dlq}");
        assert_eq!(r.properties["MessageRetentionPeriod"], 1_209_600, "{dlq}");
        let allow = &r.properties["RedriveAllowPolicy"];
        if sources.is_empty() {
            // An EventBridge target's DLQ: no queue redrives into it.
            assert_eq!(allow["redrivePermission"], "denyAll", "{dlq}");
            continue;
        }
        assert_eq!(allow["redrivePermission"], "byQueue", "{dlq}");
        let mut allowed: Vec<String> = allow["sourceQueueArns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|arn| t.resolve_string(arn, &stack, &dlq).unwrap())
            .collect();
        allowed.sort();
        sources.sort();
        assert_eq!(
            allowed, sources,
            "{dlq} takes redrive from exactly its queues"
        );
    }
}

#[test]
fn both_environments_deploy_unattended_tagged_and_prod_only_into_its_account() {
    let shown: Value = serde_json::from_str(&testkit::run_sam_script(
        "samconfig-show.py",
        &["default", "prod"],
        "",
        &[],
    ))
    .unwrap();
    for env in ["default", "prod"] {
        let p = &shown[env];
        assert_eq!(
            p["confirm_changeset"], false,
            "{env}: CI deploys without a prompt"
        );
        assert_eq!(
            p["fail_on_empty_changeset"], false,
            "{env}: nothing to change is success"
        );
        assert_eq!(p["tags"]["project"], "commerce", "{env}");
        assert_eq!(
            p["tags"]["stage"], p["parameter_overrides"]["Stage"],
            "{env}"
        );
    }
    let prod = &shown["prod"];
    assert_eq!(prod["parameter_overrides"]["Stage"], "prod");
    assert!(
        prod["profile"].is_string(),
        "prod's credentials come from a named profile"
    );

    // The template refuses a prod stack that names no account, and any stack created in another
    // account than the one it names.
    let t = template();
    let rules = &t.root()["Rules"];
    let prod_rule = rules
        .as_object()
        .unwrap()
        .values()
        .find(|r| {
            r["RuleCondition"] == serde_json::json!({"Fn::Equals": [{"Ref": "Stage"}, "prod"]})
        })
        .expect("a rule for prod stacks");
    assert_eq!(
        prod_rule["Assertions"][0]["Assert"],
        serde_json::json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "DeployAccountId"}, ""]}]})
    );
    let account_rule = rules
        .as_object()
        .unwrap()
        .values()
        .find(|r| {
            r["Assertions"][0]["Assert"]
                == serde_json::json!({"Fn::Equals": [{"Ref": "AWS::AccountId"}, {"Ref": "DeployAccountId"}]})
        })
        .expect("a rule comparing the account with DeployAccountId");
    assert_eq!(
        account_rule["RuleCondition"],
        serde_json::json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "DeployAccountId"}, ""]}]})
    );
    // A placeholder account would fail every prod deploy with a misleading message.
    if let Some(account) = prod["parameter_overrides"]["DeployAccountId"].as_str() {
        assert!(
            account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && account != "000000000000",
            "DeployAccountId={account}"
        );
    }
}
