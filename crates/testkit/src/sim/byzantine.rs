//! What a byzantine validator does besides running an honest node: its shell rewrites the
//! consensus messages its core broadcasts (decoded with `consensus::tendermint::decode`) and
//! adds its own.

use super::{
    Kind,
    node::gossip_id,
    scenario::{Behaviour, shuffle, state_root_after},
    world::World,
};
use consensus::tendermint::{self, Message};
use node::wire::Wire;
use primitives::{
    BlockHash, ChainId, Hash, SecretKey, SignedProposal, SignedVote, TimestampMs, Vote, VoteKind,
};
use rand::{RngExt, rngs::ChaCha8Rng};
use std::rc::Rc;

impl World {
    /// Node `node`, byzantine, broadcasts `wire` (its own message): it may send a second,
    /// conflicting message to half of its peers, a badly signed copy, a vote forged in an
    /// honest validator's name.
    pub(super) fn byzantine_gossip(&mut self, node: usize, behaviour: Behaviour, wire: Wire) {
        let decoded = match &wire {
            Wire::Consensus { message, .. } => tendermint::decode(message),
            _ => None,
        };
        let wire = Rc::new(wire);
        let (Some(decoded), Wire::Consensus { block, .. }) = (decoded, &*wire) else {
            self.gossip(node, wire, None, None);
            return;
        };
        let block = block.clone();
        if behaviour.replay {
            self.record(node, &wire);
        }
        let mut peers: Vec<usize> = self.nodes[node]
            .running
            .as_ref()
            .map(|running| running.connected().collect())
            .unwrap_or_default();
        shuffle(&mut self.rng, &mut peers);
        let (first, second) = peers.split_at(peers.len() / 2);
        let (first, second) = (first.to_vec(), second.to_vec());
        let chain_id = self.s.config.chain_id.clone();
        let key = self.nodes[node].key.clone();
        let alternative = match decoded {
            Message::Proposal(signed) if behaviour.equivocate => block.as_ref().map(|block| {
                // Another valid block: the same one a millisecond later.
                let mut other = (**block).clone();
                other.header.timestamp = TimestampMs(other.header.timestamp.0 + 1);
                let mut proposal = signed.proposal;
                proposal.block = other.hash();
                if let Some(running) = self.nodes[node].running.as_mut() {
                    running.alt_block = Some(proposal.block);
                }
                let signature = key.sign(proposal.signing_hash(&chain_id).as_bytes());
                let alternative = SignedProposal { proposal, proposer: signed.proposer, signature };
                self.coverage.hit(Kind::Equivocation);
                Wire::Consensus {
                    message: tendermint::encode(&Message::Proposal(alternative)),
                    block: Some(Box::new(other)),
                }
            }),
            Message::Vote(signed) if behaviour.double_vote => {
                self.check_signing(&key, &signed);
                let alt_block =
                    self.nodes[node].running.as_ref().and_then(|running| running.alt_block);
                let block = match signed.vote.block {
                    Some(_) if self.rng.random_bool(0.5) => None,
                    _ => Some(
                        alt_block
                            .filter(|_| self.rng.random_bool(0.5))
                            .unwrap_or_else(|| BlockHash(random_hash(&mut self.rng))),
                    ),
                };
                let vote = Vote { block, ..signed.vote };
                self.coverage.hit(Kind::DoubleVote);
                let message = tendermint::encode(&Message::Vote(sign_vote(&key, &chain_id, vote)));
                Some(Wire::Consensus { message, block: None })
            }
            _ => None,
        };
        match alternative {
            Some(alternative) => {
                let id = gossip_id(&wire);
                let alternative = Rc::new(alternative);
                let alternative_id = gossip_id(&alternative);
                if let Some(running) = self.nodes[node].running.as_mut() {
                    running.keep(id, &wire);
                    running.keep(alternative_id, &alternative);
                }
                for peer in first {
                    self.send_gossip(node, peer, wire.clone(), id);
                }
                for peer in second {
                    self.send_gossip(node, peer, alternative.clone(), alternative_id);
                }
            }
            None => self.gossip(node, wire.clone(), None, None),
        }
        if let Some(block) = &block
            && block.header.state_root != state_root_after(&block.header.parent)
        {
            self.coverage.hit(Kind::Poison);
        }
        if behaviour.bad_signatures && self.rng.random_bool(0.5) {
            self.coverage.hit(Kind::BadSignature);
            let mut broken = decoded;
            match &mut broken {
                Message::Proposal(signed) => signed.signature.0[7] ^= 0x40,
                Message::Vote(signed) => signed.signature.0[7] ^= 0x40,
            }
            let broken = Wire::Consensus { message: tendermint::encode(&broken), block };
            self.gossip(node, Rc::new(broken), None, None);
            // A precommit forged in an honest validator's name, signed with our own key.
            let honest: Vec<usize> =
                (0..self.s.len()).filter(|&other| self.s.honest(other)).collect();
            if !honest.is_empty() {
                self.coverage.hit(Kind::ForgedVote);
                let victim = honest[self.rng.random_range(0..honest.len())];
                let vote = Vote {
                    height: decoded.height(),
                    round: decoded.round(),
                    kind: if self.rng.random_bool(0.5) {
                        VoteKind::Prevote
                    } else {
                        VoteKind::Precommit
                    },
                    block: Some(BlockHash(random_hash(&mut self.rng))),
                };
                let mut forged = sign_vote(&key, &chain_id, vote);
                forged.validator = self.s.keys[victim].public_key();
                let message = tendermint::encode(&Message::Vote(forged));
                self.gossip(node, Rc::new(Wire::Consensus { message, block: None }), None, None);
            }
        }
    }

    /// Sends gossip `id` to one peer, noting that the peer has it.
    fn send_gossip(&mut self, node: usize, peer: usize, wire: Rc<Wire>, id: Hash) {
        if let Some(running) = self.nodes[node].running.as_mut() {
            running.mark_known(peer, id);
        }
        self.send(node, peer, wire, Some(id));
    }

    /// The byzantine messages are only worth something if they are signed the way the engine
    /// signs: checked once per run against an honest vote of the engine.
    fn check_signing(&mut self, key: &SecretKey, signed: &SignedVote) {
        if self.signing_checked {
            return;
        }
        self.signing_checked = true;
        let ours = sign_vote(key, &self.s.config.chain_id, signed.vote);
        if ours.signature != signed.signature {
            self.fail("the simulation signs votes differently from the engine".into());
        }
    }

    /// A replaying node sends a few messages it recorded at earlier heights and rounds
    /// straight to random peers (not as gossip, so that receivers do not drop them as seen).
    pub(super) fn replay(&mut self, node: usize) {
        let next = self.nodes[node].height() + 1;
        let Some(running) = self.nodes[node].running.as_ref() else { return };
        let old: Vec<Rc<Wire>> = running
            .recorded
            .iter()
            .filter(|wire| match &***wire {
                Wire::Consensus { message, .. } => tendermint::decode(message)
                    .is_some_and(|message| message.height().0 < next || message.round() == 0),
                _ => false,
            })
            .cloned()
            .collect();
        if old.is_empty() {
            return;
        }
        for _ in 0..3 {
            let wire = old[self.rng.random_range(0..old.len())].clone();
            let peer = self.rng.random_range(0..self.s.len());
            if peer != node {
                self.coverage.hit(Kind::Replay);
                self.send_direct(node, peer, wire);
            }
        }
    }
}

fn sign_vote(key: &SecretKey, chain_id: &ChainId, vote: Vote) -> SignedVote {
    let signature = key.sign(vote.signing_hash(chain_id).as_bytes());
    SignedVote { vote, validator: key.public_key(), signature }
}

fn random_hash(rng: &mut ChaCha8Rng) -> Hash {
    let mut bytes = [0u8; 32];
    rng.fill(&mut bytes);
    Hash(bytes)
}
