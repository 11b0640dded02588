//! JSON-RPC error codes. Standard codes for malformed calls; the application's codes, in
//! -32000..-32099, carry a machine-readable `reason` in `data`.

use jsonrpsee::types::ErrorObjectOwned;
use node::{AdmitError, SubmitError};
use serde_json::json;

/// Invalid method parameters (a bad address, hash or hex string).
pub const INVALID_PARAMS: i32 = -32602;
/// Internal error (storage).
pub const INTERNAL: i32 = -32603;
/// The transaction was refused for good: it will never be accepted as it is.
pub const TX_REJECTED: i32 = -32000;
/// The transaction was refused for now (mempool or sender queue full): retry later.
pub const TRY_LATER: i32 = -32001;
/// A request exceeds a limit of this API (batch length, page size).
pub const LIMIT_EXCEEDED: i32 = -32005;
/// The node is shutting down.
pub const UNAVAILABLE: i32 = -32010;

/// A parameter is malformed.
pub fn invalid_params(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(INVALID_PARAMS, message.into(), None::<()>)
}

/// A limit was exceeded.
pub fn limit_exceeded(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(LIMIT_EXCEEDED, message.into(), None::<()>)
}

/// The store failed.
pub fn internal(error: impl std::fmt::Display) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(INTERNAL, format!("internal error: {error}"), None::<()>)
}

/// The node is stopping.
pub fn unavailable() -> ErrorObjectOwned {
    ErrorObjectOwned::owned(UNAVAILABLE, "the node is shutting down", None::<()>)
}

/// The code for a refused submission.
pub fn submit_code(error: &SubmitError) -> i32 {
    match error {
        SubmitError::Refused(AdmitError::Full(_) | AdmitError::SenderFull(_)) => TRY_LATER,
        _ => TX_REJECTED,
    }
}

/// A refused submission as a JSON-RPC error.
pub fn submit_error(error: &SubmitError) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        submit_code(error),
        error.to_string(),
        Some(json!({ "reason": error.code() })),
    )
}
