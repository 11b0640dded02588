//! What travels on the socket: the Noise handshake, the hello, frame sealing and the internal
//! message enum. No task, no state beyond one connection's ciphers.

use crate::NetError;
use borsh::{BorshDeserialize, BorshSerialize};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use primitives::{PublicKey, SecretKey, Signature};
use snow::StatelessTransportState;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

/// The Noise protocol name.
pub(crate) const NOISE_PARAMS: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";
/// Mixed into the handshake hash by both sides: a peer speaking anything else fails the handshake.
pub(crate) const PROLOGUE: &[u8] = b"joule/net/v1";
/// Domain tag of the hello signature (followed by the 32-byte handshake hash).
pub(crate) const HELLO_DOMAIN: &[u8] = b"joule/net/hello/v1";
/// Largest Noise message (ciphertext, tag included).
pub(crate) const NOISE_MAX_MESSAGE: usize = 65535;
/// Poly1305 tag appended to every Noise transport message.
pub(crate) const NOISE_TAG: usize = 16;
/// Plaintext carried by one full Noise message.
pub(crate) const CHUNK_PLAINTEXT: usize = NOISE_MAX_MESSAGE - NOISE_TAG;
/// Frame cap while handshaking and exchanging hellos (before the peer is known).
pub(crate) const HANDSHAKE_FRAME_LIMIT: usize = 4096;
/// Bytes an internal message adds around an application payload (enum tag, length), rounded up.
pub(crate) const MESSAGE_OVERHEAD: usize = 64;
/// Most addresses in one `Peers` message.
pub(crate) const MAX_PEERS_PER_MESSAGE: usize = 32;

/// A socket address in the hello and in peer exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub(crate) enum WireAddr {
    V4([u8; 4], u16),
    V6([u8; 16], u16),
}

impl From<SocketAddr> for WireAddr {
    fn from(addr: SocketAddr) -> WireAddr {
        match addr.ip() {
            IpAddr::V4(ip) => WireAddr::V4(ip.octets(), addr.port()),
            IpAddr::V6(ip) => WireAddr::V6(ip.octets(), addr.port()),
        }
    }
}

impl From<WireAddr> for SocketAddr {
    fn from(addr: WireAddr) -> SocketAddr {
        match addr {
            WireAddr::V4(ip, port) => SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port),
            WireAddr::V6(ip, port) => SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port),
        }
    }
}

/// The first message each side sends after the Noise handshake, encrypted.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub(crate) struct Hello {
    pub(crate) protocol_version: u32,
    pub(crate) chain_id: String,
    pub(crate) genesis_hash: [u8; 32],
    pub(crate) identity: PublicKey,
    pub(crate) listen: WireAddr,
    /// Ed25519 signature by `identity` over `HELLO_DOMAIN || handshake_hash`.
    pub(crate) signature: Signature,
}

/// Every message after the handshake (the plaintext of one frame).
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub(crate) enum WireMessage {
    Hello(Hello),
    Ping(u64),
    Pong(u64),
    GetPeers,
    Peers(Vec<WireAddr>),
    Gossip(Vec<u8>),
    Direct(Vec<u8>),
}

impl WireMessage {
    pub(crate) fn encode(&self) -> Bytes {
        Bytes::from(primitives::encode(self))
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<WireMessage, NetError> {
        let message: WireMessage = primitives::decode(bytes)
            .map_err(|error| NetError::InvalidMessage(error.to_string()))?;
        if let WireMessage::Peers(addrs) = &message
            && addrs.len() > MAX_PEERS_PER_MESSAGE
        {
            return Err(NetError::InvalidMessage(format!("{} addresses in Peers", addrs.len())));
        }
        Ok(message)
    }
}

/// The message a hello signs.
pub(crate) fn hello_message(handshake_hash: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(HELLO_DOMAIN.len() + handshake_hash.len());
    message.extend_from_slice(HELLO_DOMAIN);
    message.extend_from_slice(handshake_hash);
    message
}

/// Largest plaintext of a frame for a node whose application payloads are at most
/// `max_payload` bytes.
pub(crate) fn max_plaintext(max_payload: usize) -> usize {
    max_payload.saturating_add(MESSAGE_OVERHEAD)
}

/// Largest frame (sealed) for a plaintext of at most `max_plaintext` bytes.
pub(crate) fn max_frame(max_plaintext: usize) -> usize {
    let chunks = max_plaintext.div_ceil(CHUNK_PLAINTEXT).max(1);
    max_plaintext.saturating_add(chunks.saturating_mul(NOISE_TAG))
}

/// The sending half of a session: seals plaintexts into frames with increasing nonces.
pub(crate) struct SendCipher {
    transport: Arc<StatelessTransportState>,
    nonce: u64,
}

/// The receiving half of a session.
pub(crate) struct RecvCipher {
    transport: Arc<StatelessTransportState>,
    nonce: u64,
}

impl SendCipher {
    /// Seals `plaintext` as one frame body: Noise messages of at most 65535 bytes each, every one
    /// full except the last (so the receiver can cut the body at the same places).
    pub(crate) fn seal(&mut self, plaintext: &[u8]) -> Result<Bytes, NetError> {
        let chunks: Vec<&[u8]> = if plaintext.is_empty() {
            vec![&[]]
        } else {
            plaintext.chunks(CHUNK_PLAINTEXT).collect()
        };
        let mut out = vec![0u8; plaintext.len() + chunks.len() * NOISE_TAG];
        let mut written = 0;
        for chunk in chunks {
            let target = out.get_mut(written..).ok_or(NetError::FrameTooLarge)?;
            written += self.transport.write_message(self.nonce, chunk, target)?;
            self.nonce += 1;
        }
        out.truncate(written);
        Ok(Bytes::from(out))
    }
}

impl RecvCipher {
    /// Opens a frame body sealed by [`SendCipher::seal`].
    pub(crate) fn open(&mut self, frame: &[u8]) -> Result<Vec<u8>, NetError> {
        if frame.is_empty() {
            return Err(NetError::InvalidMessage("empty frame".into()));
        }
        let mut out = vec![0u8; frame.len()];
        let mut written = 0;
        for chunk in frame.chunks(NOISE_MAX_MESSAGE) {
            if chunk.len() < NOISE_TAG {
                return Err(NetError::InvalidMessage("short Noise message".into()));
            }
            let target = out.get_mut(written..).ok_or(NetError::FrameTooLarge)?;
            written += self.transport.read_message(self.nonce, chunk, target)?;
            self.nonce += 1;
        }
        out.truncate(written);
        Ok(out)
    }

    /// Steps over a frame without decrypting it (a rate-limited message is dropped unread); the
    /// nonces advance as if it had been opened.
    pub(crate) fn skip(&mut self, frame_length: usize) {
        let messages = frame_length.div_ceil(NOISE_MAX_MESSAGE).max(1);
        self.nonce = self.nonce.saturating_add(messages as u64);
    }
}

/// A finished Noise handshake: both ciphers and the handshake hash both sides sign.
pub(crate) struct NoiseSession {
    pub(crate) send: SendCipher,
    pub(crate) recv: RecvCipher,
    pub(crate) handshake_hash: Vec<u8>,
}

pub(crate) type FramedStream = Framed<TcpStream, LengthDelimitedCodec>;

/// A framed stream with the handshake's frame cap.
pub(crate) fn handshake_framed(stream: TcpStream) -> FramedStream {
    let codec = LengthDelimitedCodec::builder().max_frame_length(HANDSHAKE_FRAME_LIMIT).new_codec();
    Framed::new(stream, codec)
}

pub(crate) async fn next_frame(framed: &mut FramedStream) -> Result<bytes::BytesMut, NetError> {
    match framed.next().await {
        Some(Ok(frame)) => Ok(frame),
        Some(Err(error)) if error.kind() == std::io::ErrorKind::InvalidData => {
            Err(NetError::FrameTooLarge)
        }
        Some(Err(error)) => Err(NetError::Io(error)),
        None => Err(NetError::ConnectionClosed),
    }
}

/// Runs the three Noise XX messages over `framed`.
pub(crate) async fn noise_handshake(
    framed: &mut FramedStream,
    initiator: bool,
    noise_private: &[u8],
) -> Result<NoiseSession, NetError> {
    let params: snow::params::NoiseParams = NOISE_PARAMS.parse()?;
    let builder =
        snow::Builder::new(params).prologue(PROLOGUE)?.local_private_key(noise_private)?;
    let mut state =
        if initiator { builder.build_initiator()? } else { builder.build_responder()? };
    let mut buffer = vec![0u8; NOISE_MAX_MESSAGE];
    // XX: -> e; <- e, ee, s, es; -> s, se.
    for step in 0..3 {
        let our_turn = (step % 2 == 0) == initiator;
        if our_turn {
            let length = state.write_message(&[], &mut buffer)?;
            let message = buffer.get(..length).ok_or(NetError::FrameTooLarge)?;
            framed.send(Bytes::copy_from_slice(message)).await?;
        } else {
            let frame = next_frame(framed).await?;
            state.read_message(&frame, &mut buffer)?;
        }
    }
    let handshake_hash = state.get_handshake_hash().to_vec();
    let transport = Arc::new(state.into_stateless_transport_mode()?);
    Ok(NoiseSession {
        send: SendCipher { transport: transport.clone(), nonce: 0 },
        recv: RecvCipher { transport, nonce: 0 },
        handshake_hash,
    })
}

/// What a node says about itself in its hello.
pub(crate) struct LocalIdentity {
    pub(crate) secret: SecretKey,
    pub(crate) peer_id: PublicKey,
    pub(crate) noise_private: Vec<u8>,
    pub(crate) chain_id: String,
    pub(crate) genesis_hash: [u8; 32],
    pub(crate) protocol_version: u32,
    pub(crate) listen: SocketAddr,
}

impl LocalIdentity {
    pub(crate) fn hello(&self, handshake_hash: &[u8]) -> Hello {
        Hello {
            protocol_version: self.protocol_version,
            chain_id: self.chain_id.clone(),
            genesis_hash: self.genesis_hash,
            identity: self.peer_id,
            listen: self.listen.into(),
            signature: self.secret.sign(&hello_message(handshake_hash)),
        }
    }

    /// Checks the peer's hello against our chain and our view of the handshake hash.
    pub(crate) fn check_hello(&self, hello: &Hello, handshake_hash: &[u8]) -> Result<(), NetError> {
        if hello.protocol_version != self.protocol_version {
            return Err(NetError::VersionMismatch(hello.protocol_version));
        }
        if hello.chain_id != self.chain_id {
            return Err(NetError::ChainMismatch(hello.chain_id.clone()));
        }
        if hello.genesis_hash != self.genesis_hash {
            return Err(NetError::GenesisMismatch);
        }
        hello
            .identity
            .verify(&hello_message(handshake_hash), &hello.signature)
            .map_err(|_| NetError::BadSignature)?;
        if hello.identity == self.peer_id {
            return Err(NetError::SelfConnection);
        }
        Ok(())
    }
}

/// An authenticated session: the ciphers and the peer's verified hello.
pub(crate) struct Session {
    pub(crate) send: SendCipher,
    pub(crate) recv: RecvCipher,
    pub(crate) hello: Hello,
}

/// Noise handshake, then hellos both ways (sent at once by both sides), then checks.
pub(crate) async fn handshake(
    framed: &mut FramedStream,
    initiator: bool,
    local: &LocalIdentity,
) -> Result<Session, NetError> {
    let mut noise = noise_handshake(framed, initiator, &local.noise_private).await?;
    let hello = WireMessage::Hello(local.hello(&noise.handshake_hash)).encode();
    let sealed = noise.send.seal(&hello)?;
    framed.send(sealed).await?;
    let frame = next_frame(framed).await?;
    let plaintext = noise.recv.open(&frame)?;
    let WireMessage::Hello(hello) = WireMessage::decode(&plaintext)? else {
        return Err(NetError::InvalidMessage("expected a hello".into()));
    };
    local.check_hello(&hello, &noise.handshake_hash)?;
    Ok(Session { send: noise.send, recv: noise.recv, hello })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (SendCipher, RecvCipher) {
        let params: snow::params::NoiseParams = NOISE_PARAMS.parse().expect("params");
        let key_a = snow::Builder::new(params.clone()).generate_keypair().expect("key");
        let key_b = snow::Builder::new(params.clone()).generate_keypair().expect("key");
        let mut a = snow::Builder::new(params.clone())
            .local_private_key(&key_a.private)
            .expect("key")
            .build_initiator()
            .expect("initiator");
        let mut b = snow::Builder::new(params)
            .local_private_key(&key_b.private)
            .expect("key")
            .build_responder()
            .expect("responder");
        let mut buffer = vec![0u8; NOISE_MAX_MESSAGE];
        let mut scratch = vec![0u8; NOISE_MAX_MESSAGE];
        let n = a.write_message(&[], &mut buffer).expect("1");
        b.read_message(&buffer[..n], &mut scratch).expect("1");
        let n = b.write_message(&[], &mut buffer).expect("2");
        a.read_message(&buffer[..n], &mut scratch).expect("2");
        let n = a.write_message(&[], &mut buffer).expect("3");
        b.read_message(&buffer[..n], &mut scratch).expect("3");
        let a = Arc::new(a.into_stateless_transport_mode().expect("a"));
        let b = Arc::new(b.into_stateless_transport_mode().expect("b"));
        (SendCipher { transport: a, nonce: 0 }, RecvCipher { transport: b, nonce: 0 })
    }

    #[test]
    fn sealing_splits_at_noise_limit_and_round_trips() {
        let (mut send, mut recv) = pair();
        for length in [0, 1, CHUNK_PLAINTEXT - 1, CHUNK_PLAINTEXT, CHUNK_PLAINTEXT + 1, 200_000] {
            let plaintext: Vec<u8> = (0..length).map(|i| (i % 251) as u8).collect();
            let sealed = send.seal(&plaintext).expect("seal");
            assert!(sealed.len() <= max_frame(length), "length {length}");
            assert_eq!(recv.open(&sealed).expect("open"), plaintext, "length {length}");
        }
    }

    #[test]
    fn tampered_or_replayed_frames_are_refused() {
        let (mut send, mut recv) = pair();
        let sealed = send.seal(b"hello").expect("seal");
        let mut tampered = sealed.to_vec();
        tampered[0] ^= 1;
        assert!(recv.open(&tampered).is_err());
        let (mut send, mut recv) = pair();
        let sealed = send.seal(b"hello").expect("seal");
        assert!(recv.open(&sealed).is_ok());
        assert!(recv.open(&sealed).is_err(), "a replayed frame uses an old nonce");
        assert!(recv.open(&[]).is_err());
        let (mut send, mut recv) = pair();
        let big = send.seal(&vec![7; 100_000]).expect("seal");
        let small = send.seal(b"after").expect("seal");
        recv.skip(big.len());
        assert_eq!(recv.open(&small).expect("open"), b"after");
        assert!(recv.open(&[0; 5]).is_err());
    }

    #[test]
    fn addresses_round_trip_and_peer_lists_are_bounded() {
        for addr in ["127.0.0.1:9000", "[::1]:1"] {
            let addr: SocketAddr = addr.parse().expect("addr");
            assert_eq!(SocketAddr::from(WireAddr::from(addr)), addr);
        }
        let many = WireMessage::Peers(vec![WireAddr::V4([1, 2, 3, 4], 5); 33]).encode();
        assert!(WireMessage::decode(&many).is_err());
        assert!(WireMessage::decode(&[0xff]).is_err());
    }
}
