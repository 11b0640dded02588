//! A connection driven by hand, for tests and for the test kit's adversarial peer: it runs the
//! protocol's handshake honestly (Noise, then a hello signed by any key and claiming any
//! listen address) and afterwards sends exactly what it is told to, reads only when asked, and
//! may connect from a chosen source address. Only with the `testing` feature.

use crate::wire::{self, FramedStream, LocalIdentity, RecvCipher, SendCipher, WireMessage};
use crate::{NetError, PROTOCOL_VERSION, PeerId};
use futures::{SinkExt, StreamExt};
use primitives::SecretKey;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

/// Largest frame a raw peer reads.
const RAW_MAX_FRAME: usize = 64 << 20;

/// What a raw peer says about itself in its hello.
#[derive(Clone, Debug)]
pub struct RawHello {
    /// The key that signs the hello: the identity the other side sees.
    pub identity: SecretKey,
    /// The chain it claims to be on.
    pub chain_id: String,
    /// The genesis it claims.
    pub genesis_hash: [u8; 32],
    /// The protocol version it claims.
    pub protocol_version: u32,
    /// The listen address it claims (anyone's).
    pub listen: SocketAddr,
}

impl RawHello {
    /// A hello for this chain by `identity`, claiming `listen`.
    pub fn new(
        identity: SecretKey,
        chain_id: impl Into<String>,
        genesis_hash: [u8; 32],
        listen: SocketAddr,
    ) -> RawHello {
        RawHello {
            identity,
            chain_id: chain_id.into(),
            genesis_hash,
            protocol_version: PROTOCOL_VERSION,
            listen,
        }
    }

    fn local(&self) -> Result<LocalIdentity, NetError> {
        let params: snow::params::NoiseParams = wire::NOISE_PARAMS.parse()?;
        let noise = snow::Builder::new(params).generate_keypair()?;
        Ok(LocalIdentity {
            secret: self.identity.clone(),
            peer_id: self.identity.public_key(),
            noise_private: noise.private,
            chain_id: self.chain_id.clone(),
            genesis_hash: self.genesis_hash,
            protocol_version: self.protocol_version,
            listen: self.listen,
        })
    }
}

/// A message received by a raw peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawMessage {
    /// A second hello (never sent by a node).
    Hello,
    /// A ping with the sender's stamp.
    Ping(u64),
    /// A pong with our stamp.
    Pong(u64),
    /// A request for addresses.
    GetPeers,
    /// Addresses.
    Peers(Vec<SocketAddr>),
    /// A gossiped payload.
    Gossip(Vec<u8>),
    /// A direct payload.
    Direct(Vec<u8>),
}

/// An authenticated connection that does only what it is told.
pub struct RawPeer {
    framed: FramedStream,
    send: SendCipher,
    recv: RecvCipher,
    peer: PeerId,
}

impl std::fmt::Debug for RawPeer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("RawPeer").field("peer", &self.peer).finish()
    }
}

impl RawPeer {
    /// Connects to `addr` (from `source`, if given: any address of this host), runs the
    /// handshake and exchanges hellos; fails if the other side refuses them.
    pub async fn connect(
        addr: SocketAddr,
        source: Option<IpAddr>,
        hello: &RawHello,
    ) -> Result<RawPeer, NetError> {
        let stream = match source {
            None => TcpStream::connect(addr).await?,
            Some(source) => {
                let socket =
                    if source.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
                socket.bind(SocketAddr::new(source, 0))?;
                socket.connect(addr).await?
            }
        };
        stream.set_nodelay(true)?;
        let mut framed = wire::handshake_framed(stream);
        let session = wire::handshake(&mut framed, true, &hello.local()?).await?;
        framed.codec_mut().set_max_frame_length(RAW_MAX_FRAME);
        Ok(RawPeer { framed, send: session.send, recv: session.recv, peer: session.hello.identity })
    }

    /// The identity of the other side.
    pub fn peer(&self) -> PeerId {
        self.peer
    }

    /// Our address on the connection.
    pub fn local_addr(&self) -> Result<SocketAddr, NetError> {
        Ok(self.framed.get_ref().local_addr()?)
    }

    /// Seals any plaintext (it need not decode) into one frame and sends it.
    pub async fn send_plaintext(&mut self, plaintext: &[u8]) -> Result<(), NetError> {
        let sealed = self.send.seal(plaintext)?;
        self.framed.send(sealed).await?;
        Ok(())
    }

    /// Sends a frame body as it is, not sealed (the other side cannot decrypt it).
    pub async fn send_unsealed(&mut self, body: &[u8]) -> Result<(), NetError> {
        self.framed.send(bytes::Bytes::copy_from_slice(body)).await?;
        Ok(())
    }

    /// Writes bytes to the socket outside any frame (a length prefix alone, say).
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), NetError> {
        self.framed.get_mut().write_all(bytes).await?;
        Ok(())
    }

    /// Sends a gossiped payload.
    pub async fn send_gossip(&mut self, payload: &[u8]) -> Result<(), NetError> {
        self.send_plaintext(&WireMessage::Gossip(payload.to_vec()).encode()).await
    }

    /// Sends a direct payload.
    pub async fn send_direct(&mut self, payload: &[u8]) -> Result<(), NetError> {
        self.send_plaintext(&WireMessage::Direct(payload.to_vec()).encode()).await
    }

    /// Sends a ping.
    pub async fn send_ping(&mut self, stamp: u64) -> Result<(), NetError> {
        self.send_plaintext(&WireMessage::Ping(stamp).encode()).await
    }

    /// Answers a ping.
    pub async fn send_pong(&mut self, stamp: u64) -> Result<(), NetError> {
        self.send_plaintext(&WireMessage::Pong(stamp).encode()).await
    }

    /// Asks for addresses.
    pub async fn send_get_peers(&mut self) -> Result<(), NetError> {
        self.send_plaintext(&WireMessage::GetPeers.encode()).await
    }

    /// Reads the next message.
    pub async fn recv(&mut self) -> Result<RawMessage, NetError> {
        let frame = wire::next_frame(&mut self.framed).await?;
        let plaintext = self.recv.open(&frame)?;
        Ok(match WireMessage::decode(&plaintext)? {
            WireMessage::Hello(_) => RawMessage::Hello,
            WireMessage::Ping(stamp) => RawMessage::Ping(stamp),
            WireMessage::Pong(stamp) => RawMessage::Pong(stamp),
            WireMessage::GetPeers => RawMessage::GetPeers,
            WireMessage::Peers(addrs) => {
                RawMessage::Peers(addrs.into_iter().map(SocketAddr::from).collect())
            }
            WireMessage::Gossip(payload) => RawMessage::Gossip(payload),
            WireMessage::Direct(payload) => RawMessage::Direct(payload),
        })
    }

    /// Whether the other side closes the connection within `within` (what arrives meanwhile is
    /// read and ignored).
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        tokio::time::timeout(within, async { while let Some(Ok(_)) = self.framed.next().await {} })
            .await
            .is_ok()
    }
}
