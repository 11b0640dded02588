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
/// The method is for the node's operator: call it from loopback or with the admin token
/// (`data.reason` is `admin_only`).
pub const ADMIN_ONLY: i32 = -32003;
/// The method reads a member's private data and the caller has no session (`data.reason`
/// `login_required`) or one that is over (`session_expired`): log in with `auth_login`.
pub const LOGIN_REQUIRED: i32 = -32002;
/// The caller's session may not read this account's private data (`data.reason` `forbidden`):
/// a member sees only their own, the operator everyone's.
pub const FORBIDDEN: i32 = -32004;
/// The node is shutting down.
pub const UNAVAILABLE: i32 = -32010;
/// The node runs without a peer-to-peer network (`data.reason` is `no_p2p`).
pub const NO_P2P: i32 = -32011;

/// A parameter is malformed.
pub fn invalid_params(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(INVALID_PARAMS, message.into(), None::<()>)
}

/// A parameter is malformed or names nothing known; `reason` is machine-readable.
pub fn invalid_params_because(reason: &str, message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(INVALID_PARAMS, message.into(), Some(json!({ "reason": reason })))
}

/// An admin method called by someone who is not an admin.
pub fn admin_only(method: &str) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        ADMIN_ONLY,
        format!(
            "{method} is an admin method: call it from the node's own host (loopback) or send \
             the node's admin token as `Authorization: Bearer <token>`"
        ),
        Some(json!({ "reason": "admin_only" })),
    )
}

/// A private read without a (live) session.
pub fn login_required(what: &str, expired: bool) -> ErrorObjectOwned {
    let (reason, message) = if expired {
        (
            "session_expired",
            format!("{what}: the session is over (expired or logged out); log in again"),
        )
    } else {
        (
            "login_required",
            format!(
                "{what} answers only a logged-in member or the operator: log in with auth_challenge and auth_login"
            ),
        )
    };
    ErrorObjectOwned::owned(LOGIN_REQUIRED, message, Some(json!({ "reason": reason })))
}

/// A private read of another member's data.
pub fn forbidden(what: &str, account: &primitives::Address) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        FORBIDDEN,
        format!(
            "{what}: this session may not read the data of {account} (a member sees only their own; the operator sees everyone's)"
        ),
        Some(json!({ "reason": "forbidden" })),
    )
}

/// An operator-only read by a member.
pub fn operator_only(what: &str) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        FORBIDDEN,
        format!("{what} answers only the operator's session"),
        Some(json!({ "reason": "forbidden" })),
    )
}

/// The node has no peer-to-peer network to act on.
pub fn no_p2p() -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        NO_P2P,
        "this node runs without a peer-to-peer network",
        Some(json!({ "reason": "no_p2p" })),
    )
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
