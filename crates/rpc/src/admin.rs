//! Who may call the admin methods (`node_addPeer`, `node_removePeer`, `node_setBlockedPeers`).
//!
//! A caller is an admin when it presents the node's admin token as
//! `Authorization: Bearer <token>`, or, only where
//! [`RpcConfig::admin_from_loopback`](crate::RpcConfig::admin_from_loopback) is turned on (a
//! devnet), when it connects from a loopback address. It is off by default: any process on the
//! node's host could otherwise cut the node off its peers. The decision is made once per HTTP request
//! (for WebSocket: once, on the upgrade request) by the server's connection service, which knows
//! the peer's socket address, and travels to the methods as an `AdminAccess` in the request's
//! extensions. A call that arrives without one (an in-process [`RpcModule`](jsonrpsee::RpcModule)
//! call, say) is not an admin.
//!
//! Behind a reverse proxy on the same host every caller looks like loopback, which is one more
//! reason to rely on the token alone (a proxy that forwards `Authorization` works as expected).

use crate::{api::RpcResult, errors::admin_only};
use jsonrpsee::Extensions;
use primitives::Hash;
use std::net::SocketAddr;

/// Whether the caller of a request may use the admin methods; inserted into every request's
/// extensions by the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AdminAccess(pub(crate) bool);

/// Whether a request from `remote`, with this `Authorization` header value (if any), may use the
/// admin methods of a node whose admin token is `admin_token`.
///
/// Loopback callers (`127.0.0.0/8`, `::1`, and IPv4-mapped loopback) may when `from_loopback`;
/// anyone else needs `Bearer <admin_token>`, compared in constant time. Without a configured
/// (non-empty) token only loopback callers are admins.
pub fn is_admin(
    remote: SocketAddr,
    authorization: Option<&str>,
    admin_token: Option<&str>,
    from_loopback: bool,
) -> bool {
    if from_loopback && remote.ip().to_canonical().is_loopback() {
        return true;
    }
    let (Some(header), Some(token)) = (authorization, admin_token) else { return false };
    let Some(presented) = bearer(header) else { return false };
    !token.is_empty() && tokens_equal(presented, token)
}

/// The token of a `Bearer` authorization (the scheme is case-insensitive).
pub(crate) fn bearer(header: &str) -> Option<&str> {
    let header = header.trim();
    let (scheme, token) = header.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Compares two secrets in time independent of where they differ and of their lengths: both are
/// hashed to 32 bytes first, then every byte is compared.
fn tokens_equal(presented: &str, expected: &str) -> bool {
    const DOMAIN: &[u8] = b"joule/rpc/admin-token";
    let presented = Hash::digest(DOMAIN, &[presented.as_bytes()]);
    let expected = Hash::digest(DOMAIN, &[expected.as_bytes()]);
    let difference = presented
        .as_bytes()
        .iter()
        .zip(expected.as_bytes())
        .fold(0u8, |difference, (left, right)| difference | (left ^ right));
    std::hint::black_box(difference) == 0
}

/// Refuses the call unless its request was marked as coming from an admin.
pub(crate) fn require_admin(extensions: &Extensions, method: &str) -> RpcResult<()> {
    match extensions.get::<AdminAccess>() {
        Some(AdminAccess(true)) => Ok(()),
        _ => Err(admin_only(method)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn loopback_callers_are_admins_without_a_token() {
        for remote in ["127.0.0.1:5000", "127.8.9.10:1", "[::1]:5000", "[::ffff:127.0.0.1]:5000"] {
            assert!(is_admin(addr(remote), None, None, true), "{remote}");
            assert!(is_admin(addr(remote), Some("Bearer wrong"), Some("secret"), true), "{remote}");
            assert!(!is_admin(addr(remote), None, Some("secret"), false), "{remote}");
            assert!(
                is_admin(addr(remote), Some("Bearer secret"), Some("secret"), false),
                "{remote}"
            );
        }
    }

    #[test]
    fn other_callers_need_the_token() {
        let remote = addr("192.0.2.7:40000");
        assert!(!is_admin(remote, None, None, true));
        assert!(!is_admin(remote, None, Some("secret"), true));
        assert!(!is_admin(remote, Some("Bearer secret"), None, true));
        assert!(!is_admin(remote, Some("Bearer wrong"), Some("secret"), true));
        assert!(!is_admin(remote, Some("Bearer secret2"), Some("secret"), true));
        assert!(!is_admin(remote, Some("Bearer secre"), Some("secret"), true));
        assert!(!is_admin(remote, Some("secret"), Some("secret"), true));
        assert!(!is_admin(remote, Some("Basic secret"), Some("secret"), true));
        assert!(!is_admin(remote, Some("Bearer "), Some(""), true));
        assert!(is_admin(remote, Some("Bearer secret"), Some("secret"), true));
        assert!(is_admin(remote, Some("bearer  secret "), Some("secret"), true));
        assert!(!is_admin(addr("[2001:db8::1]:1"), None, Some("secret"), true));
        assert!(is_admin(addr("[2001:db8::1]:1"), Some("Bearer secret"), Some("secret"), true));
    }

    #[test]
    fn by_default_loopback_callers_need_the_token_too() {
        let config = crate::RpcConfig::default();
        assert!(!config.admin_from_loopback);
        let local = addr("127.0.0.1:5000");
        assert!(!is_admin(local, None, Some("secret"), config.admin_from_loopback));
        assert!(is_admin(local, Some("Bearer secret"), Some("secret"), config.admin_from_loopback));
    }

    #[test]
    fn calls_without_a_decision_are_refused() {
        let mut extensions = Extensions::new();
        assert!(require_admin(&extensions, "node_addPeer").is_err());
        extensions.insert(AdminAccess(false));
        assert!(require_admin(&extensions, "node_addPeer").is_err());
        extensions.insert(AdminAccess(true));
        assert!(require_admin(&extensions, "node_addPeer").is_ok());
    }
}
