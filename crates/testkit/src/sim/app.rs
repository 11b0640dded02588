//! The stand-in application the simulated nodes' real [`Core`](node::core::Core) runs over:
//! blocks whose state root is a function of their parent, and the scenario's validator sets;
//! on proof-of-work chains also transactions (a pool, blocks that carry them, undoing blocks
//! and giving their transactions back).

use super::scenario::{Scenario, state_root_after};
use node::{
    ValidatorSchedule,
    core::{App, BlockError},
};
use primitives::{
    Address, Block, ChainConfig, ConsensusProof, Hash, Header, Height, SignedTransaction,
    TimestampMs,
};
use rand::{RngExt, rngs::ChaCha8Rng};
use std::{collections::BTreeMap, sync::Arc};

/// Most transactions a block built by the stand-in carries.
const MAX_SIM_BLOCK_TXS: usize = 50;

/// A poisoning byzantine node builds this share of its blocks with a wrong state root.
const POISON_CHANCE: f64 = 0.7;

/// What blocks contain in the simulation: a header, and on proof-of-work chains transactions. A
/// block is valid on top of its parent iff its state root is [`state_root_after`] the parent
/// and none of its transactions is already in the chain (or twice in the block); the core
/// checks everything else (height, parent, time, transaction root, proposer, proof). A
/// transaction is told apart by its nonce (the scenario numbers them), and its signature is not
/// checked: the stand-in's state is the set of transactions its chain holds. Final engines get
/// no transactions, so they make a block every empty-block interval.
pub(crate) struct SimApp {
    scenario: Arc<Scenario>,
    /// The proposer of the blocks this node builds.
    proposer: Address,
    /// The last block applied (sealed), whose state the app is at.
    head: Header,
    /// The block executed and not sealed yet.
    candidate: Option<Block>,
    /// A poisoning byzantine node's draws: which of its blocks get a random state root.
    poison: Option<ChaCha8Rng>,
    /// The blocks applied, from genesis on (what [`App::rewind`] undoes).
    chain: Vec<Arc<Block>>,
    /// The transactions the chain holds, by nonce, with their height.
    in_chain: BTreeMap<u64, Height>,
    /// Transactions waiting for a block, by nonce.
    pool: BTreeMap<u64, SignedTransaction>,
}

impl SimApp {
    /// The application of the node whose key is `proposer`, at `head`.
    pub(crate) fn new(
        scenario: Arc<Scenario>,
        proposer: Address,
        head: Header,
        poison: Option<ChaCha8Rng>,
    ) -> SimApp {
        SimApp {
            scenario,
            proposer,
            head,
            candidate: None,
            poison,
            chain: Vec::new(),
            in_chain: BTreeMap::new(),
            pool: BTreeMap::new(),
        }
    }

    /// The same application resuming on `chain` (from genesis to the head it is at), which it
    /// may undo.
    pub(crate) fn with_chain(mut self, chain: &[Arc<Block>]) -> SimApp {
        self.chain = chain.to_vec();
        self.in_chain = chain
            .iter()
            .flat_map(|block| block.txs.iter().map(|tx| (tx.tx.nonce.0, block.header.height)))
            .collect();
        self
    }

    /// Takes transactions into the pool; returns those it did not know (not pending, not in
    /// the chain).
    pub(crate) fn admit(&mut self, txs: &[SignedTransaction]) -> Vec<SignedTransaction> {
        let mut new = Vec::new();
        for tx in txs {
            let nonce = tx.tx.nonce.0;
            if !self.in_chain.contains_key(&nonce) && !self.pool.contains_key(&nonce) {
                self.pool.insert(nonce, tx.clone());
                new.push(tx.clone());
            }
        }
        new
    }

    /// Whether transaction `nonce` waits in the pool.
    pub(crate) fn pending(&self, nonce: u64) -> bool {
        self.pool.contains_key(&nonce)
    }

    /// Where the application's state differs from a fresh replay of `chain` (the node's durable
    /// chain): `None` if it is the same (the same blocks, the same transactions at the same
    /// heights).
    pub(crate) fn differs_from_replay(&self, chain: &[Arc<Block>]) -> Option<String> {
        let replayed: BTreeMap<u64, Height> = chain
            .iter()
            .flat_map(|block| block.txs.iter().map(|tx| (tx.tx.nonce.0, block.header.height)))
            .collect();
        let head = chain.last().map(|block| block.hash());
        if head != Some(self.head.hash()) {
            return Some(format!(
                "the state is at height {}, the chain ends at {:?}",
                self.head.height.0,
                chain.last().map(|block| block.header.height.0)
            ));
        }
        if replayed != self.in_chain {
            return Some(format!(
                "the state holds transactions {:?}, a replay of the chain {:?}",
                self.in_chain, replayed
            ));
        }
        None
    }

    /// The core must build and execute on top of the state the app is at (the head, or the
    /// last block sealed since): a simulation that sees otherwise stops with this message.
    fn on_state(&self, parent: &Header) {
        assert!(
            parent.hash() == self.head.hash(),
            "the core used height {} as the parent, but the application is at height {}",
            parent.height.0,
            self.head.height.0
        );
    }
}

impl App for SimApp {
    type Write = ();

    fn build(&mut self, parent: &Header, height: Height, timestamp: TimestampMs) -> Option<Block> {
        self.on_state(parent);
        self.discard_candidate();
        let parent_hash = parent.hash();
        let poisoned = self.poison.as_mut().is_some_and(|rng| rng.random_bool(POISON_CHANCE));
        let state_root = match (&mut self.poison, poisoned) {
            (Some(rng), true) => {
                let mut bytes = [0u8; 32];
                rng.fill(&mut bytes);
                Hash(bytes)
            }
            _ => state_root_after(&parent_hash),
        };
        let txs: Vec<SignedTransaction> = self
            .pool
            .iter()
            .filter(|(nonce, _)| !self.in_chain.contains_key(nonce))
            .take(MAX_SIM_BLOCK_TXS)
            .map(|(_, tx)| tx.clone())
            .collect();
        let block = Block {
            header: Header {
                height,
                parent: parent_hash,
                timestamp,
                proposer: self.proposer,
                tx_root: Block::tx_root(&txs),
                state_root,
                proof: ConsensusProof::Genesis,
            },
            txs,
        };
        self.candidate = Some(block.clone());
        Some(block)
    }

    fn execute(&mut self, parent: &Header, block: &Block) -> Result<(), BlockError> {
        self.on_state(parent);
        self.discard_candidate();
        let computed = state_root_after(&parent.hash());
        if block.header.state_root != computed {
            return Err(BlockError::StateRoot { computed, claimed: block.header.state_root });
        }
        let mut seen = std::collections::BTreeSet::new();
        for (index, tx) in block.txs.iter().enumerate() {
            let nonce = tx.tx.nonce.0;
            if self.in_chain.contains_key(&nonce) || !seen.insert(nonce) {
                let reason = format!("transaction {nonce} is already in the chain");
                return Err(BlockError::Inclusion { index, reason });
            }
        }
        self.candidate = Some(block.clone());
        Ok(())
    }

    fn candidate(&self) -> Option<&Block> {
        self.candidate.as_ref()
    }

    fn discard_candidate(&mut self) {
        self.candidate = None;
    }

    fn seal(&mut self, proof: ConsensusProof) -> Option<(Arc<Block>, ())> {
        let mut block = self.candidate.take()?;
        block.header.proof = proof;
        self.head = block.header.clone();
        for tx in &block.txs {
            self.in_chain.insert(tx.tx.nonce.0, block.header.height);
        }
        let block = Arc::new(block);
        self.chain.push(block.clone());
        Some((block, ()))
    }

    fn committed(&mut self, blocks: &[Arc<Block>]) {
        for tx in blocks.iter().flat_map(|block| &block.txs) {
            self.pool.remove(&tx.tx.nonce.0);
        }
    }

    fn has_ready(&self) -> bool {
        !self.pool.is_empty()
    }

    fn validators(&self, head: Height) -> ValidatorSchedule {
        self.scenario.schedule(head)
    }

    fn changes_validators(&self, block: &Block) -> bool {
        self.scenario.changes_validators(block.header.height)
    }

    fn config_at(&self, height: Height) -> ChainConfig {
        self.scenario.config_at(height)
    }

    fn rewind(&mut self, to: Height) -> Result<Vec<Arc<Block>>, String> {
        let base = self.chain.first().map_or(u64::MAX, |block| block.header.height.0);
        if to.0 < base {
            return Err(format!("height {} is below the chain the state keeps", to.0));
        }
        self.discard_candidate();
        let mut undone = Vec::new();
        while self.chain.last().is_some_and(|block| block.header.height > to) {
            if let Some(block) = self.chain.pop() {
                for tx in &block.txs {
                    self.in_chain.remove(&tx.tx.nonce.0);
                }
                undone.push(block);
            }
        }
        if let Some(last) = self.chain.last() {
            self.head = last.header.clone();
        }
        Ok(undone)
    }

    fn reverted(&mut self, blocks: &[Arc<Block>]) -> Vec<SignedTransaction> {
        let txs: Vec<SignedTransaction> =
            blocks.iter().flat_map(|block| block.txs.iter().cloned()).collect();
        self.admit(&txs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use primitives::ConsensusProof;
    use rand::SeedableRng;

    fn app(scenario: &Arc<Scenario>, poison: Option<ChaCha8Rng>) -> SimApp {
        let proposer = Address(scenario.keys[0].public_key());
        SimApp::new(scenario.clone(), proposer, scenario.genesis.clone(), poison)
    }

    #[test]
    fn a_built_block_is_valid_elsewhere_and_a_poisoned_one_is_refused() {
        let scenario = Arc::new(Scenario::from_seed(7));
        let genesis = scenario.genesis.clone();
        let mut builder = app(&scenario, None);
        let block = builder.build(&genesis, Height(1), TimestampMs(1_002_000)).expect("built");
        assert_eq!(block.header.state_root, state_root_after(&genesis.hash()));
        assert_eq!(block.header.tx_root, Block::tx_root(&[]));
        assert_eq!(builder.candidate(), Some(&block));

        let mut other = app(&scenario, None);
        other.execute(&genesis, &block).expect("valid on top of genesis");
        assert_eq!(other.candidate(), Some(&block));

        // A poisoning node's blocks: most get a random state root, and are refused.
        let mut poisoner = app(&scenario, Some(ChaCha8Rng::seed_from_u64(1)));
        let mut refused = 0;
        for attempt in 0..20 {
            let built = poisoner
                .build(&genesis, Height(1), TimestampMs(1_002_000 + attempt))
                .expect("built");
            let mut checker = app(&scenario, None);
            match checker.execute(&genesis, &built) {
                Ok(()) => assert_eq!(built.header.state_root, state_root_after(&genesis.hash())),
                Err(BlockError::StateRoot { claimed, .. }) => {
                    assert_eq!(claimed, built.header.state_root);
                    assert_eq!(checker.candidate(), None, "a refused block is not kept");
                    refused += 1;
                }
                Err(other) => panic!("unexpected {other}"),
            }
        }
        assert!((5..20).contains(&refused), "{refused} of 20 poisoned");
    }

    #[test]
    fn sealing_moves_the_state_on() {
        let scenario = Arc::new(Scenario::from_seed(7));
        let genesis = scenario.genesis.clone();
        let mut node = app(&scenario, None);
        let block = node.build(&genesis, Height(1), TimestampMs(1_002_000)).expect("built");
        let (sealed, ()) = node.seal(ConsensusProof::Genesis).expect("a candidate to seal");
        assert_eq!(sealed.hash(), block.hash());
        assert_eq!(node.candidate(), None);
        // The next block goes on top of the sealed one; building on genesis again is a bug of
        // the caller.
        node.build(&sealed.header, Height(2), TimestampMs(1_004_000)).expect("built");
        let stale = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            node.build(&genesis, Height(1), TimestampMs(1_004_000))
        }));
        assert!(stale.is_err(), "building on a header that is not the state must be caught");
    }

    #[test]
    fn transactions_go_into_blocks_once_and_come_back_when_their_block_is_undone() {
        let scenario = Arc::new(Scenario::pow_from_seed(3));
        let genesis = Arc::new(Block { header: scenario.genesis.clone(), txs: Vec::new() });
        let mut node = app(&scenario, None).with_chain(std::slice::from_ref(&genesis));
        let txs: Vec<SignedTransaction> =
            (0..3).map(|nonce| crate::sim::pow::transaction(&scenario, nonce)).collect();
        assert_eq!(node.admit(&txs).len(), 3);
        assert!(node.admit(&txs).is_empty(), "known ones are not new");
        assert!(node.has_ready());
        let block = node.build(&genesis.header, Height(1), TimestampMs(1_002_000)).expect("built");
        assert_eq!(block.txs.len(), 3);
        assert_eq!(block.header.tx_root, Block::tx_root(&txs));
        let (sealed, ()) = node.seal(ConsensusProof::Genesis).expect("sealed");
        node.committed(std::slice::from_ref(&sealed));
        assert!(!node.has_ready() && !node.pending(0));
        let chain = vec![genesis.clone(), sealed.clone()];
        assert_eq!(node.differs_from_replay(&chain), None);
        assert!(
            node.differs_from_replay(&chain[..1]).is_some(),
            "a shorter chain is not the state"
        );
        // A block repeating a transaction of the chain is refused.
        let mut again = block.clone();
        again.header.parent = sealed.hash();
        again.header.height = Height(2);
        again.header.state_root = state_root_after(&sealed.hash());
        assert!(matches!(
            node.execute(&sealed.header, &again),
            Err(BlockError::Inclusion { index: 0, .. })
        ));
        // Undone: the state is back at genesis and the transactions wait again.
        let undone = node.rewind(Height(0)).expect("within the chain");
        assert_eq!(
            undone.iter().map(|block| block.hash()).collect::<Vec<_>>(),
            vec![sealed.hash()]
        );
        assert_eq!(node.reverted(&undone).len(), 3);
        assert!((0..3).all(|nonce| node.pending(nonce)));
        assert_eq!(node.differs_from_replay(&chain[..1]), None);
        assert!(node.rewind(Height(0)).expect("nothing to undo").is_empty());
    }
}
