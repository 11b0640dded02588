//! One task per connection: connect or accept, handshake, then read and write the socket until
//! the peer goes away, the manager drops our queue, or the network shuts down.

use crate::seen::TokenBucket;
use crate::wire::{self, LocalIdentity, RecvCipher, SendCipher, WireMessage};
use crate::{Misbehaviour, NetError, PeerId};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

/// The limits every connection applies.
pub(crate) struct Limits {
    pub(crate) max_frame: usize,
    pub(crate) max_messages_per_sec: u32,
    pub(crate) ping_interval: Duration,
    pub(crate) dead_after: Duration,
    pub(crate) handshake_timeout: Duration,
    pub(crate) outbound_queue: usize,
    pub(crate) write_timeout: Duration,
    /// Bytes of received payloads one peer may have in the node's hands (at least the largest
    /// plaintext).
    pub(crate) peer_inbound_bytes: usize,
    /// The same for every peer together, shared by all connections.
    pub(crate) inbound: Arc<Semaphore>,
}

/// A message for the peer, and who wants to know when it has been written.
pub(crate) struct Outbound {
    pub(crate) plaintext: Bytes,
    pub(crate) written: Option<oneshot::Sender<()>>,
}

/// A received payload with the share of the inbound budgets it holds: the budgets are given
/// back when the node drops the last copy of the payload.
struct Held {
    bytes: Vec<u8>,
    _peer: OwnedSemaphorePermit,
    _all: OwnedSemaphorePermit,
}

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

/// A message from the peer that the manager handles.
pub(crate) enum Inbound {
    GetPeers,
    Peers(Vec<SocketAddr>),
    Gossip(Bytes),
    Direct(Bytes),
}

/// A connection finished its handshake and asks to be admitted.
pub(crate) struct Ready {
    pub(crate) conn_id: u64,
    pub(crate) peer: PeerId,
    pub(crate) remote: SocketAddr,
    pub(crate) listen: SocketAddr,
    pub(crate) sender: mpsc::Sender<Outbound>,
    /// Bytes queued for the peer and not yet written; the writer subtracts what it wrote.
    pub(crate) queued: Arc<AtomicUsize>,
    pub(crate) reply: oneshot::Sender<bool>,
}

/// What connection tasks tell the manager.
pub(crate) enum ConnEvent {
    Ready(Ready),
    Message { conn_id: u64, peer: PeerId, message: Inbound },
    Latency { conn_id: u64, peer: PeerId, rtt: Duration },
    Penalty { conn_id: u64, peer: PeerId, points: i32, reason: &'static str },
    Closed { conn_id: u64, peer: Option<PeerId>, reason: String },
}

/// The connection's end of its outbound queue.
pub(crate) struct Queue {
    receiver: mpsc::Receiver<Outbound>,
    queued: Arc<AtomicUsize>,
}

/// Points lost per message above the rate limit.
pub(crate) const RATE_PENALTY: i32 = 1;

/// Where the connection comes from.
pub(crate) enum Target {
    Dial(SocketAddr),
    Accepted(TcpStream, SocketAddr),
}

/// Everything a connection task needs.
pub(crate) struct Connection {
    pub(crate) conn_id: u64,
    pub(crate) local: Arc<LocalIdentity>,
    pub(crate) limits: Arc<Limits>,
    pub(crate) manager: mpsc::Sender<ConnEvent>,
    pub(crate) cancel: CancellationToken,
}

impl Connection {
    /// Runs the connection to its end, then tells the manager.
    pub(crate) async fn run(self, target: Target) {
        let mut peer = None;
        let result = tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Err(NetError::ConnectionClosed),
            result = self.run_inner(target, &mut peer) => result,
        };
        let reason = match result {
            Ok(()) => "closed".to_string(),
            Err(error) => error.to_string(),
        };
        tracing::debug!(conn_id = self.conn_id, ?peer, %reason, "connection ended");
        // Fails at once when the manager has stopped listening (shutdown).
        let _ = self.manager.send(ConnEvent::Closed { conn_id: self.conn_id, peer, reason }).await;
    }

    async fn run_inner(
        &self,
        target: Target,
        peer_slot: &mut Option<PeerId>,
    ) -> Result<(), NetError> {
        let limits = &self.limits;
        let (stream, remote, outbound) = match target {
            Target::Dial(addr) => {
                let stream = timeout(limits.handshake_timeout, TcpStream::connect(addr))
                    .await
                    .map_err(|_| NetError::HandshakeTimeout)??;
                (stream, addr, true)
            }
            Target::Accepted(stream, addr) => (stream, addr, false),
        };
        stream.set_nodelay(true)?;
        let mut framed = wire::handshake_framed(stream);
        let session =
            timeout(limits.handshake_timeout, wire::handshake(&mut framed, outbound, &self.local))
                .await
                .map_err(|_| NetError::HandshakeTimeout)??;
        let peer = session.hello.identity;
        *peer_slot = Some(peer);
        let (sender, receiver) = mpsc::channel(limits.outbound_queue.max(1));
        let queued = Arc::new(AtomicUsize::new(0));
        let (reply, decision) = oneshot::channel();
        let ready = Ready {
            conn_id: self.conn_id,
            peer,
            remote,
            listen: session.hello.listen.into(),
            sender,
            queued: queued.clone(),
            reply,
        };
        self.manager.send(ConnEvent::Ready(ready)).await.map_err(|_| NetError::Shutdown)?;
        if !decision.await.unwrap_or(false) {
            return Err(NetError::Refused);
        }
        framed.codec_mut().set_max_frame_length(limits.max_frame);
        let queue = Queue { receiver, queued };
        self.session(framed, session.send, session.recv, queue, peer).await
    }

    /// Waits for room in the inbound budgets (the peer's own, then everyone's) and wraps the
    /// payload so that the room is given back when the node is done with it.
    async fn hold(&self, own: &Arc<Semaphore>, payload: Vec<u8>) -> Result<Bytes, NetError> {
        let size = u32::try_from(payload.len()).map_err(|_| NetError::FrameTooLarge)?;
        let peer = own.clone().acquire_many_owned(size).await.map_err(|_| NetError::Shutdown)?;
        let all = self
            .limits
            .inbound
            .clone()
            .acquire_many_owned(size)
            .await
            .map_err(|_| NetError::Shutdown)?;
        Ok(Bytes::from_owner(Held { bytes: payload, _peer: peer, _all: all }))
    }

    fn penalize(&self, peer: PeerId, points: i32, reason: &'static str) {
        let penalty = ConnEvent::Penalty { conn_id: self.conn_id, peer, points, reason };
        let _ = self.manager.try_send(penalty);
    }

    async fn session(
        &self,
        framed: wire::FramedStream,
        mut send: SendCipher,
        mut recv: RecvCipher,
        queue: Queue,
        peer: PeerId,
    ) -> Result<(), NetError> {
        let (mut sink, mut stream) = framed.split();
        let (pong_sender, mut pongs) = mpsc::channel::<u64>(8);
        let epoch = Instant::now();
        let limits = &self.limits;
        let own_budget = Arc::new(Semaphore::new(limits.peer_inbound_bytes));
        let Queue { receiver: mut queue, queued } = queue;
        let reader = async {
            let mut bucket = TokenBucket::new(limits.max_messages_per_sec, Instant::now());
            loop {
                let frame = match timeout(limits.dead_after, stream.next()).await {
                    Err(_) => return Err(NetError::Dead),
                    Ok(None) => return Err(NetError::ConnectionClosed),
                    Ok(Some(Err(error))) if error.kind() == std::io::ErrorKind::InvalidData => {
                        self.penalize(
                            peer,
                            Misbehaviour::InvalidMessage.penalty(),
                            "oversized frame",
                        );
                        return Err(NetError::FrameTooLarge);
                    }
                    Ok(Some(Err(error))) => return Err(NetError::Io(error)),
                    Ok(Some(Ok(frame))) => frame,
                };
                if !bucket.take(Instant::now()) {
                    recv.skip(frame.len());
                    tracing::debug!(?peer, "message over the rate limit dropped");
                    self.penalize(peer, RATE_PENALTY, "rate limit");
                    continue;
                }
                let plaintext = match recv.open(&frame) {
                    Ok(plaintext) => plaintext,
                    Err(error) => {
                        self.penalize(
                            peer,
                            Misbehaviour::InvalidMessage.penalty(),
                            "undecryptable frame",
                        );
                        return Err(error);
                    }
                };
                let message = match WireMessage::decode(&plaintext) {
                    Ok(message) => message,
                    Err(error) => {
                        tracing::debug!(?peer, %error, "undecodable message");
                        self.penalize(
                            peer,
                            Misbehaviour::InvalidMessage.penalty(),
                            "undecodable message",
                        );
                        continue;
                    }
                };
                let inbound = match message {
                    WireMessage::Ping(stamp) => {
                        let _ = pong_sender.try_send(stamp);
                        continue;
                    }
                    WireMessage::Pong(stamp) => {
                        if let Some(rtt) = epoch.elapsed().checked_sub(Duration::from_micros(stamp))
                        {
                            let latency = ConnEvent::Latency { conn_id: self.conn_id, peer, rtt };
                            let _ = self.manager.try_send(latency);
                        }
                        continue;
                    }
                    WireMessage::Hello(_) => {
                        self.penalize(peer, Misbehaviour::InvalidMessage.penalty(), "second hello");
                        continue;
                    }
                    WireMessage::GetPeers => Inbound::GetPeers,
                    WireMessage::Peers(addrs) => {
                        Inbound::Peers(addrs.into_iter().map(SocketAddr::from).collect())
                    }
                    WireMessage::Gossip(payload) => {
                        Inbound::Gossip(self.hold(&own_budget, payload).await?)
                    }
                    WireMessage::Direct(payload) => {
                        Inbound::Direct(self.hold(&own_budget, payload).await?)
                    }
                };
                if let Inbound::Gossip(payload) | Inbound::Direct(payload) = &inbound {
                    tracing::debug!(?peer, size = payload.len(), "payload received");
                }
                let event = ConnEvent::Message { conn_id: self.conn_id, peer, message: inbound };
                self.manager.send(event).await.map_err(|_| NetError::Shutdown)?;
            }
        };
        let writer = async {
            let mut ping = tokio::time::interval(limits.ping_interval);
            ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let (plaintext, written, counted) = tokio::select! {
                    Some(stamp) = pongs.recv() => (WireMessage::Pong(stamp).encode(), None, 0),
                    next = queue.recv() => match next {
                        Some(Outbound { plaintext, written }) => {
                            let size = plaintext.len();
                            (plaintext, written, size)
                        }
                        // The manager dropped the peer (removed, banned, replaced).
                        None => return Ok(()),
                    },
                    _ = ping.tick() => {
                        let stamp = u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
                        (WireMessage::Ping(stamp).encode(), None, 0)
                    }
                };
                let sealed = send.seal(&plaintext)?;
                drop(plaintext);
                timeout(limits.write_timeout, sink.send(sealed))
                    .await
                    .map_err(|_| NetError::WriteTimeout)??;
                queued.fetch_sub(counted, Ordering::Relaxed);
                if let Some(written) = written {
                    let _ = written.send(());
                }
            }
        };
        tokio::select! {
            result = reader => result,
            result = writer => result,
        }
    }
}
