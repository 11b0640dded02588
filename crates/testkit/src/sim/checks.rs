//! The invariants, checked on what each node durably writes: validity of every block written
//! and the safety rule of the chain's engine.

use super::scenario::{Scenario, state_root_after};
use consensus::{SignatureCheck, certificate_signatures, verify_proof};
use primitives::{Block, BlockHash, EngineKind, Hash, PublicKey, Signature};
use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
};

/// How the chains that different nodes write must relate, by the kind of engine.
///
/// Engines whose blocks are final (the solo engine, Tendermint, Raft: a new Raft leader may
/// replace entries that were not committed, but those are only logged, never written) must
/// agree immediately: no two nodes ever write different blocks at one height, whatever the
/// network does. An engine with forks (proof of work) has [`Safety::Forks`]: no node ever
/// undoes more blocks than the engine's maximum reorg depth (the simulated disk carries out
/// each switch and checks its depth), and the nodes converge on one chain once the network
/// has healed and is quiet (`sim::pow`). Raft's own properties (one leader per term, log
/// matching, leader completeness) are checked in `sim::raft`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Safety {
    /// Every block written is final: one block per height across all nodes.
    Final,
    /// Blocks up to `max_reorg_depth` below a node's head may be replaced by another branch
    /// (proof of work): nodes may write different blocks at one height, no switch may undo
    /// more than that depth, and once the network is healed and quiet all nodes end on one
    /// head (checked in `sim::pow`).
    Forks {
        /// The deepest switch allowed.
        max_reorg_depth: u64,
    },
}

/// What is wrong with how `block` links to `parent`: its height and its parent hash.
pub(super) fn link_problems(parent: &Block, block: &Block) -> Vec<String> {
    let header = &block.header;
    let mut problems = Vec::new();
    if header.height.0 != parent.header.height.0 + 1 {
        problems
            .push(format!("height {} is not head {} + 1", header.height.0, parent.header.height.0));
    }
    if header.parent != parent.hash() {
        problems.push("its parent is not the head".to_owned());
    }
    problems
}

impl Safety {
    /// The rule the chains of engine `kind` follow.
    pub fn of(kind: EngineKind) -> Safety {
        match kind {
            EngineKind::Solo | EngineKind::Bft | EngineKind::Raft => Safety::Final,
            EngineKind::Pow(params) => {
                Safety::Forks { max_reorg_depth: u64::from(params.max_reorg_depth) }
            }
        }
    }
}

/// Key, message hash and signature bytes.
type SignedBy = ([u8; 32], Hash, [u8; 64]);

/// Every signature verified in one run, with its answer: the engines of all nodes check the
/// same messages, and the validity check the same certificates; verifying each distinct one
/// once is what makes thousands of seeds affordable.
#[derive(Clone, Default)]
pub(crate) struct SignatureMemo(Arc<Mutex<HashMap<SignedBy, bool>>>);

impl SignatureMemo {
    /// Whether `signature` by `key` over `message` holds.
    pub(crate) fn holds(&self, key: &PublicKey, message: &Hash, signature: &Signature) -> bool {
        let entry = (key.0, *message, signature.0);
        let mut memo = match self.0.lock() {
            Ok(memo) => memo,
            Err(poisoned) => poisoned.into_inner(),
        };
        *memo.entry(entry).or_insert_with(|| key.verify(message.as_bytes(), signature).is_ok())
    }

    /// The same memo, as the engine's signature check.
    pub(crate) fn check(&self) -> SignatureCheck {
        let memo = self.clone();
        SignatureCheck::new(move |key, message, signature| memo.holds(key, message, signature))
    }
}

/// What has been written, across nodes, and the checks on it.
pub(crate) struct Checks {
    safety: Safety,
    /// For [`Safety::Final`]: the block written at each height, and the first node to write it.
    written: BTreeMap<u64, (BlockHash, usize)>,
    signatures: SignatureMemo,
}

impl Checks {
    pub(crate) fn new(scenario: &Scenario, signatures: SignatureMemo) -> Checks {
        Checks { safety: Safety::of(scenario.config.engine), written: BTreeMap::new(), signatures }
    }

    /// Validity: `block` may follow `parent` (height, parent, time, no transactions, state
    /// root, a proposer of its height's set, a proof by its height's validators).
    pub(crate) fn validity(
        &self,
        scenario: &Scenario,
        parent: &Block,
        block: &Block,
    ) -> Result<(), String> {
        let header = &block.header;
        let mut problems = link_problems(parent, block);
        if header.timestamp <= parent.header.timestamp {
            problems.push("its timestamp is not after its parent's".to_owned());
        }
        if !block.txs.is_empty() || header.tx_root != Block::tx_root(&[]) {
            problems.push("it has transactions, or claims to".to_owned());
        }
        if header.state_root != state_root_after(&header.parent) {
            problems.push("it is poisoned (wrong state root)".to_owned());
        }
        let config = scenario.config_at(header.height);
        if !config
            .validators
            .iter()
            .any(|validator| primitives::Address(validator.key) == header.proposer)
        {
            problems.push("its proposer is not a validator of its height".to_owned());
        }
        let proof = match certificate_signatures(&config, header) {
            Ok(signatures) => signatures
                .iter()
                .all(|(key, message, signature)| self.signatures.holds(key, message, signature)),
            Err(_) => false,
        };
        if !proof {
            let error = verify_proof(&config, header).err();
            problems.push(format!("its proof does not verify: {error:?}"));
        }
        if problems.is_empty() { Ok(()) } else { Err(problems.join(", ")) }
    }

    /// The first block written at each height, and by which node.
    pub(crate) fn written(&self) -> &BTreeMap<u64, (BlockHash, usize)> {
        &self.written
    }

    /// Safety: node `node` wrote `block`; whether that is consistent with what every node wrote.
    pub(crate) fn safety(&mut self, node: usize, block: &Block) -> Result<(), String> {
        match self.safety {
            Safety::Final => {
                let height = block.header.height.0;
                let hash = block.hash();
                match self.written.get(&height) {
                    Some((other, by)) if *other != hash => Err(format!(
                        "agreement: node {node} wrote {hash:?} at height {height}, node {by} wrote {other:?}"
                    )),
                    Some(_) => Ok(()),
                    None => {
                        self.written.insert(height, (hash, node));
                        Ok(())
                    }
                }
            }
            // Checked on each switch and at the end of the run (`sim::pow`).
            Safety::Forks { .. } => Ok(()),
        }
    }
}
