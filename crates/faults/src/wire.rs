//! The AWS wire formats the proxy needs: which operation a request is, what an error answer
//! looks like, and how PutEvents entries are split out and merged back.

use serde_json::{Value, json};

use crate::plan::Service;

/// The service and operation of a request, from `X-Amz-Target` (`DynamoDB_20120810.PutItem`),
/// else from a query-protocol `Action=` parameter of the body.
pub fn identify(target: Option<&str>, body: &[u8]) -> (Service, String) {
    if let Some((prefix, operation)) = target.and_then(|t| t.split_once('.')) {
        return (Service::from_target_prefix(prefix), operation.to_owned());
    }
    let action = std::str::from_utf8(body).ok().and_then(|text| {
        text.split('&')
            .find_map(|pair| pair.strip_prefix("Action="))
            .map(str::to_owned)
    });
    match action {
        Some(action) => (Service::Sqs, action),
        None => (Service::Other(String::new()), String::new()),
    }
}

/// The JSON body of an AWS JSON-protocol error: `__type` is what the SDK reads the code from.
pub fn error_body(code: &str, message: &str) -> Vec<u8> {
    json!({ "__type": code, "message": message })
        .to_string()
        .into_bytes()
}

/// A PutEvents request cut in two: what is forwarded, and which entries were failed.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitEntries {
    /// The body to forward (the request without the failed entries); `None` when every
    /// entry failed and nothing needs forwarding.
    pub forward: Option<Vec<u8>>,
    /// Per original entry: whether it was failed.
    pub failed: Vec<bool>,
}

/// Removes the entries `fail` picks (by index) from a PutEvents body. `None` when the body is
/// not a PutEvents request with an `Entries` list (it is then forwarded untouched).
pub fn split_put_events(body: &[u8], mut fail: impl FnMut(usize) -> bool) -> Option<SplitEntries> {
    let mut request: Value = serde_json::from_slice(body).ok()?;
    let entries = request.get_mut("Entries")?.as_array_mut()?;
    let failed: Vec<bool> = (0..entries.len()).map(&mut fail).collect();
    let mut index = 0;
    entries.retain(|_| {
        let keep = !failed.get(index).copied().unwrap_or(false);
        index += 1;
        keep
    });
    let forward = if entries.is_empty() {
        None
    } else {
        Some(request.to_string().into_bytes())
    };
    Some(SplitEntries { forward, failed })
}

/// The PutEvents answer for the original request: the upstream's results for the forwarded
/// entries, in order, with an error result in the place of each failed one, and
/// `FailedEntryCount` recounted. `None` when the upstream answer is not a PutEvents result.
pub fn merge_put_events(upstream: Option<&[u8]>, failed: &[bool], code: &str) -> Option<Vec<u8>> {
    let forwarded: Vec<Value> = match upstream {
        Some(body) => {
            let answer: Value = serde_json::from_slice(body).ok()?;
            answer.get("Entries")?.as_array()?.clone()
        }
        None => Vec::new(),
    };
    let mut forwarded = forwarded.into_iter();
    let mut entries = Vec::with_capacity(failed.len());
    let mut failed_count = 0u64;
    for &is_failed in failed {
        let entry = if is_failed {
            json!({
                "ErrorCode": code,
                "ErrorMessage": "failure injected by the fault proxy",
            })
        } else {
            forwarded.next().unwrap_or_else(
                || json!({ "ErrorCode": "InternalFailure", "ErrorMessage": "no upstream result" }),
            )
        };
        if entry.get("ErrorCode").is_some() {
            failed_count += 1;
        }
        entries.push(entry);
    }
    Some(
        json!({ "FailedEntryCount": failed_count, "Entries": entries })
            .to_string()
            .into_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_protocol_targets_and_query_actions_are_identified() {
        assert_eq!(
            identify(Some("DynamoDB_20120810.PutItem"), b""),
            (Service::DynamoDb, "PutItem".to_owned())
        );
        assert_eq!(
            identify(Some("AWSEvents.PutEvents"), b""),
            (Service::EventBridge, "PutEvents".to_owned())
        );
        assert_eq!(
            identify(None, b"Action=ReceiveMessage&Version=2012-11-05"),
            (Service::Sqs, "ReceiveMessage".to_owned())
        );
        assert_eq!(
            identify(None, b"\xff"),
            (Service::Other(String::new()), String::new())
        );
    }

    #[test]
    fn failed_entries_are_cut_out_and_merged_back_in_their_place() {
        let body = br#"{"Entries":[{"Detail":"a"},{"Detail":"b"},{"Detail":"c"}]}"#;
        let split = split_put_events(body, |i| i == 1).unwrap();
        assert_eq!(split.failed, [false, true, false]);
        let forwarded: Value = serde_json::from_slice(split.forward.as_deref().unwrap()).unwrap();
        assert_eq!(forwarded["Entries"], json!([{"Detail":"a"},{"Detail":"c"}]));

        let upstream = br#"{"FailedEntryCount":0,"Entries":[{"EventId":"1"},{"EventId":"3"}]}"#;
        let merged: Value = serde_json::from_slice(
            &merge_put_events(Some(upstream), &split.failed, "ThrottlingException").unwrap(),
        )
        .unwrap();
        assert_eq!(merged["FailedEntryCount"], 1);
        assert_eq!(merged["Entries"][0]["EventId"], "1");
        assert_eq!(merged["Entries"][1]["ErrorCode"], "ThrottlingException");
        assert_eq!(merged["Entries"][2]["EventId"], "3");
    }

    #[test]
    fn when_every_entry_fails_nothing_is_forwarded() {
        let split = split_put_events(br#"{"Entries":[{},{}]}"#, |_| true).unwrap();
        assert_eq!(split.forward, None);
        let merged: Value = serde_json::from_slice(
            &merge_put_events(None, &split.failed, "InternalFailure").unwrap(),
        )
        .unwrap();
        assert_eq!(merged["FailedEntryCount"], 2);
    }

    #[test]
    fn bodies_that_are_not_put_events_are_left_alone() {
        assert_eq!(split_put_events(b"not json", |_| true), None);
        assert_eq!(split_put_events(br#"{"TableName":"t"}"#, |_| true), None);
        assert_eq!(merge_put_events(Some(b"{}"), &[false], "X"), None);
    }
}
