//! A hostile peer for tests: it passes the network's handshake honestly (so a node must deal
//! with it after authenticating it) and then does what the test says: sign with any identity,
//! claim any listen address, connect from any local address, send any frame or node message,
//! open many identities at once, read slowly or never.
//!
//! ```text
//! let adversary = Adversary::against(&rpc_url, p2p_addr).await;
//! let mut peer = adversary.connect(Adversary::throwaway(), honest_addr).await?;
//! peer.garbage().await?;
//! ```

use bytes::Bytes;
use net::raw::{RawHello, RawMessage, RawPeer};
use node::wire::Wire;
use primitives::SecretKey;
use rpc::{JouleApiClient, client::HttpClientBuilder};
use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};
use tokio::task::JoinHandle;

pub use net::NetError;

/// Where to attack and what chain to claim.
#[derive(Clone, Debug)]
pub struct Adversary {
    target: SocketAddr,
    chain_id: String,
    genesis_hash: [u8; 32],
    source: Option<IpAddr>,
}

impl Adversary {
    /// An adversary against the node whose API is at `rpc_url` and whose peer-to-peer address
    /// is `target` (the chain's id and genesis are asked from the API).
    pub async fn against(rpc_url: &str, target: SocketAddr) -> Adversary {
        let client = HttpClientBuilder::default().build(rpc_url).expect("rpc url");
        let status = client.node_status().await.expect("node_status");
        let mut genesis_hash = [0u8; 32];
        hex::decode_to_slice(&status.genesis_hash, &mut genesis_hash).expect("genesis hash");
        Adversary { target, chain_id: status.chain_id, genesis_hash, source: None }
    }

    /// The same adversary against another node of the chain.
    pub fn at(&self, target: SocketAddr) -> Adversary {
        Adversary { target, ..self.clone() }
    }

    /// The same adversary, connecting from `source` (an address of this host).
    pub fn from(&self, source: IpAddr) -> Adversary {
        Adversary { source: Some(source), ..self.clone() }
    }

    /// A fresh identity nobody has seen.
    pub fn throwaway() -> SecretKey {
        SecretKey::generate(rand::rng())
    }

    /// Connects as `identity`, claiming to listen at `claim`.
    pub async fn connect(
        &self,
        identity: SecretKey,
        claim: SocketAddr,
    ) -> Result<HostilePeer, NetError> {
        let hello = RawHello::new(identity, self.chain_id.clone(), self.genesis_hash, claim);
        let raw = RawPeer::connect(self.target, self.source, &hello).await?;
        Ok(HostilePeer { raw })
    }

    /// Connects `count` throwaway identities claiming nothing (port 0); those the node refuses
    /// are left out.
    pub async fn crowd(&self, count: usize) -> Vec<HostilePeer> {
        let nowhere = SocketAddr::new(self.target.ip(), 0);
        let mut peers = Vec::new();
        for _ in 0..count {
            if let Ok(peer) = self.connect(Adversary::throwaway(), nowhere).await {
                peers.push(peer);
            }
        }
        peers
    }
}

/// One authenticated hostile connection.
#[derive(Debug)]
pub struct HostilePeer {
    raw: RawPeer,
}

impl HostilePeer {
    /// The connection itself, for anything the methods here do not cover.
    pub fn raw(&mut self) -> &mut RawPeer {
        &mut self.raw
    }

    /// Sends a node message directly.
    pub async fn send(&mut self, wire: &Wire) -> Result<(), NetError> {
        self.raw.send_direct(&wire.encode()).await
    }

    /// Sends a node message as gossip.
    pub async fn gossip(&mut self, wire: &Wire) -> Result<(), NetError> {
        self.raw.send_gossip(&wire.encode()).await
    }

    /// Sends a frame that decrypts but does not decode.
    pub async fn garbage(&mut self) -> Result<(), NetError> {
        self.raw.send_plaintext(&[0xee, 0xee, 0xee]).await
    }

    /// Keeps the connection alive in the background, answering pings and reading everything,
    /// until the node closes it or the handle is aborted.
    pub fn stay(mut self) -> JoinHandle<()> {
        tokio::spawn(async move {
            while let Ok(message) = self.raw.recv().await {
                if let RawMessage::Ping(stamp) = message
                    && self.raw.send_pong(stamp).await.is_err()
                {
                    return;
                }
            }
        })
    }

    /// In the background, sends `wire` every `interval` and never reads anything, until the
    /// node closes the connection (the task then ends with the number of messages sent).
    pub fn repeat_without_reading(mut self, wire: &Wire, interval: Duration) -> JoinHandle<u64> {
        let payload = Bytes::from(wire.encode());
        tokio::spawn(async move {
            let mut sent = 0u64;
            let mut ticks = tokio::time::interval(interval);
            loop {
                ticks.tick().await;
                if self.raw.send_direct(&payload).await.is_err() {
                    return sent;
                }
                sent += 1;
            }
        })
    }
}
