//! The mempool: verified transactions waiting for a block.
//!
//! Transactions are kept per sender in nonce order. A transaction is admitted only if its
//! signature has been verified (it is a [`VerifiedTransaction`]), its nonce is not already used
//! or taken, it is not too far ahead of the sender's next nonce, it passes the ledger's checks
//! against the current state, and the pool has room. Blocks take the transactions paying the
//! highest fee first and, among equal fees, the oldest arrival first; never out of a sender's
//! nonce order and never across a gap (a high fee behind a sender's lower one waits for it).
//!
//! The pool is a plain data structure: the node's task owns it and passes the state in.

use ledger::{State, TxError};
use primitives::{Address, Nonce, TimestampMs, Transaction, TxHash, VerifiedTransaction};
use std::{
    cmp::Reverse,
    collections::{BTreeMap, BinaryHeap, HashMap},
};

/// Bounds on the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MempoolLimits {
    /// Most transactions held in total.
    pub max_txs: usize,
    /// Most transactions held for one sender; also how far ahead of the sender's next nonce a
    /// transaction may be.
    pub max_per_sender: usize,
}

/// Where a sender's next transaction stands in block selection (the smallest first): its fee,
/// highest first; its arrival; then its sender and nonce, which identify it.
type SelectionKey = (Reverse<primitives::Amount>, u64, Address, Nonce);

impl Default for MempoolLimits {
    fn default() -> MempoolLimits {
        MempoolLimits { max_txs: 200_000, max_per_sender: 1_024 }
    }
}

/// Why the pool refused a transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    /// The same transaction is already waiting.
    #[error("transaction {0} is already in the mempool")]
    Duplicate(TxHash),
    /// The nonce has been used by a committed transaction (a replay, or a resubmission).
    #[error("nonce {got} has already been used: the sender's next nonce is {next}")]
    NonceUsed {
        /// The sender's next nonce.
        next: Nonce,
        /// The transaction's nonce.
        got: Nonce,
    },
    /// Another transaction with this nonce is waiting.
    #[error("another transaction of this sender with nonce {0} is already waiting")]
    NonceTaken(Nonce),
    /// The nonce leaves too large a gap.
    #[error(
        "nonce {got} is too far ahead: the sender's next nonce is {next}, at most {max_ahead} ahead are held"
    )]
    NonceTooFarAhead {
        /// The sender's next nonce.
        next: Nonce,
        /// The transaction's nonce.
        got: Nonce,
        /// The window.
        max_ahead: usize,
    },
    /// The transaction would fail against the current state.
    #[error("{0}")]
    Invalid(TxError),
    /// This sender already has the most transactions waiting that one sender may have.
    #[error("the sender already has {0} transactions waiting; wait for some to be committed")]
    SenderFull(usize),
    /// The pool is full.
    #[error("mempool full ({0} transactions waiting); retry shortly")]
    Full(usize),
}

impl AdmitError {
    /// A stable, machine-readable name.
    pub fn code(&self) -> &'static str {
        match self {
            AdmitError::Duplicate(_) => "duplicate",
            AdmitError::NonceUsed { .. } => "nonce_used",
            AdmitError::NonceTaken(_) => "nonce_taken",
            AdmitError::NonceTooFarAhead { .. } => "nonce_too_far_ahead",
            AdmitError::Invalid(error) => error.code(),
            AdmitError::SenderFull(_) => "sender_full",
            AdmitError::Full(_) => "mempool_full",
        }
    }
}

#[derive(Debug)]
struct Waiting {
    tx: VerifiedTransaction,
    arrival: u64,
}

/// The pool. See the module documentation.
#[derive(Debug, Default)]
pub struct Mempool {
    limits: MempoolLimits,
    senders: HashMap<Address, BTreeMap<Nonce, Waiting>>,
    hashes: HashMap<TxHash, (Address, Nonce)>,
    next_arrival: u64,
}

impl Mempool {
    /// An empty pool.
    pub fn new(limits: MempoolLimits) -> Mempool {
        Mempool { limits, ..Mempool::default() }
    }

    /// How many transactions wait.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Whether `hash` waits here.
    pub fn contains(&self, hash: &TxHash) -> bool {
        self.hashes.contains_key(hash)
    }

    /// The waiting transaction with this hash.
    pub fn get(&self, hash: &TxHash) -> Option<&VerifiedTransaction> {
        let (sender, nonce) = self.hashes.get(hash)?;
        Some(&self.senders.get(sender)?.get(nonce)?.tx)
    }

    /// Whether `tx` would be refused whatever its signature: its nonce is used on the chain
    /// already, or a transaction of the same sender and nonce waits here. A node asks this of
    /// what peers pass on before it spends a signature check on it: under load, a node that
    /// is behind with its peers' batches gets many transactions only after their block.
    pub fn knows(&self, state: &State, tx: &Transaction) -> bool {
        tx.nonce < state.account(&tx.sender).nonce
            || self.senders.get(&tx.sender).is_some_and(|queue| queue.contains_key(&tx.nonce))
    }

    /// The nonce a sender's next transaction should carry, counting the ones waiting here.
    pub fn next_nonce(&self, state: &State, sender: &Address) -> Nonce {
        let mut next = state.account(sender).nonce;
        if let Some(queue) = self.senders.get(sender) {
            while queue.contains_key(&next) {
                match next.next() {
                    Some(after) => next = after,
                    None => break,
                }
            }
        }
        next
    }

    /// Admits a verified transaction, checking it against `state` as of chain time `now`.
    /// Returns whether it can go into the very next block (its nonce is the sender's next).
    pub fn admit(
        &mut self,
        tx: VerifiedTransaction,
        state: &mut State,
        now: TimestampMs,
    ) -> Result<bool, AdmitError> {
        let hash = tx.hash();
        if self.hashes.contains_key(&hash) {
            return Err(AdmitError::Duplicate(hash));
        }
        let sender = tx.tx().sender;
        let nonce = tx.tx().nonce;
        let next = state.account(&sender).nonce;
        if nonce < next {
            return Err(AdmitError::NonceUsed { next, got: nonce });
        }
        let ahead = nonce.0 - next.0;
        if ahead >= self.limits.max_per_sender as u64 {
            return Err(AdmitError::NonceTooFarAhead {
                next,
                got: nonce,
                max_ahead: self.limits.max_per_sender,
            });
        }
        let queue_len = self.senders.get(&sender).map_or(0, BTreeMap::len);
        if self.senders.get(&sender).is_some_and(|queue| queue.contains_key(&nonce)) {
            return Err(AdmitError::NonceTaken(nonce));
        }
        state.check(tx.tx(), now).map_err(AdmitError::Invalid)?;
        if queue_len >= self.limits.max_per_sender {
            return Err(AdmitError::SenderFull(queue_len));
        }
        if self.hashes.len() >= self.limits.max_txs {
            return Err(AdmitError::Full(self.hashes.len()));
        }
        let arrival = self.next_arrival;
        self.next_arrival += 1;
        self.hashes.insert(hash, (sender, nonce));
        self.senders.entry(sender).or_default().insert(nonce, Waiting { tx, arrival });
        Ok(nonce == next)
    }

    /// Whether some transaction could go into the next block.
    pub fn has_ready(&self, state: &State) -> bool {
        self.senders.iter().any(|(sender, queue)| queue.contains_key(&state.account(sender).nonce))
    }

    /// Up to `max` transactions for the next block: of the transactions that may come next
    /// (each sender's at its next nonce, then the one after it once that is taken), the
    /// highest fee first, and among equal fees the oldest arrival; each sender's in nonce order
    /// from its next nonce, stopping at a gap. They stay in the pool and leave it when a
    /// block that uses their nonces is committed ([`Mempool::prune`]), so a block that is
    /// proposed but not decided loses nothing.
    pub fn select_block(&self, state: &State, max: usize) -> Vec<VerifiedTransaction> {
        // The smallest key comes first: the highest fee, then the oldest arrival.
        let key = |waiting: &Waiting, sender: Address, nonce: Nonce| {
            Reverse((Reverse(waiting.tx.tx().fee), waiting.arrival, sender, nonce))
        };
        let mut heads: BinaryHeap<Reverse<SelectionKey>> = BinaryHeap::new();
        for (sender, queue) in &self.senders {
            let next = state.account(sender).nonce;
            if let Some(waiting) = queue.get(&next) {
                heads.push(key(waiting, *sender, next));
            }
        }
        let mut block = Vec::new();
        while block.len() < max {
            let Some(Reverse((_, _, sender, nonce))) = heads.pop() else { break };
            let Some(queue) = self.senders.get(&sender) else { continue };
            let Some(waiting) = queue.get(&nonce) else { continue };
            if let Some(following) = nonce.next()
                && let Some(next_waiting) = queue.get(&following)
            {
                heads.push(key(next_waiting, sender, following));
            }
            block.push(waiting.tx.clone());
        }
        block
    }

    /// Drops transactions whose nonce a committed block has used (they can never execute).
    pub fn prune(&mut self, state: &State) -> usize {
        let mut pruned = 0;
        let hashes = &mut self.hashes;
        self.senders.retain(|sender, queue| {
            let next = state.account(sender).nonce;
            while let Some(entry) = queue.first_entry() {
                if *entry.key() >= next {
                    break;
                }
                hashes.remove(&entry.remove().tx.hash());
                pruned += 1;
            }
            !queue.is_empty()
        });
        pruned
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use primitives::{
        ChainParams, TimestampMs,
        testing::{self, address, chain_id},
    };

    const CHAIN: &str = "pool";
    const NOW: TimestampMs = TimestampMs(1_000);

    fn state() -> State {
        let balances = [(1, 100), (2, 100), (3, 100)];
        let genesis =
            testing::genesis(CHAIN, 100, 0, &balances, ChainParams::default(), TimestampMs(0));
        State::from_genesis(&genesis).unwrap()
    }

    fn transfer(seed: u8, nonce: u64, amount: u128) -> VerifiedTransaction {
        testing::transfer(CHAIN, seed, nonce, 9, amount).verify(&chain_id(CHAIN)).unwrap()
    }

    #[test]
    fn refuses_what_cannot_execute() {
        let mut state = state();
        let mut pool = Mempool::new(MempoolLimits { max_txs: 3, max_per_sender: 2 });
        assert_eq!(pool.admit(transfer(1, 0, 10), &mut state, NOW), Ok(true));
        assert_eq!(
            pool.admit(transfer(1, 0, 10), &mut state, NOW),
            Err(AdmitError::Duplicate(transfer(1, 0, 10).hash()))
        );
        assert_eq!(
            pool.admit(transfer(1, 0, 11), &mut state, NOW),
            Err(AdmitError::NonceTaken(Nonce(0)))
        );
        assert!(matches!(
            pool.admit(transfer(1, 2, 10), &mut state, NOW),
            Err(AdmitError::NonceTooFarAhead { .. })
        ));
        assert!(matches!(
            pool.admit(transfer(2, 0, 101), &mut state, NOW),
            Err(AdmitError::Invalid(TxError::InsufficientBalance { .. }))
        ));
        assert!(matches!(
            pool.admit(transfer(4, 0, 1), &mut state, NOW),
            Err(AdmitError::Invalid(_))
        ));
        assert_eq!(pool.admit(transfer(1, 1, 10), &mut state, NOW), Ok(false));
        assert_eq!(pool.admit(transfer(2, 0, 10), &mut state, NOW), Ok(true));
        assert_eq!(pool.admit(transfer(3, 0, 10), &mut state, NOW), Err(AdmitError::Full(3)));
        assert_eq!(pool.len(), 3);
        assert_eq!(pool.next_nonce(&state, &address(1)), Nonce(2));
    }

    #[test]
    fn blocks_follow_arrival_and_nonce_order_and_stop_at_gaps() {
        let mut state = state();
        let mut pool = Mempool::new(MempoolLimits::default());
        // Sender 1's nonce 1 arrives before its nonce 0; sender 2 has a gap at nonce 1.
        for tx in [
            transfer(1, 1, 1),
            transfer(2, 0, 1),
            transfer(1, 0, 1),
            transfer(2, 2, 1),
            transfer(3, 0, 1),
        ] {
            pool.admit(tx, &mut state, NOW).unwrap();
        }
        assert!(pool.has_ready(&state));
        let block = pool.select_block(&state, 10);
        let order: Vec<(Address, u64)> =
            block.iter().map(|tx| (tx.tx().sender, tx.tx().nonce.0)).collect();
        assert_eq!(order, vec![(address(2), 0), (address(1), 0), (address(1), 1), (address(3), 0)]);
        assert_eq!(pool.len(), 5, "selected transactions stay until a block commits them");
        assert_eq!(state.apply_block(NOW, &block).unwrap().receipts.len(), 4);
        assert_eq!(pool.prune(&state), 4);
        assert_eq!(pool.len(), 1, "sender 2's nonce 2 waits for nonce 1");
        assert!(!pool.has_ready(&state));
        pool.admit(transfer(2, 1, 1), &mut state, NOW).unwrap();
        assert_eq!(pool.select_block(&state, 1).len(), 1, "the limit is respected");
        assert_eq!(pool.len(), 2);
    }

    #[test]
    fn blocks_take_higher_fees_first_within_each_senders_nonce_order() {
        let mut state = state();
        let mut pool = Mempool::new(MempoolLimits::default());
        let paying = |seed: u8, nonce: u64, fee: u128| {
            primitives::Transaction {
                chain_id: chain_id(CHAIN),
                sender: address(seed),
                nonce: Nonce(nonce),
                fee: primitives::Amount(fee),
                payload: primitives::Payload::Transfer {
                    to: address(9),
                    amount: primitives::Amount(1),
                },
            }
            .sign(&testing::key(seed))
            .verify(&chain_id(CHAIN))
            .unwrap()
        };
        // In order of arrival: sender 1 pays nothing; sender 2 pays 5 and then nothing; sender
        // 3 pays nothing and then 9, which must wait for its nonce 0.
        for tx in
            [paying(1, 0, 0), paying(2, 0, 5), paying(2, 1, 0), paying(3, 0, 0), paying(3, 1, 9)]
        {
            pool.admit(tx, &mut state, NOW).unwrap();
        }
        let order = |block: Vec<VerifiedTransaction>| -> Vec<(u8, u64)> {
            block
                .iter()
                .map(|tx| {
                    let seed = (1..=3).find(|seed| address(*seed) == tx.tx().sender).unwrap();
                    (seed, tx.tx().nonce.0)
                })
                .collect()
        };
        assert_eq!(
            order(pool.select_block(&state, 10)),
            vec![(2, 0), (1, 0), (2, 1), (3, 0), (3, 1)],
            "the fee of 5 first; equal fees by arrival; the fee of 9 after its sender's nonce 0"
        );
        assert_eq!(order(pool.select_block(&state, 2)), vec![(2, 0), (1, 0)]);
        let block = pool.select_block(&state, 10);
        assert_eq!(state.apply_block(NOW, &block).unwrap().receipts.len(), 5, "all execute");
    }

    #[test]
    fn knows_what_is_committed_or_waiting_and_nothing_else() {
        let mut state = state();
        let mut pool = Mempool::new(MempoolLimits::default());
        pool.admit(transfer(1, 0, 5), &mut state, NOW).unwrap();
        let signed = |seed, nonce, amount| testing::transfer(CHAIN, seed, nonce, 9, amount).tx;
        assert!(pool.knows(&state, &signed(1, 0, 5)), "waiting");
        assert!(pool.knows(&state, &signed(1, 0, 6)), "another one at a waiting nonce");
        assert!(!pool.knows(&state, &signed(1, 1, 5)), "the next nonce");
        assert!(!pool.knows(&state, &signed(2, 0, 5)), "another sender");
        state.apply_block(NOW, &[transfer(2, 0, 7)]).unwrap();
        assert!(pool.knows(&state, &signed(2, 0, 5)), "committed");
        assert!(!pool.knows(&state, &signed(2, 1, 5)), "after the committed one");
    }

    #[test]
    fn committed_nonces_are_pruned() {
        let mut state = state();
        let mut pool = Mempool::new(MempoolLimits::default());
        pool.admit(transfer(1, 0, 5), &mut state, NOW).unwrap();
        pool.admit(transfer(1, 1, 5), &mut state, NOW).unwrap();
        // Another node's block used nonce 0 with a different transaction.
        state.apply_block(NOW, &[transfer(1, 0, 7)]).unwrap();
        assert_eq!(pool.prune(&state), 1);
        assert_eq!(pool.len(), 1);
        assert!(pool.contains(&transfer(1, 1, 5).hash()));
        assert!(matches!(
            pool.admit(transfer(1, 0, 5), &mut state, NOW),
            Err(AdmitError::NonceUsed { .. })
        ));
    }
}
