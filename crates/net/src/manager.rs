//! The network manager: the one task that owns peers, known addresses, scores, bans and the
//! gossip de-duplication set. It never waits on a connection or on the node.

use crate::connection::{ConnEvent, Connection, Inbound, Limits, Outbound, Ready, Target};
use crate::seen::SeenSet;
use crate::slots::{self, Class, SlotLimits};
use crate::wire::{self, LocalIdentity, MAX_PEERS_PER_MESSAGE, WireAddr, WireMessage};
use crate::{BAN_SCORE, Command, NetConfig, NetError, NetEvent, PeerId, PeerInfo};
use bytes::Bytes;
use rand::seq::SliceRandom;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// First redial delay; doubles on every failure.
const INITIAL_BACKOFF: Duration = Duration::from_millis(250);
/// Longest redial delay.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Failed dials after which an address learnt from peer exchange is forgotten.
const MAX_LEARNT_FAILURES: u32 = 6;
/// Most addresses remembered.
const MAX_KNOWN_ADDRESSES: usize = 1024;
/// Gossip hashes remembered globally.
const SEEN_CAPACITY: usize = 100_000;
/// Gossip hashes remembered per peer (what it is known to have).
const PEER_KNOWN_CAPACITY: usize = 8192;
/// How long a gossip hash is remembered.
const SEEN_TTL: Duration = Duration::from_secs(600);
/// How often the manager dials, expires bans and exchanges peers.
const TICK: Duration = Duration::from_millis(100);
/// Capacity of the channel from connection tasks.
const CONNECTION_EVENT_QUEUE: usize = 1024;
/// Domain tag of gossip de-duplication hashes (SHA-256 over tag and payload).
const GOSSIP_DOMAIN: &[u8] = b"joule/net/gossip/v1";
/// Most dials in progress at once.
const MAX_PENDING_DIALS: usize = 16;
/// Refused connections are logged at most this often (with how many since the last line).
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

pub(crate) struct ManagerParts {
    pub(crate) config: NetConfig,
    pub(crate) listener: TcpListener,
    pub(crate) local_addr: SocketAddr,
    pub(crate) commands: mpsc::Receiver<Command>,
    pub(crate) events: mpsc::Sender<NetEvent>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) stopped: watch::Sender<bool>,
}

struct Peer {
    conn_id: u64,
    /// The socket address of the connection.
    addr: SocketAddr,
    /// Where it says it listens (its hello), not verified: never announced, bound or banned.
    claimed: Option<SocketAddr>,
    /// An address where we dialled it and found it (announced to others, banned with it).
    verified: Option<SocketAddr>,
    outbound: bool,
    reserved: bool,
    sender: mpsc::Sender<Outbound>,
    /// Bytes queued and not yet written to its socket.
    queued: Arc<AtomicUsize>,
    cancel: CancellationToken,
    score: i32,
    latency: Option<Duration>,
    connected_since: SystemTime,
    dropped: u64,
    known: SeenSet,
}

impl Peer {
    fn class(&self) -> Class {
        if self.reserved {
            Class::Reserved
        } else if self.outbound {
            Class::Outbound
        } else {
            Class::Inbound
        }
    }
}

struct Pending {
    dial: Option<SocketAddr>,
    /// The IP of an inbound connection.
    from: Option<IpAddr>,
    cancel: CancellationToken,
}

struct KnownAddr {
    /// Bootstrap or `add_peer`: redialled forever.
    persistent: bool,
    dialing: bool,
    next_attempt: Instant,
    backoff: Duration,
    failures: u32,
    /// The identity that answered the last time we dialled this address (nobody else can bind
    /// an address to an identity: claims in hellos and peer exchange are only dialled).
    peer: Option<PeerId>,
}

impl KnownAddr {
    fn new(persistent: bool, now: Instant) -> KnownAddr {
        KnownAddr {
            persistent,
            dialing: false,
            next_attempt: now,
            backoff: INITIAL_BACKOFF,
            failures: 0,
            peer: None,
        }
    }

    fn failed(&mut self, now: Instant) {
        self.dialing = false;
        self.failures = self.failures.saturating_add(1);
        self.next_attempt = now + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }
}

/// Counts refusals between log lines, so that a flood is visible without flooding the log.
#[derive(Default)]
struct RefusalLog {
    count: u64,
    last: Option<Instant>,
}

impl RefusalLog {
    fn refused(&mut self, remote: SocketAddr, reason: &str) {
        self.count = self.count.saturating_add(1);
        let now = Instant::now();
        if self.last.is_none_or(|last| now.duration_since(last) >= REFUSAL_LOG_INTERVAL) {
            tracing::warn!(%remote, reason, refused = self.count, "refusing peer connections");
            self.count = 0;
            self.last = Some(now);
        } else {
            tracing::debug!(%remote, reason, "peer connection refused");
        }
    }
}

struct Manager {
    config: NetConfig,
    local: Arc<LocalIdentity>,
    limits: Arc<Limits>,
    advertised: SocketAddr,
    events: mpsc::Sender<NetEvent>,
    connection_events: mpsc::Sender<ConnEvent>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    next_conn_id: u64,
    peers: HashMap<PeerId, Peer>,
    pending: HashMap<u64, Pending>,
    known: HashMap<SocketAddr, KnownAddr>,
    removed: HashSet<SocketAddr>,
    banned_keys: HashMap<PeerId, Instant>,
    banned_addrs: HashMap<SocketAddr, Instant>,
    blocked: HashSet<PeerId>,
    reserved: HashSet<PeerId>,
    slot_limits: SlotLimits,
    refusals: RefusalLog,
    seen: SeenSet,
    dropped_events: u64,
    next_exchange: Instant,
}

pub(crate) fn spawn(parts: ManagerParts) -> Result<(), NetError> {
    let ManagerParts { config, listener, local_addr, commands, events, shutdown, stopped } = parts;
    let params: snow::params::NoiseParams = wire::NOISE_PARAMS.parse()?;
    let noise_key = snow::Builder::new(params).generate_keypair()?;
    let advertised = config.advertise.unwrap_or(local_addr);
    let local = Arc::new(LocalIdentity {
        secret: config.identity.clone(),
        peer_id: config.identity.public_key(),
        noise_private: noise_key.private,
        chain_id: config.chain_id.clone(),
        genesis_hash: config.genesis_hash,
        protocol_version: config.protocol_version,
        listen: advertised,
    });
    let max_plaintext = wire::max_plaintext(config.max_frame_bytes);
    let limits = Arc::new(Limits {
        max_frame: wire::max_frame(max_plaintext),
        max_messages_per_sec: config.max_messages_per_sec,
        ping_interval: config.ping_interval,
        dead_after: config.dead_after,
        handshake_timeout: config.handshake_timeout,
        outbound_queue: config.outbound_queue,
        write_timeout: config.write_timeout,
        // Both budgets hold at least one message of the largest size, or it could never pass.
        peer_inbound_bytes: config.max_peer_inbound_bytes.max(max_plaintext),
        inbound: Arc::new(Semaphore::new(config.max_inbound_bytes.max(max_plaintext))),
    });
    let slot_limits = SlotLimits::new(
        config.max_peers,
        config.target_outbound,
        config.max_inbound_per_ip,
        config.max_inbound_per_subnet,
    );
    let (connection_events, connection_receiver) = mpsc::channel(CONNECTION_EVENT_QUEUE);
    let now = Instant::now();
    let mut known = HashMap::new();
    for addr in &config.bootstrap {
        known.insert(*addr, KnownAddr::new(true, now));
    }
    let manager = Manager {
        local,
        limits,
        advertised,
        events,
        connection_events,
        shutdown,
        tasks: JoinSet::new(),
        next_conn_id: 0,
        peers: HashMap::new(),
        pending: HashMap::new(),
        known,
        removed: HashSet::new(),
        banned_keys: HashMap::new(),
        banned_addrs: HashMap::new(),
        blocked: HashSet::new(),
        reserved: config.reserved.iter().copied().collect(),
        slot_limits,
        refusals: RefusalLog::default(),
        seen: SeenSet::new(SEEN_CAPACITY, SEEN_TTL),
        dropped_events: 0,
        next_exchange: now + config.peer_exchange_interval,
        config,
    };
    tracing::info!(%local_addr, peer_id = ?manager.local.peer_id, "network started");
    tokio::spawn(async move {
        manager.run(listener, commands, connection_receiver).await;
        let _ = stopped.send(true);
    });
    Ok(())
}

fn gossip_hash(payload: &[u8]) -> [u8; 32] {
    primitives::Hash::digest(GOSSIP_DOMAIN, &[payload]).0
}

impl Manager {
    async fn run(
        mut self,
        listener: TcpListener,
        mut commands: mpsc::Receiver<Command>,
        mut connection_receiver: mpsc::Receiver<ConnEvent>,
    ) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => break,
                command = commands.recv() => match command {
                    Some(command) => self.command(command),
                    None => break,
                },
                Some(event) = connection_receiver.recv() => self.connection_event(event),
                accepted = listener.accept() => match accepted {
                    Ok((stream, remote)) => self.accept(stream, remote),
                    Err(error) => tracing::warn!(%error, "accept failed"),
                },
                _ = tick.tick() => self.tick(),
                Some(joined) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    if let Err(error) = joined
                        && error.is_panic()
                    {
                        tracing::error!(%error, "connection task panicked");
                    }
                }
            }
        }
        tracing::info!(peers = self.peers.len(), "network shutting down");
        drop(listener);
        self.shutdown.cancel();
        connection_receiver.close();
        while self.tasks.join_next().await.is_some() {}
        for peer in std::mem::take(&mut self.peers).into_keys() {
            let _ = self.events.try_send(NetEvent::Disconnected { peer });
        }
        tracing::info!("network stopped");
    }

    fn emit(&mut self, event: NetEvent) {
        if self.events.try_send(event).is_err() {
            self.dropped_events = self.dropped_events.saturating_add(1);
            tracing::warn!(
                dropped = self.dropped_events,
                "event queue full or closed; event dropped"
            );
        }
    }

    fn spawn_connection(&mut self, target: Target, dial: Option<SocketAddr>) {
        let conn_id = self.next_conn_id;
        self.next_conn_id = self.next_conn_id.wrapping_add(1);
        let cancel = self.shutdown.child_token();
        let from = match &target {
            Target::Accepted(_, remote) => Some(remote.ip().to_canonical()),
            Target::Dial(_) => None,
        };
        self.pending.insert(conn_id, Pending { dial, from, cancel: cancel.clone() });
        let connection = Connection {
            conn_id,
            local: self.local.clone(),
            limits: self.limits.clone(),
            manager: self.connection_events.clone(),
            cancel,
        };
        self.tasks.spawn(connection.run(target));
    }

    fn is_banned_addr(&mut self, addr: &SocketAddr, now: Instant) -> bool {
        match self.banned_addrs.get(addr) {
            Some(until) if *until > now => true,
            Some(_) => {
                self.banned_addrs.remove(addr);
                false
            }
            None => false,
        }
    }

    fn is_banned_key(&mut self, peer: &PeerId, now: Instant) -> bool {
        match self.banned_keys.get(peer) {
            Some(until) if *until > now => true,
            Some(_) => {
                self.banned_keys.remove(peer);
                false
            }
            None => false,
        }
    }

    /// Inbound connections are only counted here, before anyone knows who they are: whether
    /// there is a slot is decided once the peer has proven its identity (reserved peers always
    /// get one).
    fn accept(&mut self, stream: tokio::net::TcpStream, remote: SocketAddr) {
        let ip = remote.ip().to_canonical();
        let handshaking = self.pending.values().filter(|pending| pending.from.is_some());
        let (total, from_ip) = handshaking.fold((0usize, 0usize), |(total, from_ip), pending| {
            (total + 1, from_ip + usize::from(pending.from == Some(ip)))
        });
        if total >= self.config.max_pending_handshakes {
            self.refusals.refused(remote, "too many handshakes in progress");
            return;
        }
        if from_ip >= self.config.max_pending_per_ip {
            self.refusals.refused(remote, "too many handshakes from this address");
            return;
        }
        self.spawn_connection(Target::Accepted(stream, remote), None);
    }

    fn dial(&mut self, addr: SocketAddr) {
        if let Some(known) = self.known.get_mut(&addr) {
            known.dialing = true;
        }
        tracing::debug!(%addr, "dialling");
        self.spawn_connection(Target::Dial(addr), Some(addr));
    }

    fn is_own_addr(&self, addr: &SocketAddr) -> bool {
        *addr == self.advertised || *addr == self.config.listen
    }

    /// Whether a peer gets a reserved slot: a configured identity, one found at a bootstrap or
    /// `add_peer` address, or one we reach by dialling such an address now.
    fn is_reserved(&self, peer: &PeerId, dial: Option<SocketAddr>) -> bool {
        self.reserved.contains(peer)
            || dial.is_some_and(|addr| self.known.get(&addr).is_some_and(|known| known.persistent))
            || self.known.values().any(|known| known.persistent && known.peer == Some(*peer))
    }

    /// Dials what is due. Bootstrap and `add_peer` addresses are dialled whatever the inbound
    /// load (their peers get reserved slots); learnt addresses while there are fewer than
    /// `target_outbound` outbound peers that are not reserved.
    fn tick(&mut self) {
        let now = Instant::now();
        self.banned_keys.retain(|_, until| *until > now);
        self.banned_addrs.retain(|_, until| *until > now);
        let mut learnt_outbound =
            self.peers.values().filter(|peer| peer.outbound && !peer.reserved).count()
                + self
                    .pending
                    .values()
                    .filter_map(|pending| pending.dial)
                    .filter(|addr| self.known.get(addr).is_none_or(|known| !known.persistent))
                    .count();
        let mut dialling = self.pending.values().filter(|pending| pending.dial.is_some()).count();
        let mut due: Vec<(SocketAddr, bool)> = Vec::new();
        for (addr, known) in &self.known {
            let connected = known.peer.is_some_and(|peer| self.peers.contains_key(&peer));
            if known.dialing || connected || known.next_attempt > now {
                continue;
            }
            due.push((*addr, known.persistent));
        }
        // Persistent addresses first.
        due.sort_by_key(|(_, persistent)| !persistent);
        for (addr, persistent) in due {
            if self.is_own_addr(&addr) || self.is_banned_addr(&addr, now) {
                continue;
            }
            if dialling >= MAX_PENDING_DIALS {
                break;
            }
            if persistent {
                self.dial(addr);
                dialling += 1;
            } else if learnt_outbound < self.config.target_outbound {
                self.dial(addr);
                dialling += 1;
                learnt_outbound += 1;
            }
        }
        if now >= self.next_exchange {
            self.next_exchange = now + self.config.peer_exchange_interval;
            let request = WireMessage::GetPeers.encode();
            let ids: Vec<PeerId> = self.peers.keys().copied().collect();
            for peer in ids {
                self.send_to(peer, request.clone(), None);
            }
        }
    }

    /// Queues a sealed-to-be plaintext for one peer, counting a drop when its queue is full (in
    /// messages or in bytes; one message always fits into an empty queue).
    fn send_to(
        &mut self,
        peer: PeerId,
        plaintext: Bytes,
        written: Option<oneshot::Sender<()>>,
    ) -> bool {
        let Some(entry) = self.peers.get_mut(&peer) else { return false };
        let size = plaintext.len();
        let queued = entry.queued.fetch_add(size, Ordering::Relaxed);
        let over_budget = queued > 0 && queued.saturating_add(size) > self.config.max_queued_bytes;
        let sent = !over_budget && entry.sender.try_send(Outbound { plaintext, written }).is_ok();
        if !sent {
            entry.queued.fetch_sub(size, Ordering::Relaxed);
            entry.dropped = entry.dropped.saturating_add(1);
            tracing::debug!(
                ?peer,
                dropped = entry.dropped,
                queued,
                "outbound queue full; message dropped"
            );
        }
        sent
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Gossip { payload, from } => self.gossip(payload, from),
            Command::Send { peer, payload, written } => {
                if payload.len() > self.config.max_frame_bytes {
                    tracing::warn!(
                        ?peer,
                        size = payload.len(),
                        "direct payload over max_frame_bytes dropped"
                    );
                    return;
                }
                if self.blocked.contains(&peer) {
                    return;
                }
                let plaintext = WireMessage::Direct(payload.to_vec()).encode();
                if !self.send_to(peer, plaintext, written) {
                    tracing::debug!(?peer, "direct message not queued");
                }
            }
            Command::Report { peer, misbehaviour } => {
                self.penalize(peer, misbehaviour.penalty(), "reported");
            }
            Command::Peers { reply } => {
                let peers = self
                    .peers
                    .iter()
                    .map(|(id, peer)| PeerInfo {
                        id: *id,
                        addr: peer.addr,
                        outbound: peer.outbound,
                        latency: peer.latency,
                        score: peer.score,
                        connected_since: peer.connected_since,
                        dropped: peer.dropped,
                        reserved: peer.reserved,
                    })
                    .collect();
                let _ = reply.send(peers);
            }
            Command::AddPeer { addr, reply } => {
                let now = Instant::now();
                let result = if self.is_banned_addr(&addr, now) {
                    Err(NetError::Banned)
                } else {
                    self.removed.remove(&addr);
                    let known = self.known.entry(addr).or_insert_with(|| KnownAddr::new(true, now));
                    known.persistent = true;
                    known.backoff = INITIAL_BACKOFF;
                    let connected = known.peer.is_some_and(|peer| self.peers.contains_key(&peer));
                    if !known.dialing && !connected {
                        self.dial(addr);
                    }
                    Ok(())
                };
                let _ = reply.send(result);
            }
            Command::RemovePeer { peer, reply } => {
                // Only the addresses where we found it: what it claims may be someone else's.
                for addr in self.addresses_of(peer) {
                    self.known.remove(&addr);
                    self.removed.insert(addr);
                }
                let _ = reply.send(self.disconnect(peer, "removed"));
            }
            Command::SetBlocked { peers } => {
                self.blocked = peers.into_iter().collect();
                let blocked: Vec<PeerId> =
                    self.peers.keys().filter(|peer| self.blocked.contains(peer)).copied().collect();
                for peer in blocked {
                    self.disconnect(peer, "blocked");
                }
            }
            Command::SetReserved { peers } => {
                self.reserved = peers.into_iter().collect();
                let ids: Vec<PeerId> = self.peers.keys().copied().collect();
                for id in ids {
                    let dial = self
                        .peers
                        .get(&id)
                        .and_then(|peer| peer.outbound.then_some(peer.verified))
                        .flatten();
                    let reserved = self.is_reserved(&id, dial);
                    if let Some(peer) = self.peers.get_mut(&id) {
                        peer.reserved = reserved;
                    }
                }
            }
        }
    }

    fn gossip(&mut self, payload: Bytes, from: Option<PeerId>) {
        if payload.len() > self.config.max_frame_bytes {
            tracing::warn!(size = payload.len(), "gossip payload over max_frame_bytes dropped");
            return;
        }
        let now = Instant::now();
        let hash = gossip_hash(&payload);
        self.seen.insert(hash, now);
        let plaintext = WireMessage::Gossip(payload.to_vec()).encode();
        let mut targets: Vec<PeerId> = self
            .peers
            .iter_mut()
            .filter_map(|(id, peer)| {
                let wanted = Some(*id) != from && !self.blocked.contains(id);
                (wanted && !peer.known.contains(&hash, now)).then_some(*id)
            })
            .collect();
        // Our own messages go to every peer; what we pass on goes to a few of them, chosen at
        // random: in a dense mesh the others have it from its author already.
        if from.is_some() && targets.len() > self.config.relay_fanout {
            let (chosen, _) = targets.partial_shuffle(&mut rand::rng(), self.config.relay_fanout);
            let chosen = chosen.len();
            targets.truncate(chosen);
        }
        for peer in &targets {
            if let Some(entry) = self.peers.get_mut(peer) {
                entry.known.insert(hash, now);
            }
        }
        tracing::debug!(targets = targets.len(), "gossip");
        for peer in targets {
            self.send_to(peer, plaintext.clone(), None);
        }
    }

    /// Removes a connected peer and ends its connection; whether it was connected.
    fn disconnect(&mut self, peer: PeerId, reason: &str) -> bool {
        let Some(entry) = self.peers.remove(&peer) else { return false };
        entry.cancel.cancel();
        tracing::info!(?peer, addr = %entry.addr, reason, "peer disconnected");
        self.emit(NetEvent::Disconnected { peer });
        true
    }

    /// Lowers a peer's score; at [`BAN_SCORE`] bans its key, and the addresses where we dialled
    /// and found it, never an address it merely claims (that may be an honest node's).
    fn penalize(&mut self, peer: PeerId, points: i32, reason: &str) {
        let Some(entry) = self.peers.get_mut(&peer) else { return };
        entry.score = entry.score.saturating_sub(points);
        tracing::debug!(?peer, score = entry.score, reason, "peer penalized");
        if entry.score > BAN_SCORE {
            return;
        }
        let duration = if entry.reserved {
            self.config.reserved_ban_duration
        } else {
            self.config.ban_duration
        };
        let until = Instant::now() + duration;
        let addr = entry.addr;
        self.banned_keys.insert(peer, until);
        let found_at = self.addresses_of(peer);
        for banned in &found_at {
            self.banned_addrs.insert(*banned, until);
            // Tried again as soon as the ban ends.
            if let Some(known) = self.known.get_mut(banned) {
                known.next_attempt = until;
                known.backoff = INITIAL_BACKOFF;
            }
        }
        tracing::info!(?peer, %addr, ?found_at, secs = duration.as_secs(), reason, "peer banned");
        self.disconnect(peer, "banned");
    }

    fn connection_event(&mut self, event: ConnEvent) {
        match event {
            ConnEvent::Ready(ready) => self.ready(ready),
            ConnEvent::Message { conn_id, peer, message } => {
                if !self.is_current(peer, conn_id) || self.blocked.contains(&peer) {
                    return;
                }
                self.message(peer, message);
            }
            ConnEvent::Latency { conn_id, peer, rtt } => {
                if self.is_current(peer, conn_id)
                    && let Some(entry) = self.peers.get_mut(&peer)
                {
                    entry.latency = Some(rtt);
                }
            }
            ConnEvent::Penalty { conn_id, peer, points, reason } => {
                if self.is_current(peer, conn_id) {
                    self.penalize(peer, points, reason);
                }
            }
            ConnEvent::Closed { conn_id, peer, reason } => {
                let now = Instant::now();
                if let Some(pending) = self.pending.remove(&conn_id) {
                    // Never admitted: a failed dial or handshake.
                    tracing::debug!(conn_id, ?peer, %reason, "connection failed");
                    if let Some(addr) = pending.dial
                        && let Some(known) = self.known.get_mut(&addr)
                    {
                        known.failed(now);
                        if !known.persistent && known.failures > MAX_LEARNT_FAILURES {
                            self.known.remove(&addr);
                        }
                    }
                    return;
                }
                let Some(peer) = peer else { return };
                if !self.is_current(peer, conn_id) {
                    return;
                }
                if let Some(entry) = self.peers.get(&peer)
                    && entry.outbound
                    && let Some(addr) = entry.verified
                    && let Some(known) = self.known.get_mut(&addr)
                {
                    known.failed(now);
                }
                self.disconnect(peer, &reason);
            }
        }
    }

    fn is_current(&self, peer: PeerId, conn_id: u64) -> bool {
        self.peers.get(&peer).is_some_and(|entry| entry.conn_id == conn_id)
    }

    /// The addresses where we dialled and found `peer`.
    fn addresses_of(&self, peer: PeerId) -> Vec<SocketAddr> {
        self.known
            .iter()
            .filter(|(_, known)| known.peer == Some(peer))
            .map(|(addr, _)| *addr)
            .collect()
    }

    /// A dial reached `peer` at `addr`: the address is now bound to it, and others hear of it.
    fn found_at(&mut self, peer: PeerId, addr: SocketAddr, now: Instant) {
        let newly = match self.known.get_mut(&addr) {
            Some(known) => {
                known.dialing = false;
                known.next_attempt = now + known.backoff;
                known.peer.replace(peer) != Some(peer)
            }
            None => false,
        };
        if let Some(entry) = self.peers.get_mut(&peer) {
            let changed = entry.verified != Some(addr);
            entry.verified = Some(addr);
            if newly || changed {
                self.announce(peer, addr);
            }
        }
    }

    /// Tells every other peer where `peer` can be reached (an address we verified).
    fn announce(&mut self, peer: PeerId, addr: SocketAddr) {
        let announcement = WireMessage::Peers(vec![WireAddr::from(addr)]).encode();
        let others: Vec<PeerId> =
            self.peers.keys().filter(|other| **other != peer).copied().collect();
        for other in others {
            self.send_to(other, announcement.clone(), None);
        }
    }

    fn ready(&mut self, ready: Ready) {
        let Ready { conn_id, peer, remote, listen, sender, queued, reply } = ready;
        let Some(pending) = self.pending.remove(&conn_id) else {
            let _ = reply.send(false);
            return;
        };
        let outbound = pending.dial.is_some();
        let now = Instant::now();
        // An unspecified advertised IP means "where you see me from"; port 0 means "not listening".
        let claimed = if listen.port() == 0 {
            None
        } else if listen.ip().is_unspecified() {
            Some(SocketAddr::new(remote.ip(), listen.port()))
        } else {
            Some(listen)
        };
        if peer == self.local.peer_id {
            // We dialled ourselves: an address learnt from someone is forgotten.
            if let Some(addr) = pending.dial
                && self.known.get(&addr).is_some_and(|known| !known.persistent)
            {
                self.known.remove(&addr);
            } else if let Some(addr) = pending.dial
                && let Some(known) = self.known.get_mut(&addr)
            {
                known.failed(now);
            }
            let _ = reply.send(false);
            return;
        }
        // A dial that reached someone binds the address to whoever answered, admitted or not.
        if let Some(addr) = pending.dial {
            self.found_at(peer, addr, now);
        }
        let reserved = self.is_reserved(&peer, pending.dial);
        let class = if reserved {
            Class::Reserved
        } else if outbound {
            Class::Outbound
        } else {
            Class::Inbound
        };
        let refusal = if self.blocked.contains(&peer) {
            Some("blocked")
        } else if self.is_banned_key(&peer, now) {
            Some("banned")
        } else if let Some(existing) = self.peers.get(&peer) {
            // Keep the connection dialled by the smaller key; if the same side dialled both, the
            // newer one (the older is probably dead). Both sides reach the same decision.
            let us = self.local.peer_id;
            let existing_dialer = if existing.outbound { us } else { peer };
            let new_dialer = if outbound { us } else { peer };
            if existing_dialer == new_dialer || new_dialer < existing_dialer {
                None
            } else {
                Some("duplicate connection")
            }
        } else {
            let admitted = self.peers.values().map(|other| (other.addr.ip(), other.class()));
            slots::admit(&self.slot_limits, admitted, remote.ip(), class).err()
        };
        if let Some(reason) = refusal {
            if reason == "duplicate connection" || reason == "blocked" {
                tracing::debug!(?peer, %remote, reason, "peer refused");
            } else {
                self.refusals.refused(remote, reason);
            }
            // A refused dial backs off like a failed one.
            if let Some(addr) = pending.dial
                && let Some(known) = self.known.get_mut(&addr)
            {
                known.failed(now);
            }
            let _ = reply.send(false);
            return;
        }
        if reply.send(true).is_err() {
            return;
        }
        if let Some(addr) = pending.dial
            && let Some(known) = self.known.get_mut(&addr)
        {
            known.backoff = INITIAL_BACKOFF;
            known.failures = 0;
        }
        // What it claims is only a candidate to dial: dialling it verifies it (or finds whoever
        // really listens there).
        if let Some(claim) = claimed
            && !self.is_own_addr(&claim)
            && !self.removed.contains(&claim)
            && !self.known.contains_key(&claim)
            && self.known.len() < MAX_KNOWN_ADDRESSES
        {
            self.known.insert(claim, KnownAddr::new(false, now));
        }
        let verified = pending.dial;
        if let Some(existing) = self.peers.get_mut(&peer) {
            // Replace the connection in place: the node sees no disconnect.
            tracing::debug!(?peer, %remote, outbound, "connection replaced");
            existing.cancel.cancel();
            existing.conn_id = conn_id;
            existing.addr = remote;
            existing.claimed = claimed;
            existing.verified = verified.or(existing.verified);
            existing.outbound = outbound;
            existing.reserved = reserved;
            existing.sender = sender;
            existing.queued = queued;
            existing.cancel = pending.cancel;
            existing.connected_since = SystemTime::now();
            return;
        }
        tracing::info!(?peer, %remote, ?claimed, outbound, reserved, "peer connected");
        self.peers.insert(
            peer,
            Peer {
                conn_id,
                addr: remote,
                claimed,
                verified,
                outbound,
                reserved,
                sender,
                queued,
                cancel: pending.cancel,
                score: 0,
                latency: None,
                connected_since: SystemTime::now(),
                dropped: 0,
                known: SeenSet::new(PEER_KNOWN_CAPACITY, SEEN_TTL),
            },
        );
        self.emit(NetEvent::Connected { peer, addr: remote, outbound });
        self.send_to(peer, WireMessage::GetPeers.encode(), None);
        if let Some(addr) = verified {
            self.announce(peer, addr);
        }
    }

    fn message(&mut self, peer: PeerId, message: Inbound) {
        let now = Instant::now();
        match message {
            Inbound::GetPeers => {
                // Only addresses we verified ourselves: passing on claims would let anyone
                // direct every node's dials at an address of its choosing.
                let addrs: Vec<WireAddr> = self
                    .peers
                    .iter()
                    .filter(|(id, _)| **id != peer)
                    .filter_map(|(_, entry)| entry.verified)
                    .take(MAX_PEERS_PER_MESSAGE)
                    .map(WireAddr::from)
                    .collect();
                self.send_to(peer, WireMessage::Peers(addrs).encode(), None);
            }
            Inbound::Peers(addrs) => {
                for addr in addrs {
                    if self.known.len() >= MAX_KNOWN_ADDRESSES {
                        break;
                    }
                    if addr.port() == 0
                        || addr.ip().is_unspecified()
                        || self.is_own_addr(&addr)
                        || self.removed.contains(&addr)
                    {
                        continue;
                    }
                    self.known.entry(addr).or_insert_with(|| KnownAddr::new(false, now));
                }
            }
            Inbound::Gossip(payload) => {
                let hash = gossip_hash(&payload);
                if let Some(entry) = self.peers.get_mut(&peer) {
                    entry.known.insert(hash, now);
                }
                if self.seen.insert(hash, now) {
                    self.emit(NetEvent::Gossip { from: peer, payload });
                } else {
                    tracing::debug!(?peer, "duplicate gossip ignored");
                }
            }
            Inbound::Direct(payload) => self.emit(NetEvent::Direct { from: peer, payload }),
        }
    }
}
