//! Joule's peer-to-peer transport: TCP connections secured with Noise, authenticated by the
//! node's Ed25519 identity, carrying opaque payloads for the node.
//!
//! The crate owns sockets, sessions, peer bookkeeping (scores, bans, known addresses, dialling
//! with backoff, peer exchange, ping) and gossip de-duplication. It does **not** know what a
//! payload means: the node hands it bytes (its own borsh enum of transactions, proposals, votes,
//! block requests…) and gets bytes back with the [`PeerId`] they came from. It does not validate
//! payloads or forward gossip by itself: the node validates a [`NetEvent::Gossip`] and calls
//! [`NetHandle::gossip`] with `from = Some(peer)` to pass it on.
//!
//! # Structure
//!
//! [`start`] binds the listener and spawns the *network manager*, the one task that owns every
//! piece of peer state. [`NetHandle`] is the cheap cloneable way in (bounded channel; the
//! fire-and-forget calls never block and drop with a warning when the manager is saturated).
//! Each connection is one task (spawned and joined by the manager) that runs the handshake, then
//! reads and writes its socket, answers pings, measures round trips, rate-limits the peer and
//! notices silence. The manager never waits on a connection: each peer has a bounded outbound
//! queue, and when it is full gossip for that peer is dropped and counted
//! ([`PeerInfo::dropped`]). Events for the node go through a bounded channel the same way:
//! beyond [`NetConfig::event_queue`] they are dropped with a warning, so the node must keep
//! reading its event stream. The manager never waits for the node, so awaiting
//! [`NetHandle::peers`] from the loop that reads the events cannot deadlock.
//!
//! # Wire format
//!
//! * **Frame**: a big-endian `u32` length, then that many bytes (`LengthDelimitedCodec`). A length
//!   above the cap is refused before the body is read or allocated, and the connection is
//!   dropped. The cap is 4096 bytes during the handshake and hello, then
//!   `max_frame_bytes + 64` bytes of plaintext plus 16 bytes per Noise message.
//! * **Handshake**: `Noise_XX_25519_ChaChaPoly_BLAKE2s` with prologue `joule/net/v1`, its three
//!   messages one frame each, with empty payloads. Every process has a fresh X25519 static key;
//!   the long-term identity is the Ed25519 key, bound to the session by the hello. Timeout:
//!   [`NetConfig::handshake_timeout`].
//! * **Sealed frame**: after the handshake the body of every frame is one or more Noise transport
//!   messages. The plaintext is cut into pieces of 65519 bytes (65535 with the 16-byte tag), all
//!   full except the last, so the receiver cuts the body at every 65535 bytes. Nonces count up
//!   per direction from 0; a reordered, replayed or altered frame fails to decrypt and drops the
//!   connection. The plaintext is one borsh `WireMessage`.
//! * **Hello**: the first message each side sends (both at once): `protocol_version: u32`,
//!   `chain_id: String`, `genesis_hash: [u8; 32]`, `identity` (Ed25519 public key = the
//!   [`PeerId`]), `listen` (the advertised address, a claim that is dialled before it is
//!   trusted; an unspecified IP means "the address you see me from"), and an Ed25519 signature
//!   over `b"joule/net/hello/v1" || handshake_hash`.
//!   Each side verifies the signature against *its own* handshake hash, so a hello cannot be
//!   replayed into another session. A different version, chain or genesis, a bad signature, our
//!   own key, a banned or blocked key, or no slot for the peer closes the connection.
//! * **Messages** (`WireMessage`, borsh, tag byte first): `Hello` (0), `Ping(u64)` (1) and
//!   `Pong(u64)` (2) (the pinger's clock in microseconds, echoed), `GetPeers` (3) and
//!   `Peers(Vec<addr>)` (4, at most 32 addresses) are internal; `Gossip(bytes)` (5) and
//!   `Direct(bytes)` (6) carry the node's payloads. A frame that does not decode lowers the
//!   sender's score.
//!
//! # Peers
//!
//! One connection per [`PeerId`]: when two exist (simultaneous dials), both sides keep the one
//! dialled by the smaller key (or the newer one if the same side dialled both). Bootstrap
//! addresses and those given to [`NetHandle::add_peer`] are redialled forever with exponential
//! backoff (250 ms doubling to 30 s, reset on success), whatever the inbound load; addresses
//! learnt by peer exchange, and the listen addresses peers claim in their hellos, are dialled
//! while there are fewer than [`NetConfig::target_outbound`] outbound connections and forgotten
//! after repeated failures.
//!
//! **Addresses are verified by dialling.** The listen address in a hello is a claim: it is only
//! a candidate to dial. An address is bound to an identity when we dial it and that identity
//! answers; only such addresses are passed on in peer exchange, count as "connected" for
//! redialling, and are banned with their identity. A throwaway identity that claims an honest
//! node's address therefore gains nothing: dialling the address finds the honest node.
//!
//! **Slots.** Peers that are not reserved share [`NetConfig::max_peers`], of which those that
//! dialled us get what the outbound target leaves, at most [`NetConfig::max_inbound_per_ip`]
//! from one IP address and [`NetConfig::max_inbound_per_subnet`] from one IPv4 /24 or IPv6 /48.
//! Reserved peers (the identities of [`NetConfig::reserved`] / [`NetHandle::set_reserved`],
//! peers at bootstrap and `add_peer` addresses) are admitted on top of every cap. Handshakes in
//! progress are capped in total and per IP before anyone's identity is known.
//!
//! **Budgets.** Each peer's outbound queue is bounded in messages and in bytes
//! ([`NetConfig::max_queued_bytes`]); a peer whose socket does not take a message within
//! [`NetConfig::write_timeout`] is dropped. Payloads a peer sent that the node still holds are
//! bounded per peer and in total ([`NetConfig::max_peer_inbound_bytes`],
//! [`NetConfig::max_inbound_bytes`]): beyond, the peer's socket is not read until the node lets
//! go of some (TCP flow control slows the sender, nobody else).
//!
//! **Scores and bans.** Scores start at 0; [`NetHandle::report`], undecodable messages and
//! messages above the rate limit lower them; at [`BAN_SCORE`] or below the peer is
//! disconnected and its key, and the addresses where we dialled and found it, are refused for
//! [`NetConfig::ban_duration`] ([`NetConfig::reserved_ban_duration`] for reserved peers, which
//! are dialled again as soon as their ban ends).

mod connection;
mod manager;
#[cfg(any(test, feature = "testing"))]
pub mod raw;
mod seen;
mod slots;
mod wire;

#[cfg(test)]
mod tests;

use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

/// The wire protocol version this crate speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// A score at or below this disconnects and bans the peer.
pub const BAN_SCORE: i32 = -100;

/// A peer is named by its Ed25519 public key.
pub type PeerId = primitives::PublicKey;

/// How the network runs. [`NetConfig::new`] gives defaults for everything but the identity.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// Where to listen; port 0 picks one ([`NetHandle::local_addr`] tells which).
    pub listen: SocketAddr,
    /// Dialled at start and redialled with backoff for as long as the network runs.
    pub bootstrap: Vec<SocketAddr>,
    /// The node's Ed25519 key; its public key is our [`PeerId`].
    pub identity: primitives::SecretKey,
    /// Peers on another chain are refused in the hello.
    pub chain_id: String,
    /// Peers with another genesis are refused in the hello.
    pub genesis_hash: [u8; 32],
    /// Peers speaking another version are refused in the hello ([`PROTOCOL_VERSION`]).
    pub protocol_version: u32,
    /// Largest application payload; a larger frame is refused before it is read.
    pub max_frame_bytes: usize,
    /// Most connected peers, inbound and outbound together.
    pub max_peers: usize,
    /// Known addresses are dialled until this many outbound connections exist.
    pub target_outbound: usize,
    /// Most peers a payload received from another peer is passed on to, chosen at random among
    /// those not known to have it ([`NetHandle::gossip`] with `from = Some(_)`); the node's own
    /// payloads go to every peer.
    pub relay_fanout: usize,
    /// Messages a peer may send per second (burst: one second's worth); the excess is dropped
    /// and lowers its score.
    pub max_messages_per_sec: u32,
    /// How often each connection pings.
    pub ping_interval: Duration,
    /// A peer that sends nothing for this long is dropped.
    pub dead_after: Duration,
    /// How long a banned peer's key and addresses are refused.
    pub ban_duration: Duration,
    /// The address told to others (default: the bound listen address).
    pub advertise: Option<SocketAddr>,
    /// Deadline for connecting, the Noise handshake and the hellos.
    pub handshake_timeout: Duration,
    /// How often every peer is asked for the addresses it knows.
    pub peer_exchange_interval: Duration,
    /// Messages queued per peer before gossip for it is dropped.
    pub outbound_queue: usize,
    /// Bytes queued per peer (and not yet written to its socket) beyond which messages for it
    /// are dropped; one message is always let through, however large, when nothing is queued.
    pub max_queued_bytes: usize,
    /// A peer whose socket takes longer than this to accept one message (it does not read) is
    /// dropped.
    pub write_timeout: Duration,
    /// Bytes of payloads one peer may have received that the node has not yet finished with;
    /// beyond it, that peer's connection is not read until the node catches up (at least the
    /// largest message).
    pub max_peer_inbound_bytes: usize,
    /// The same for all peers together.
    pub max_inbound_bytes: usize,
    /// Capacity of the event channel returned by [`start`]; events beyond it are dropped.
    pub event_queue: usize,
    /// Identities that are always admitted, beyond every cap (the chain's validators; see
    /// [`NetHandle::set_reserved`]). Peers at bootstrap and `add_peer` addresses are reserved
    /// too.
    pub reserved: Vec<PeerId>,
    /// Most peers that dialled us from one IP address (reserved peers not counted).
    pub max_inbound_per_ip: usize,
    /// Most peers that dialled us from one subnet, IPv4 /24 or IPv6 /48 (reserved peers not
    /// counted).
    pub max_inbound_per_subnet: usize,
    /// Most inbound connections still in their handshake.
    pub max_pending_handshakes: usize,
    /// Most inbound connections from one IP address still in their handshake.
    pub max_pending_per_ip: usize,
    /// How long a reserved peer's key and addresses are refused after a ban (it is retried
    /// after that: a validator's fault is more often passing than malicious).
    pub reserved_ban_duration: Duration,
}

impl NetConfig {
    /// A configuration with sensible defaults: no bootstrap peers, 4 MiB payloads, 50 peers,
    /// 8 outbound, at most 4 inbound peers per IP address and 16 per subnet, 1000 messages per
    /// second, 4 MiB queued per peer, ping every 10 s, dead after 30 s, 10-minute bans (30 s for
    /// reserved peers).
    pub fn new(
        listen: SocketAddr,
        identity: primitives::SecretKey,
        chain_id: impl Into<String>,
        genesis_hash: [u8; 32],
    ) -> NetConfig {
        NetConfig {
            listen,
            bootstrap: Vec::new(),
            identity,
            chain_id: chain_id.into(),
            genesis_hash,
            protocol_version: PROTOCOL_VERSION,
            max_frame_bytes: 4 * 1024 * 1024,
            max_peers: 50,
            target_outbound: 8,
            relay_fanout: 8,
            max_messages_per_sec: 1000,
            ping_interval: Duration::from_secs(10),
            dead_after: Duration::from_secs(30),
            ban_duration: Duration::from_secs(600),
            advertise: None,
            handshake_timeout: Duration::from_secs(5),
            peer_exchange_interval: Duration::from_secs(30),
            outbound_queue: 1024,
            max_queued_bytes: 4 << 20,
            write_timeout: Duration::from_secs(20),
            max_peer_inbound_bytes: 8 << 20,
            max_inbound_bytes: 64 << 20,
            event_queue: 4096,
            reserved: Vec::new(),
            max_inbound_per_ip: 4,
            max_inbound_per_subnet: 16,
            max_pending_handshakes: 64,
            max_pending_per_ip: 8,
            reserved_ban_duration: Duration::from_secs(30),
        }
    }
}

/// What the network tells the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetEvent {
    /// A gossiped payload seen for the first time (by SHA-256).
    Gossip {
        /// The peer that sent it.
        from: PeerId,
        /// The node's bytes.
        payload: Bytes,
    },
    /// A direct (request/response) payload; never de-duplicated.
    Direct {
        /// The peer that sent it.
        from: PeerId,
        /// The node's bytes.
        payload: Bytes,
    },
    /// A peer finished the handshake and was admitted.
    Connected {
        /// Its identity.
        peer: PeerId,
        /// The socket address of the connection.
        addr: SocketAddr,
        /// Whether we dialled it.
        outbound: bool,
    },
    /// A connected peer went away (closed, dead, removed, banned or blocked).
    Disconnected {
        /// Its identity.
        peer: PeerId,
    },
}

/// What a connected peer looks like from here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its identity.
    pub id: PeerId,
    /// The socket address of the connection.
    pub addr: SocketAddr,
    /// Whether we dialled it.
    pub outbound: bool,
    /// Round trip of the last answered ping.
    pub latency: Option<Duration>,
    /// Starts at 0; at [`BAN_SCORE`] or below the peer is banned.
    pub score: i32,
    /// When the connection was admitted.
    pub connected_since: SystemTime,
    /// Messages for it dropped because its outbound queue was full.
    pub dropped: u64,
    /// Whether it has a reserved slot (a configured validator, or at a bootstrap or
    /// `add_peer` address).
    pub reserved: bool,
}

/// Something a peer did wrong, reported by the node (or found by the network itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misbehaviour {
    /// A payload that does not decode or makes no sense.
    InvalidMessage,
    /// A transaction with a bad signature or that can never execute.
    InvalidTransaction,
    /// A block or proposal that fails validation.
    InvalidBlock,
    /// A vote that fails validation.
    InvalidVote,
    /// Too many messages, or requests it should not make.
    Spam,
    /// It did not answer a request in time.
    Unresponsive,
}

impl Misbehaviour {
    /// How much the score goes down.
    pub fn penalty(self) -> i32 {
        match self {
            Misbehaviour::InvalidMessage => 20,
            Misbehaviour::InvalidTransaction => 10,
            Misbehaviour::InvalidBlock => 50,
            Misbehaviour::InvalidVote => 50,
            Misbehaviour::Spam => 10,
            Misbehaviour::Unresponsive => 5,
        }
    }
}

/// What can go wrong in the network.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A socket operation failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The Noise handshake or a decryption failed.
    #[error("noise: {0}")]
    Noise(#[from] snow::Error),
    /// A frame's length prefix was over the cap.
    #[error("frame too large")]
    FrameTooLarge,
    /// The peer speaks another protocol version.
    #[error("peer speaks protocol version {0}")]
    VersionMismatch(u32),
    /// The peer is on another chain.
    #[error("peer is on chain {0:?}")]
    ChainMismatch(String),
    /// The peer has another genesis.
    #[error("peer has another genesis")]
    GenesisMismatch,
    /// The hello's signature does not match our handshake hash.
    #[error("bad hello signature")]
    BadSignature,
    /// We dialled ourselves.
    #[error("connected to ourselves")]
    SelfConnection,
    /// The handshake did not finish in time.
    #[error("handshake timed out")]
    HandshakeTimeout,
    /// The manager refused the peer (duplicate, banned, blocked or full).
    #[error("peer refused")]
    Refused,
    /// A message did not decode or came at the wrong time.
    #[error("invalid message: {0}")]
    InvalidMessage(String),
    /// The peer sent nothing for `dead_after`.
    #[error("peer silent for too long")]
    Dead,
    /// The peer did not take a message within `write_timeout`.
    #[error("peer does not read")]
    WriteTimeout,
    /// The peer closed the connection.
    #[error("connection closed")]
    ConnectionClosed,
    /// The address is banned.
    #[error("address is banned")]
    Banned,
    /// The network has shut down.
    #[error("network is shut down")]
    Shutdown,
}

/// Requests from handles to the manager.
pub(crate) enum Command {
    Gossip { payload: Bytes, from: Option<PeerId> },
    Send { peer: PeerId, payload: Bytes, written: Option<oneshot::Sender<()>> },
    Report { peer: PeerId, misbehaviour: Misbehaviour },
    Peers { reply: oneshot::Sender<Vec<PeerInfo>> },
    AddPeer { addr: SocketAddr, reply: oneshot::Sender<Result<(), NetError>> },
    RemovePeer { peer: PeerId, reply: oneshot::Sender<bool> },
    SetBlocked { peers: Vec<PeerId> },
    SetReserved { peers: Vec<PeerId> },
}

/// Capacity of the command channel.
const COMMAND_QUEUE: usize = 4096;

struct HandleInner {
    commands: mpsc::Sender<Command>,
    local_addr: SocketAddr,
    peer_id: PeerId,
    shutdown: CancellationToken,
    stopped: watch::Receiver<bool>,
}

/// The cheap cloneable way into the network. Dropping every handle shuts the network down.
#[derive(Clone)]
pub struct NetHandle {
    inner: Arc<HandleInner>,
}

impl std::fmt::Debug for NetHandle {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("NetHandle")
            .field("local_addr", &self.inner.local_addr)
            .field("peer_id", &self.inner.peer_id)
            .finish()
    }
}

impl NetHandle {
    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// Our identity.
    pub fn peer_id(&self) -> PeerId {
        self.inner.peer_id
    }

    fn command(&self, command: Command) {
        if let Err(error) = self.inner.commands.try_send(command) {
            tracing::warn!(%error, "network command dropped");
        }
    }

    async fn request<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (reply, receive) = oneshot::channel();
        self.inner.commands.send(make(reply)).await.ok()?;
        receive.await.ok()
    }

    /// Sends `payload` to every connected peer except `from` and those known to have it, and
    /// marks it seen so that an echo is not delivered again. With `from = Some(_)` (passing on
    /// a peer's payload) it goes to at most [`NetConfig::relay_fanout`] of them, chosen at
    /// random. Never blocks.
    pub fn gossip(&self, payload: Bytes, from: Option<PeerId>) {
        self.command(Command::Gossip { payload, from });
    }

    /// Sends `payload` to one peer (dropped if it is not connected). Never blocks.
    pub fn send(&self, peer: PeerId, payload: Bytes) {
        self.command(Command::Send { peer, payload, written: None });
    }

    /// Sends `payload` to one peer and waits until it has been written to the peer's socket:
    /// true then, false when it was dropped (not connected, queue over its byte budget) or the
    /// connection ended first. A server that answers one request of a peer at a time with this
    /// never holds more than one answer for a peer that does not read.
    pub async fn send_and_wait(&self, peer: PeerId, payload: Bytes) -> bool {
        let (written, done) = oneshot::channel();
        if self
            .inner
            .commands
            .send(Command::Send { peer, payload, written: Some(written) })
            .await
            .is_err()
        {
            return false;
        }
        done.await.is_ok()
    }

    /// Lowers the peer's score by the misbehaviour's penalty (and bans it at [`BAN_SCORE`]).
    pub fn report(&self, peer: PeerId, misbehaviour: Misbehaviour) {
        self.command(Command::Report { peer, misbehaviour });
    }

    /// The connected peers (empty once shut down).
    pub async fn peers(&self) -> Vec<PeerInfo> {
        self.request(|reply| Command::Peers { reply }).await.unwrap_or_default()
    }

    /// Dials `addr` now and keeps redialling it with backoff while it is not connected.
    pub async fn add_peer(&self, addr: SocketAddr) -> Result<(), NetError> {
        self.request(|reply| Command::AddPeer { addr, reply })
            .await
            .unwrap_or(Err(NetError::Shutdown))
    }

    /// Disconnects the peer and stops redialling its addresses; whether it was connected.
    pub async fn remove_peer(&self, peer: PeerId) -> bool {
        self.request(|reply| Command::RemovePeer { peer, reply }).await.unwrap_or(false)
    }

    /// Fault injection for tests: drops all traffic to and from these peers and refuses or
    /// closes their connections, until called again (an empty list unblocks everyone).
    pub fn set_blocked(&self, peers: Vec<PeerId>) {
        self.command(Command::SetBlocked { peers });
    }

    /// Replaces the identities that are always admitted (the chain's validators, say) beyond
    /// every cap on peers. Never blocks.
    pub fn set_reserved(&self, peers: Vec<PeerId>) {
        self.command(Command::SetReserved { peers });
    }

    /// Closes every connection and the listener; see [`NetHandle::stopped`].
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
    }

    /// Waits until the manager and every connection task have ended.
    pub async fn stopped(&self) {
        let mut stopped = self.inner.stopped.clone();
        let _ = stopped.wait_for(|stopped| *stopped).await;
    }
}

/// Binds the listener, starts the network manager (which dials the bootstrap addresses) and
/// returns the handle and the event stream. The stream ends when the network stops.
pub async fn start(config: NetConfig) -> Result<(NetHandle, mpsc::Receiver<NetEvent>), NetError> {
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let local_addr = listener.local_addr()?;
    let (commands, command_receiver) = mpsc::channel(COMMAND_QUEUE);
    let (events, event_receiver) = mpsc::channel(config.event_queue.max(1));
    let (stopped_sender, stopped) = watch::channel(false);
    let shutdown = CancellationToken::new();
    let peer_id = config.identity.public_key();
    manager::spawn(manager::ManagerParts {
        config,
        listener,
        local_addr,
        commands: command_receiver,
        events,
        shutdown: shutdown.clone(),
        stopped: stopped_sender,
    })?;
    let handle = NetHandle {
        inner: Arc::new(HandleInner { commands, local_addr, peer_id, shutdown, stopped }),
    };
    Ok((handle, event_receiver))
}
