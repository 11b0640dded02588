//! One validator proposes and finalises every block.
//!
//! It proposes a block `block_interval_ms` after the previous one when transactions are waiting,
//! and an empty block after `empty_block_interval_ms` when none are, so that the head keeps
//! advancing (and chain time with it) on an idle chain. The block is final once the validator has
//! signed it; the signature is the block's proof.

use crate::engine::{Command, Engine, Event};
use primitives::{
    Address, ChainConfig, ChainParams, ConsensusProof, Header, Height, SecretKey, TimestampMs,
    block::block_signing_bytes,
};

/// The single-validator engine.
#[derive(Debug)]
pub struct SoloEngine {
    /// Our key, if we are the validator; a node without it only follows.
    key: Option<SecretKey>,
    params: ChainParams,
    head_height: Height,
    head_timestamp: TimestampMs,
    ready: usize,
    /// The height we asked the node to build, until it is committed.
    in_flight: Option<Height>,
}

impl SoloEngine {
    /// An engine resuming after `head`. It proposes only if `key` is the chain's validator.
    pub fn new(config: &ChainConfig, key: Option<SecretKey>, head: &Header) -> SoloEngine {
        let key = key.filter(|key| {
            config.validators.iter().any(|validator| validator.key == key.public_key())
        });
        SoloEngine {
            key,
            params: config.params.clone(),
            head_height: head.height,
            head_timestamp: head.timestamp,
            ready: 0,
            in_flight: None,
        }
    }

    /// Whether this engine proposes blocks.
    pub fn is_validator(&self) -> bool {
        self.key.is_some()
    }

    fn maybe_propose(&mut self, now: TimestampMs) -> Vec<Command> {
        if self.key.is_none() || self.in_flight.is_some() {
            return vec![];
        }
        let wait = if self.ready > 0 {
            self.params.block_interval_ms
        } else {
            self.params.empty_block_interval_ms
        };
        let due = TimestampMs(self.head_timestamp.0.saturating_add(wait));
        if now < due {
            return vec![Command::WakeAt { at: due }];
        }
        let Some(height) = self.head_height.next() else { return vec![] };
        self.in_flight = Some(height);
        // Block time never goes backwards, even if the local clock does.
        let timestamp = TimestampMs(now.0.max(self.head_timestamp.0.saturating_add(1)));
        vec![Command::BuildBlock { height, timestamp }]
    }
}

impl Engine for SoloEngine {
    fn handle(&mut self, now: TimestampMs, event: Event) -> Vec<Command> {
        match event {
            Event::Tick => self.maybe_propose(now),
            Event::PendingChanged { ready } => {
                self.ready = ready;
                self.maybe_propose(now)
            }
            Event::BlockBuilt { header } => {
                let (Some(key), Some(height)) = (&self.key, self.in_flight) else { return vec![] };
                if header.height != height || header.proposer != Address(key.public_key()) {
                    return vec![];
                }
                let hash = header.hash();
                let signature = key.sign(block_signing_bytes(&hash).as_bytes());
                vec![Command::Commit { hash, proof: ConsensusProof::Solo { signature } }]
            }
            Event::Committed { header } => {
                if header.height > self.head_height {
                    self.head_height = header.height;
                    self.head_timestamp = header.timestamp;
                }
                if self.in_flight.is_some_and(|height| height <= self.head_height) {
                    self.in_flight = None;
                }
                self.maybe_propose(now)
            }
            // One validator needs no messages, never falls behind anyone, and is fixed by the
            // genesis (the ledger refuses to change a solo chain's validator).
            Event::Message { .. }
            | Event::Syncing { .. }
            | Event::Validators { .. }
            | Event::Stored { .. }
            | Event::Invalid { .. }
            | Event::Mining { .. }
            | Event::Mined { .. } => vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ProofError, verify_proof};
    use primitives::{BlockHash, ChainId, EngineKind, Hash, PublicKey, Validator};

    fn validator_key() -> SecretKey {
        SecretKey::from_seed([1; 32])
    }

    fn config() -> ChainConfig {
        ChainConfig {
            chain_id: ChainId::new("solo").unwrap(),
            engine: EngineKind::Solo,
            validators: vec![Validator {
                name: "v".into(),
                key: validator_key().public_key(),
                power: 1,
            }],
            issuer: Address(PublicKey([2; 32])),
            operator: Address(PublicKey([2; 32])),
            params: ChainParams {
                block_interval_ms: 1000,
                empty_block_interval_ms: 5000,
                max_block_txs: 10,
            },
            market: primitives::MarketParams::default(),
        }
    }

    fn header(height: u64, timestamp: u64) -> Header {
        Header {
            height: Height(height),
            parent: BlockHash(Hash([height as u8; 32])),
            timestamp: TimestampMs(timestamp),
            proposer: Address(validator_key().public_key()),
            tx_root: Hash::ZERO,
            state_root: Hash([7; 32]),
            proof: ConsensusProof::Genesis,
        }
    }

    fn at(ms: u64) -> TimestampMs {
        TimestampMs(ms)
    }

    #[test]
    fn proposes_one_interval_after_the_head_when_transactions_wait() {
        let mut engine = SoloEngine::new(&config(), Some(validator_key()), &header(0, 1000));
        assert_eq!(engine.handle(at(1500), Event::Tick), vec![Command::WakeAt { at: at(6000) }]);
        assert_eq!(
            engine.handle(at(1500), Event::PendingChanged { ready: 3 }),
            vec![Command::WakeAt { at: at(2000) }]
        );
        let build = engine.handle(at(2003), Event::Tick);
        assert_eq!(build, vec![Command::BuildBlock { height: Height(1), timestamp: at(2003) }]);
        // While the block is in flight nothing else is proposed.
        assert_eq!(engine.handle(at(2500), Event::PendingChanged { ready: 9 }), vec![]);
        assert_eq!(engine.handle(at(2600), Event::Tick), vec![]);

        let built = header(1, 2003);
        let commands = engine.handle(at(2010), Event::BlockBuilt { header: built.clone() });
        let [Command::Commit { hash, proof }] = commands.as_slice() else {
            panic!("expected one commit, got {commands:?}")
        };
        assert_eq!(*hash, built.hash());
        let mut sealed = built.clone();
        sealed.proof = proof.clone();
        assert_eq!(verify_proof(&config(), &sealed), Ok(()));

        // Once committed, the next block is due one interval after it.
        assert_eq!(
            engine.handle(at(2020), Event::Committed { header: sealed }),
            vec![Command::WakeAt { at: at(3003) }]
        );
    }

    #[test]
    fn an_idle_chain_gets_an_empty_block_every_empty_interval() {
        let mut engine = SoloEngine::new(&config(), Some(validator_key()), &header(4, 10_000));
        assert_eq!(
            engine.handle(at(14_999), Event::Tick),
            vec![Command::WakeAt { at: at(15_000) }]
        );
        assert_eq!(
            engine.handle(at(15_000), Event::Tick),
            vec![Command::BuildBlock { height: Height(5), timestamp: at(15_000) }]
        );
    }

    #[test]
    fn a_node_without_the_validator_key_never_proposes() {
        for key in [None, Some(SecretKey::from_seed([9; 32]))] {
            let mut engine = SoloEngine::new(&config(), key, &header(0, 0));
            assert!(!engine.is_validator());
            assert_eq!(engine.handle(at(99_999), Event::PendingChanged { ready: 5 }), vec![]);
            assert_eq!(
                engine.handle(at(99_999), Event::BlockBuilt { header: header(1, 5) }),
                vec![]
            );
        }
    }

    #[test]
    fn a_built_block_that_was_not_asked_for_is_not_signed() {
        let mut engine = SoloEngine::new(&config(), Some(validator_key()), &header(0, 0));
        assert_eq!(engine.handle(at(10), Event::BlockBuilt { header: header(1, 5) }), vec![]);
        engine.handle(at(6000), Event::Tick);
        assert_eq!(engine.handle(at(6000), Event::BlockBuilt { header: header(2, 6000) }), vec![]);
    }

    #[test]
    fn proofs_are_checked() {
        let mut engine = SoloEngine::new(&config(), Some(validator_key()), &header(0, 0));
        engine.handle(at(6000), Event::Tick);
        let built = header(1, 6000);
        let commands = engine.handle(at(6000), Event::BlockBuilt { header: built.clone() });
        let [Command::Commit { proof, .. }] = commands.as_slice() else { panic!("{commands:?}") };
        let mut sealed = built;
        sealed.proof = proof.clone();

        let mut tampered = sealed.clone();
        tampered.state_root = Hash([8; 32]);
        assert_eq!(verify_proof(&config(), &tampered), Err(ProofError::BadSignature));
        let mut stranger = sealed.clone();
        stranger.proposer = Address(PublicKey([5; 32]));
        assert!(matches!(verify_proof(&config(), &stranger), Err(ProofError::NotAValidator(_))));
        let mut unsigned = sealed;
        unsigned.proof = ConsensusProof::Genesis;
        assert!(matches!(verify_proof(&config(), &unsigned), Err(ProofError::WrongKind { .. })));
    }
}
