//! Logins, sessions and who is calling.
//!
//! A member logs in by proving control of their account key: `auth_challenge` hands out a
//! random challenge, the member signs the [`LoginChallenge`] text with the key, and
//! `auth_login` checks the signature and opens a session. The account named in the genesis as
//! operator (or issuer) gets an operator session, which may read every member's data; any
//! other account gets a member session, which may read its own. Sessions expire
//! ([`RpcConfig::session_ttl`](crate::RpcConfig::session_ttl)) and `auth_logout` ends one.
//!
//! A session travels as a bearer token (`Authorization: Bearer <token>`, what the wallet uses)
//! or as the `joule_session` cookie (HttpOnly, SameSite=Strict, what the dashboard uses; the
//! browser sends it on the WebSocket upgrade too). The node's admin token, sent as a bearer
//! token, counts as the operator for reads: whoever holds it runs the node and holds the whole
//! chain anyway.
//!
//! Cross-site request forgery is refused three ways: the cookie is `SameSite=Strict`; a request
//! whose `Origin` is not the node itself is refused outright (HTTP 403); and a POST that
//! authenticates with the cookie must also carry the session's CSRF token in the
//! `X-Joule-Csrf` header (the `joule_csrf` cookie, readable by the page's own script, holds it).
//!
//! Sessions live in the node's memory only: a restarted node forgets them, and every node of a
//! network has its own.

use crate::{
    api::RpcResult,
    errors::{forbidden, limit_exceeded, login_required},
};
use primitives::{Address, ChainConfig, Hash, LoginChallenge};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// The cookie that carries a browser's session token (HttpOnly).
pub const SESSION_COOKIE: &str = "joule_session";
/// The cookie that carries the session's CSRF token (readable by the page).
pub const CSRF_COOKIE: &str = "joule_csrf";
/// The header a cookie-authenticated POST must repeat the CSRF token in.
pub const CSRF_HEADER: &str = "x-joule-csrf";

/// How long a challenge may be answered.
pub const CHALLENGE_TTL: Duration = Duration::from_secs(300);

/// Most challenges waiting for an answer; beyond it the oldest are dropped.
const MAX_CHALLENGES: usize = 4_096;

const TOKEN_DOMAIN: &[u8] = b"joule/rpc/session-token";

/// What a session may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A member: their own data.
    Member,
    /// The community's operator (the genesis operator or issuer): everyone's data.
    Operator,
}

impl Role {
    /// `"member"` or `"operator"`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Operator => "operator",
        }
    }
}

/// An open session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The account that logged in.
    pub account: Address,
    /// What it may see.
    pub role: Role,
    /// Wall-clock ms after which it is over.
    pub expires_ms: u64,
    /// The token a cookie-authenticated POST must repeat in `X-Joule-Csrf`.
    pub csrf: String,
}

/// Who is calling, decided once per HTTP request (for WebSocket: on the upgrade request) and
/// passed to the methods in the request's extensions.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Caller {
    /// No credentials.
    #[default]
    Anonymous,
    /// A token or cookie that names no open session (expired, logged out, or from before the
    /// node restarted).
    Expired,
    /// The node's admin token: reads like the operator.
    Admin,
    /// A logged-in account.
    Session {
        /// Which session (the hash of its token).
        id: Hash,
        /// Its account.
        account: Address,
        /// Its role.
        role: Role,
    },
}

impl Caller {
    /// Whether the caller may read everyone's data.
    pub fn sees_all(&self) -> bool {
        matches!(self, Caller::Admin | Caller::Session { role: Role::Operator, .. })
    }

    /// The logged-in account, if any.
    pub fn account(&self) -> Option<Address> {
        match self {
            Caller::Session { account, .. } => Some(*account),
            _ => None,
        }
    }

    /// Whether the caller may read `account`'s private data.
    pub fn may_read(&self, account: &Address) -> bool {
        self.sees_all() || self.account().is_some_and(|own| own == *account)
    }

    /// Refuses a caller without a session.
    pub fn require_session(&self, what: &str) -> RpcResult<()> {
        match self {
            Caller::Anonymous => Err(login_required(what, false)),
            Caller::Expired => Err(login_required(what, true)),
            Caller::Admin | Caller::Session { .. } => Ok(()),
        }
    }

    /// Refuses a caller who is not the operator (or the node's admin).
    pub fn require_operator(&self, what: &str) -> RpcResult<()> {
        self.require_session(what)?;
        if self.sees_all() { Ok(()) } else { Err(crate::errors::operator_only(what)) }
    }

    /// Refuses a caller who may not read `account`'s private data.
    pub fn require_read(&self, account: &Address, what: &str) -> RpcResult<()> {
        self.require_session(what)?;
        if self.may_read(account) { Ok(()) } else { Err(forbidden(what, account)) }
    }
}

/// The result of a login.
#[derive(Clone, Debug)]
pub struct LoggedIn {
    /// The session token.
    pub token: String,
    /// The session.
    pub session: Session,
}

#[derive(Default)]
struct Table {
    /// challenge → (account, wall-clock ms it expires, sequence number for eviction).
    challenges: HashMap<[u8; 32], (Address, u64, u64)>,
    /// hash of the token → session.
    sessions: HashMap<Hash, Session>,
    sequence: u64,
}

/// The node's open challenges and sessions.
pub struct Sessions {
    table: Mutex<Table>,
    ttl: Duration,
    max_sessions: usize,
}

/// Wall-clock ms since the Unix epoch.
pub(crate) fn wall_ms() -> u64 {
    let elapsed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn token_id(token: &str) -> Hash {
    Hash::digest(TOKEN_DOMAIN, &[token.as_bytes()])
}

impl Sessions {
    /// An empty table: sessions last `ttl`, at most `max_sessions` at once.
    pub fn new(ttl: Duration, max_sessions: usize) -> Arc<Sessions> {
        Arc::new(Sessions { table: Mutex::new(Table::default()), ttl, max_sessions })
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // A panic while holding the lock leaves a consistent table (every change is one
        // insert or remove), so a poisoned lock is still usable.
        self.table.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new challenge for `account` on `chain`, valid for [`CHALLENGE_TTL`].
    pub fn challenge(&self, config: &ChainConfig, account: Address, now_ms: u64) -> LoginChallenge {
        let challenge: [u8; 32] = rand::random();
        let expires = now_ms.saturating_add(duration_ms(CHALLENGE_TTL));
        let mut table = self.lock();
        table.challenges.retain(|_, (_, until, _)| *until >= now_ms);
        if table.challenges.len() >= MAX_CHALLENGES {
            // Drop the oldest: a flood of challenges pushes out only other unanswered ones.
            if let Some(oldest) =
                table.challenges.iter().min_by_key(|(_, (_, _, seq))| *seq).map(|(key, _)| *key)
            {
                table.challenges.remove(&oldest);
            }
        }
        table.sequence = table.sequence.wrapping_add(1);
        let sequence = table.sequence;
        table.challenges.insert(challenge, (account, expires, sequence));
        LoginChallenge {
            chain_id: config.chain_id.clone(),
            account,
            challenge,
            expires: primitives::TimestampMs(expires),
        }
    }

    /// Opens a session for the answer to a challenge. The challenge is used up whether or not
    /// the signature is good.
    pub fn login(
        &self,
        config: &ChainConfig,
        account: Address,
        challenge: [u8; 32],
        signature: &primitives::Signature,
        now_ms: u64,
    ) -> Result<LoggedIn, LoginError> {
        let pending = self.lock().challenges.remove(&challenge);
        let Some((expected, expires, _)) = pending else {
            return Err(LoginError::UnknownChallenge);
        };
        if expected != account {
            return Err(LoginError::UnknownChallenge);
        }
        if expires < now_ms {
            return Err(LoginError::ChallengeExpired);
        }
        let login = LoginChallenge {
            chain_id: config.chain_id.clone(),
            account,
            challenge,
            expires: primitives::TimestampMs(expires),
        };
        login.verify(signature).map_err(|_| LoginError::BadSignature)?;
        let role = if account == config.operator || account == config.issuer {
            Role::Operator
        } else {
            Role::Member
        };
        let token = hex::encode(rand::random::<[u8; 32]>());
        let csrf = hex::encode(rand::random::<[u8; 16]>());
        let session = Session {
            account,
            role,
            expires_ms: now_ms.saturating_add(duration_ms(self.ttl)),
            csrf,
        };
        let mut table = self.lock();
        table.sessions.retain(|_, session| session.expires_ms >= now_ms);
        if table.sessions.len() >= self.max_sessions {
            return Err(LoginError::TooManySessions(self.max_sessions));
        }
        table.sessions.insert(token_id(&token), session.clone());
        Ok(LoggedIn { token, session })
    }

    /// The open session a token names, if any.
    pub fn lookup(&self, token: &str, now_ms: u64) -> Option<(Hash, Session)> {
        let id = token_id(token);
        let table = self.lock();
        table
            .sessions
            .get(&id)
            .filter(|session| session.expires_ms >= now_ms)
            .map(|session| (id, session.clone()))
    }

    /// Whether session `id` is still open.
    pub fn is_open(&self, id: &Hash, now_ms: u64) -> bool {
        self.lock().sessions.get(id).is_some_and(|session| session.expires_ms >= now_ms)
    }

    /// The session `id`, if it is open.
    pub fn get(&self, id: &Hash, now_ms: u64) -> Option<Session> {
        self.lock().sessions.get(id).filter(|session| session.expires_ms >= now_ms).cloned()
    }

    /// Ends session `id`; whether it was open.
    pub fn logout(&self, id: &Hash) -> bool {
        self.lock().sessions.remove(id).is_some()
    }

    /// How many sessions are open.
    pub fn open_sessions(&self, now_ms: u64) -> usize {
        self.lock().sessions.values().filter(|session| session.expires_ms >= now_ms).count()
    }
}

/// Why a login was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// The challenge was never handed out for this account, or was used already.
    #[error("unknown challenge: ask auth_challenge for a new one (each can be used once)")]
    UnknownChallenge,
    /// The challenge is too old.
    #[error("the challenge expired: ask auth_challenge for a new one")]
    ChallengeExpired,
    /// The signature is not the account's over the challenge text.
    #[error("the signature is not the account's over the challenge text")]
    BadSignature,
    /// The node holds as many sessions as it may.
    #[error("the node has {0} open sessions, its limit; try again later")]
    TooManySessions(usize),
}

impl LoginError {
    /// A machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            LoginError::UnknownChallenge => "unknown_challenge",
            LoginError::ChallengeExpired => "challenge_expired",
            LoginError::BadSignature => "bad_signature",
            LoginError::TooManySessions(_) => "too_many_sessions",
        }
    }
}

/// A refused login as a JSON-RPC error.
pub(crate) fn login_error(error: &LoginError) -> jsonrpsee::types::ErrorObjectOwned {
    match error {
        LoginError::TooManySessions(_) => limit_exceeded(error.to_string()),
        _ => crate::errors::invalid_params_because(error.code(), error.to_string()),
    }
}

/// Cookies a method asks the HTTP layer to set on its response (login and logout over HTTP).
#[derive(Clone, Default)]
pub(crate) struct ResponseCookies(pub(crate) Arc<Mutex<Vec<String>>>);

impl ResponseCookies {
    pub(crate) fn push(&self, cookie: String) {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(cookie);
    }

    pub(crate) fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }
}

/// `Set-Cookie` values that hand a browser its session.
pub(crate) fn session_cookies(token: &str, session: &Session, now_ms: u64) -> Vec<String> {
    let max_age = session.expires_ms.saturating_sub(now_ms) / 1000;
    vec![
        format!("{SESSION_COOKIE}={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict"),
        format!("{CSRF_COOKIE}={}; Path=/; Max-Age={max_age}; SameSite=Strict", session.csrf),
    ]
}

/// `Set-Cookie` values that take the session away from a browser.
pub(crate) fn clear_cookies() -> Vec<String> {
    vec![
        format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"),
        format!("{CSRF_COOKIE}=; Path=/; Max-Age=0; SameSite=Strict"),
    ]
}

/// The value of cookie `name` in a `Cookie` header.
pub(crate) fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(key, value)| (key == name && !value.is_empty()).then_some(value))
}

/// What the HTTP layer found in a request's headers.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Credentials<'a> {
    /// None.
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(&'a str),
    /// The session cookie.
    Cookie(&'a str),
}

/// Whether an `Origin` header names the host the request was sent to (`Host`). Requests
/// without an `Origin` (the wallet, curl) are not cross-site.
pub(crate) fn same_origin(origin: Option<&str>, host: Option<&str>) -> bool {
    let Some(origin) = origin else { return true };
    let Some(host) = host else { return false };
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("\u{0}");
    authority.eq_ignore_ascii_case(host)
}

/// Reads the caller's credentials: a bearer token wins over the cookie.
pub(crate) fn credentials<'a>(
    authorization: Option<&'a str>,
    cookie_header: Option<&'a str>,
) -> Credentials<'a> {
    if let Some(token) = authorization.and_then(crate::admin::bearer) {
        return Credentials::Bearer(token);
    }
    match cookie_header.and_then(|header| cookie(header, SESSION_COOKIE)) {
        Some(token) => Credentials::Cookie(token),
        None => Credentials::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use primitives::{ChainId, ChainParams, EngineKind, MarketParams, SecretKey, Validator};

    fn config(operator: Address) -> ChainConfig {
        ChainConfig {
            chain_id: ChainId::new("auth-test").unwrap(),
            engine: EngineKind::Solo,
            validators: vec![Validator { name: "v".into(), key: operator.public_key(), power: 1 }],
            issuer: operator,
            operator,
            params: ChainParams::default(),
            market: MarketParams::default(),
        }
    }

    fn sign(key: &SecretKey, challenge: &LoginChallenge) -> primitives::Signature {
        key.sign(challenge.text().as_bytes())
    }

    #[test]
    fn a_signed_challenge_opens_a_session_with_the_accounts_role() {
        let operator = SecretKey::from_seed([1; 32]);
        let member = SecretKey::from_seed([2; 32]);
        let config = config(Address(operator.public_key()));
        let sessions = Sessions::new(Duration::from_secs(60), 10);
        for (key, role) in [(&operator, Role::Operator), (&member, Role::Member)] {
            let account = Address(key.public_key());
            let challenge = sessions.challenge(&config, account, 1_000);
            let logged_in = sessions
                .login(&config, account, challenge.challenge, &sign(key, &challenge), 2_000)
                .unwrap();
            assert_eq!(logged_in.session.role, role);
            assert_eq!(logged_in.session.expires_ms, 62_000);
            let (id, found) = sessions.lookup(&logged_in.token, 3_000).unwrap();
            assert_eq!(found.account, account);
            assert!(sessions.lookup(&logged_in.token, 62_001).is_none(), "expired");
            assert!(sessions.logout(&id));
            assert!(sessions.lookup(&logged_in.token, 3_000).is_none(), "logged out");
        }
    }

    #[test]
    fn wrong_answers_are_refused_and_use_the_challenge_up() {
        let key = SecretKey::from_seed([2; 32]);
        let other = SecretKey::from_seed([3; 32]);
        let account = Address(key.public_key());
        let config = config(Address(other.public_key()));
        let sessions = Sessions::new(Duration::from_secs(60), 10);

        let challenge = sessions.challenge(&config, account, 1_000);
        let refused =
            sessions.login(&config, account, challenge.challenge, &sign(&other, &challenge), 1_000);
        assert_eq!(refused.unwrap_err(), LoginError::BadSignature);
        let again =
            sessions.login(&config, account, challenge.challenge, &sign(&key, &challenge), 1_000);
        assert_eq!(again.unwrap_err(), LoginError::UnknownChallenge, "used up");

        let challenge = sessions.challenge(&config, account, 1_000);
        let elsewhere = sessions.login(
            &config,
            Address(other.public_key()),
            challenge.challenge,
            &sign(&other, &challenge),
            1_000,
        );
        assert_eq!(elsewhere.unwrap_err(), LoginError::UnknownChallenge, "another account's");

        let challenge = sessions.challenge(&config, account, 1_000);
        let late = sessions.login(
            &config,
            account,
            challenge.challenge,
            &sign(&key, &challenge),
            1_000 + duration_ms(CHALLENGE_TTL) + 1,
        );
        assert_eq!(late.unwrap_err(), LoginError::ChallengeExpired);
        assert_eq!(sessions.open_sessions(1_000), 0);
    }

    #[test]
    fn the_session_table_is_bounded() {
        let key = SecretKey::from_seed([2; 32]);
        let account = Address(key.public_key());
        let config = config(account);
        let sessions = Sessions::new(Duration::from_secs(60), 2);
        let login = |now| {
            let challenge = sessions.challenge(&config, account, now);
            sessions.login(&config, account, challenge.challenge, &sign(&key, &challenge), now)
        };
        login(0).unwrap();
        login(0).unwrap();
        assert_eq!(login(0).unwrap_err(), LoginError::TooManySessions(2));
        // Expired sessions make room.
        assert!(login(60_001).is_ok());
    }

    #[test]
    fn access_follows_the_role() {
        let alice = Address(SecretKey::from_seed([4; 32]).public_key());
        let bob = Address(SecretKey::from_seed([5; 32]).public_key());
        let member = Caller::Session { id: Hash::ZERO, account: alice, role: Role::Member };
        let operator = Caller::Session { id: Hash::ZERO, account: bob, role: Role::Operator };
        assert!(member.require_read(&alice, "x").is_ok());
        assert!(member.require_read(&bob, "x").is_err());
        assert!(operator.require_read(&alice, "x").is_ok());
        assert!(Caller::Admin.require_read(&alice, "x").is_ok());
        for nobody in [Caller::Anonymous, Caller::Expired] {
            let error = nobody.require_read(&alice, "x").unwrap_err();
            assert_eq!(error.code(), crate::errors::LOGIN_REQUIRED);
        }
        assert_eq!(member.require_read(&bob, "x").unwrap_err().code(), crate::errors::FORBIDDEN);
    }

    #[test]
    fn credentials_origin_and_cookies_are_read_strictly() {
        assert_eq!(cookie("a=1; joule_session=abc; b=2", SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie("joule_session=", SESSION_COOKIE), None);
        assert_eq!(cookie("xjoule_session=abc", SESSION_COOKIE), None);
        assert_eq!(
            credentials(Some("Bearer t"), Some("joule_session=c")),
            Credentials::Bearer("t")
        );
        assert_eq!(credentials(None, Some("joule_session=c")), Credentials::Cookie("c"));
        assert_eq!(credentials(Some("Basic x"), None), Credentials::None);
        assert!(same_origin(None, Some("127.0.0.1:8645")));
        assert!(same_origin(Some("http://127.0.0.1:8645"), Some("127.0.0.1:8645")));
        assert!(!same_origin(Some("http://evil.example"), Some("127.0.0.1:8645")));
        assert!(!same_origin(Some("http://127.0.0.1:8646"), Some("127.0.0.1:8645")));
        assert!(!same_origin(Some("null"), Some("127.0.0.1:8645")));
        assert!(!same_origin(Some("http://127.0.0.1:8645"), None));
    }
}
