//! JSON-RPC 2.0 to the letter, in front of jsonrpsee, for HTTP.
//!
//! jsonrpsee parses ids as unsigned integers or strings only, answers notifications, and treats
//! some invalid requests as other errors. This layer reads every HTTP request body itself and
//! decides what the specification says: a parse error (-32700) for a body that is not JSON, an
//! invalid request (-32600) for anything that is not a request object (a wrong `jsonrpc`
//! member, a method that is not a string, `params` that are not an array or an object, an id
//! that is an object, an array or a boolean, an empty batch), no answer at all for a
//! notification (a request without an `id`), and the answer of each request in a batch, in
//! order, without the notifications' (HTTP 204 when nothing is left to answer). A batch longer
//! than the limit is refused as a whole with -32005 (a limit of the API).
//!
//! Each valid call is forwarded to jsonrpsee on its own, with id 0 in place of the caller's,
//! and the caller's id (any string, any number, exactly as written, or `null`) is put back in
//! the answer. Calls of a batch run concurrently. The pure part, `plan` and `answer`, is
//! tested here; the HTTP part lives in `crate::http`.

use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// The code for a request that is not JSON.
pub const PARSE_ERROR: i32 = -32700;
/// The code for a request that is not a JSON-RPC 2.0 request object.
pub const INVALID_REQUEST: i32 = -32600;

/// One element of what a request body asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    /// Answered as it is, without calling anything (an invalid request).
    Answer(String),
    /// A valid call, rewritten with id 0, to forward.
    Call {
        /// The caller's id exactly as written; `None` for a notification (no answer).
        id: Option<String>,
        /// The request to forward.
        request: String,
    },
}

/// What a request body asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Answer this at once (parse error, empty or oversized batch).
    Reply(String),
    /// One request.
    Single(Entry),
    /// A batch, in order.
    Batch(Vec<Entry>),
}

/// A JSON-RPC error response with `id` written as given (`null` when unknown).
pub(crate) fn error_response(id: &str, code: i32, message: &str) -> String {
    let message = serde_json::to_string(message).unwrap_or_else(|_| "\"error\"".into());
    format!(r#"{{"jsonrpc":"2.0","error":{{"code":{code},"message":{message}}},"id":{id}}}"#)
}

/// Whether raw JSON text is a valid id: a string, a number or `null`.
fn valid_id(raw: &str) -> bool {
    matches!(raw.as_bytes().first(), Some(b'"' | b'-' | b'0'..=b'9' | b'n'))
}

/// Reads one request object: a call to forward or the error to answer.
fn entry(raw: &RawValue) -> Entry {
    let invalid = |id: &str, why: &str| {
        Entry::Answer(error_response(id, INVALID_REQUEST, &format!("invalid request: {why}")))
    };
    let Ok(members) = serde_json::from_str::<BTreeMap<String, &RawValue>>(raw.get()) else {
        return invalid("null", "a request is a JSON object");
    };
    let id = members.get("id").map(|raw| raw.get());
    if let Some(id) = id
        && !valid_id(id)
    {
        return invalid("null", "the id must be a string, a number or null");
    }
    let answer_id = id.unwrap_or("null");
    if members.get("jsonrpc").map(|raw| raw.get()) != Some(r#""2.0""#) {
        return invalid(answer_id, r#"the member "jsonrpc" must be exactly "2.0""#);
    }
    let Some(method) = members.get("method").filter(|raw| raw.get().starts_with('"')) else {
        return invalid(answer_id, "the method must be a string");
    };
    if serde_json::from_str::<String>(method.get()).is_err() {
        return invalid(answer_id, "the method must be a string");
    }
    let params = members.get("params").map(|raw| raw.get());
    if let Some(params) = params
        && !(params.starts_with('[') || params.starts_with('{'))
    {
        return invalid(answer_id, "params must be an array or an object, or be left out");
    }
    let request = match params {
        Some(params) => {
            format!(r#"{{"jsonrpc":"2.0","id":0,"method":{},"params":{params}}}"#, method.get())
        }
        None => format!(r#"{{"jsonrpc":"2.0","id":0,"method":{}}}"#, method.get()),
    };
    Entry::Call { id: id.map(str::to_owned), request }
}

/// Reads a request body: at most `max_batch` calls in a batch.
pub(crate) fn plan(body: &[u8], max_batch: usize) -> Plan {
    let text = std::str::from_utf8(body).ok();
    let Some(raw) = text.and_then(|text| serde_json::from_str::<&RawValue>(text).ok()) else {
        return Plan::Reply(error_response("null", PARSE_ERROR, "parse error: not valid JSON"));
    };
    if !raw.get().starts_with('[') {
        return Plan::Single(entry(raw));
    }
    let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(raw.get()) else {
        return Plan::Reply(error_response("null", PARSE_ERROR, "parse error: not valid JSON"));
    };
    if items.is_empty() {
        return Plan::Reply(error_response(
            "null",
            INVALID_REQUEST,
            "invalid request: an empty batch",
        ));
    }
    if items.len() > max_batch {
        return Plan::Reply(error_response(
            "null",
            crate::errors::LIMIT_EXCEEDED,
            &format!("a batch holds at most {max_batch} calls, got {}", items.len()),
        ));
    }
    Plan::Batch(items.into_iter().map(entry).collect())
}

/// The members of jsonrpsee's answer that matter.
#[derive(Deserialize)]
struct Inner<'a> {
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

/// The answer to a forwarded call, with the caller's `id` put back: `None` when the call was a
/// notification. An answer that cannot be read is an internal error.
pub(crate) fn answer(id: Option<&str>, inner: &[u8]) -> Option<String> {
    let id = id?;
    let parsed = std::str::from_utf8(inner)
        .ok()
        .and_then(|text| serde_json::from_str::<Inner<'_>>(text).ok());
    Some(match parsed {
        Some(Inner { error: Some(error), .. }) => {
            format!(r#"{{"jsonrpc":"2.0","error":{},"id":{id}}}"#, error.get())
        }
        Some(Inner { result, .. }) => format!(
            r#"{{"jsonrpc":"2.0","result":{},"id":{id}}}"#,
            result.map_or("null", RawValue::get)
        ),
        None => error_response(id, crate::errors::INTERNAL, "internal error: unreadable answer"),
    })
}

/// The body for a batch's answers: `None` when every call was a notification.
pub(crate) fn batch_body(answers: Vec<String>) -> Option<String> {
    (!answers.is_empty()).then(|| format!("[{}]", answers.join(",")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: Option<&str>, request: &str) -> Entry {
        Entry::Call { id: id.map(str::to_owned), request: request.to_owned() }
    }

    #[test]
    fn ids_are_kept_exactly_as_written() {
        for id in ["1", "-7", "1.5", "1e400", "123456789012345678901234567890", r#""a""#, "null"] {
            let body = format!(r#"{{"jsonrpc":"2.0","method":"chain_head","id":{id}}}"#);
            assert_eq!(
                plan(body.as_bytes(), 10),
                Plan::Single(call(Some(id), r#"{"jsonrpc":"2.0","id":0,"method":"chain_head"}"#))
            );
            assert_eq!(
                answer(Some(id), br#"{"jsonrpc":"2.0","result":{"a":1},"id":0}"#).unwrap(),
                format!(r#"{{"jsonrpc":"2.0","result":{{"a":1}},"id":{id}}}"#)
            );
        }
    }

    #[test]
    fn invalid_requests_are_named() {
        let cases = [
            (r#"{"jsonrpc":"2.0","method":"m","id":{"a":1}}"#, "null"),
            (r#"{"jsonrpc":"2.0","method":"m","id":[1]}"#, "null"),
            (r#"{"jsonrpc":"2.0","method":"m","id":true}"#, "null"),
            (r#"{"jsonrpc":"2.0","method":"m","params":5,"id":3}"#, "3"),
            (r#"{"jsonrpc":"2.0","method":"m","params":null,"id":3}"#, "3"),
            (r#"{"jsonrpc":"1.0","method":"m","id":3}"#, "3"),
            (r#"{"method":"m","id":3}"#, "3"),
            (r#"{"jsonrpc":"2.0","method":1,"params":"bar"}"#, "null"),
            ("1", "null"),
        ];
        for (body, id) in cases {
            let Plan::Single(Entry::Answer(text)) = plan(body.as_bytes(), 10) else {
                panic!("{body} is not answered at once");
            };
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(value["error"]["code"], INVALID_REQUEST, "{body}");
            assert_eq!(value["id"].to_string(), id, "{body}");
        }
    }

    #[test]
    fn batches_and_bodies_that_are_not_json() {
        assert!(matches!(plan(b"{", 10), Plan::Reply(text) if text.contains("-32700")));
        assert!(matches!(plan(b"[{},", 10), Plan::Reply(text) if text.contains("-32700")));
        assert!(matches!(plan(b"[]", 10), Plan::Reply(text) if text.contains("-32600")));
        assert!(matches!(plan(b"[1,1,1]", 2), Plan::Reply(text) if text.contains("-32005")));
        let Plan::Batch(entries) = plan(br#"[1,{"jsonrpc":"2.0","method":"m"}]"#, 2) else {
            panic!("not a batch")
        };
        assert!(matches!(&entries[0], Entry::Answer(_)));
        assert_eq!(entries[1], call(None, r#"{"jsonrpc":"2.0","id":0,"method":"m"}"#));
        assert_eq!(answer(None, b"{}"), None, "a notification gets no answer");
        assert_eq!(batch_body(vec![]), None);
    }

    #[test]
    fn errors_and_null_results_come_back_with_the_callers_id() {
        assert_eq!(
            answer(
                Some(r#""x""#),
                br#"{"jsonrpc":"2.0","error":{"code":-32601,"message":"no"},"id":0}"#
            )
            .unwrap(),
            r#"{"jsonrpc":"2.0","error":{"code":-32601,"message":"no"},"id":"x"}"#
        );
        assert_eq!(
            answer(Some("2"), br#"{"jsonrpc":"2.0","result":null,"id":0}"#).unwrap(),
            r#"{"jsonrpc":"2.0","result":null,"id":2}"#
        );
        assert!(answer(Some("2"), b"nonsense").unwrap().contains("-32603"));
    }
}
