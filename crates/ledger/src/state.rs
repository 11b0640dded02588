//! The ledger state and transaction execution.

use crate::{
    commitment::StateTree,
    error::{InclusionError, StateError, TxError},
    keys::{self, FiatKind},
};
use borsh::{BorshDeserialize, BorshSerialize};
use primitives::{
    Address, Amount, ChainConfig, FiatRef, Genesis, Hash, Nonce, Payload, Transaction,
    VerifiedTransaction, decode, encode, hash::domain,
};
use std::collections::{HashMap, HashSet};

/// An account: its tokens and the nonce its next transaction must carry.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct Account {
    /// Tokens held.
    pub balance: Amount,
    /// The nonce of the account's next transaction.
    pub nonce: Nonce,
}

/// Token issuance counters. The circulating supply is `minted - redeemed`, and it always equals
/// the sum of all balances.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct Supply {
    /// Tokens ever created (genesis balances included).
    pub minted: Amount,
    /// Tokens ever destroyed.
    pub redeemed: Amount,
}

impl Supply {
    /// `minted - redeemed`.
    pub fn circulating(&self) -> Amount {
        self.minted.checked_sub(self.redeemed).unwrap_or(Amount::ZERO)
    }
}

/// The outcome of one transaction in a block.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub enum Receipt {
    /// The transaction took effect.
    Success,
    /// The transaction used up its nonce and changed nothing else.
    Failed(TxError),
}

/// The entries a block changed, in key order (`None` = deleted), and the new state root.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct StateDiff {
    /// Changed entries.
    pub changes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// The state root after the change.
    pub root: Hash,
}

/// What applying a whole block produced.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BlockOutcome {
    /// One receipt per transaction, in block order.
    pub receipts: Vec<Receipt>,
    /// The entries changed and the new root.
    pub diff: StateDiff,
}

/// The effects of a valid transaction, computed before anything is written, so that a
/// transaction either takes effect entirely or not at all.
#[derive(Default)]
struct Plan {
    accounts: Vec<(Address, Account)>,
    supply: Option<Supply>,
    fiat_ref: Option<(FiatKind, FiatRef)>,
}

/// Pre-images of everything changed since the last [`State::finish_block`], so that a block can
/// be discarded and so that the block's [`StateDiff`] names exactly what it changed.
#[derive(Clone, Debug, Default)]
struct Journal {
    accounts: HashMap<Address, Option<Account>>,
    supply: Option<Supply>,
    fiat_refs: Vec<(FiatKind, FiatRef)>,
}

/// The whole ledger state.
#[derive(Clone, Debug)]
pub struct State {
    config: ChainConfig,
    accounts: HashMap<Address, Account>,
    supply: Supply,
    fiat_refs: HashSet<(FiatKind, FiatRef)>,
    tree: StateTree,
    root: Hash,
    journal: Journal,
}

impl State {
    /// The state of block 0.
    pub fn from_genesis(genesis: &Genesis) -> Result<State, StateError> {
        genesis.validate()?;
        let mut minted = Amount::ZERO;
        let mut accounts = HashMap::new();
        for (address, balance) in &genesis.balances {
            minted =
                minted.checked_add(*balance).ok_or(primitives::GenesisError::SupplyOverflow)?;
            accounts.insert(*address, Account { balance: *balance, nonce: Nonce(0) });
        }
        let mut state = State {
            config: genesis.config.clone(),
            accounts,
            supply: Supply { minted, redeemed: Amount::ZERO },
            fiat_refs: HashSet::new(),
            tree: StateTree::default(),
            root: Hash::ZERO,
            journal: Journal::default(),
        };
        state.rebuild_commitment();
        Ok(state)
    }

    /// Rebuilds a state from persisted entries (as written from [`State::entries`] and
    /// [`StateDiff`]s).
    pub fn from_entries(
        entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    ) -> Result<State, StateError> {
        let mut config = None;
        let mut supply = None;
        let mut accounts = HashMap::new();
        let mut fiat_refs = HashSet::new();
        for (key, value) in entries {
            let bad = |reason: String| StateError::BadValue { key: hex(&key), reason };
            match key.split_first() {
                Some((&keys::CONFIG, [])) => {
                    config = Some(decode::<ChainConfig>(&value).map_err(|e| bad(e.to_string()))?);
                }
                Some((&keys::SUPPLY, [])) => {
                    supply = Some(decode::<Supply>(&value).map_err(|e| bad(e.to_string()))?);
                }
                Some((&keys::ACCOUNT, rest)) => {
                    let bytes: [u8; 32] =
                        rest.try_into().map_err(|_| StateError::UnknownKey(hex(&key)))?;
                    let account = decode::<Account>(&value).map_err(|e| bad(e.to_string()))?;
                    accounts.insert(Address(primitives::PublicKey(bytes)), account);
                }
                Some((&keys::FIAT_REF, [kind, reference @ ..])) => {
                    let kind = match kind {
                        0 => FiatKind::Mint,
                        1 => FiatKind::Redeem,
                        _ => return Err(StateError::UnknownKey(hex(&key))),
                    };
                    let text = std::str::from_utf8(reference).map_err(|e| bad(e.to_string()))?;
                    fiat_refs.insert((kind, FiatRef::new(text).map_err(bad)?));
                }
                _ => return Err(StateError::UnknownKey(hex(&key))),
            }
        }
        let mut state = State {
            config: config.ok_or(StateError::Missing("chain configuration"))?,
            accounts,
            supply: supply.ok_or(StateError::Missing("supply"))?,
            fiat_refs,
            tree: StateTree::default(),
            root: Hash::ZERO,
            journal: Journal::default(),
        };
        state.rebuild_commitment();
        Ok(state)
    }

    /// Every entry of the state, in key order.
    pub fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut entries = Vec::with_capacity(self.accounts.len().saturating_add(2));
        entries.push((keys::config(), encode(&self.config)));
        entries.push((keys::supply(), encode(&self.supply)));
        for (address, account) in &self.accounts {
            entries.push((keys::account(address), encode(account)));
        }
        for (kind, reference) in &self.fiat_refs {
            entries.push((keys::fiat_ref(*kind, reference), Vec::new()));
        }
        entries.sort();
        entries
    }

    fn rebuild_commitment(&mut self) {
        let mut tree = StateTree::default();
        for (key, value) in self.entries() {
            tree.insert(key, &value);
        }
        self.root = wrap_root(tree.root());
        self.tree = tree;
    }

    /// The state root as of the last finished block.
    pub fn root(&self) -> Hash {
        self.root
    }

    /// The chain's rules and roles.
    pub fn config(&self) -> &ChainConfig {
        &self.config
    }

    /// The supply counters.
    pub fn supply(&self) -> Supply {
        self.supply
    }

    /// An account (a never-seen address is an empty account).
    pub fn account(&self, address: &Address) -> Account {
        self.accounts.get(address).copied().unwrap_or_default()
    }

    /// Every account that exists.
    pub fn accounts(&self) -> impl Iterator<Item = (&Address, &Account)> {
        self.accounts.iter()
    }

    /// Checks what a transaction would do against the current state, without its nonce and
    /// without changing anything. The mempool runs this before admission.
    pub fn check(&self, tx: &Transaction) -> Result<(), TxError> {
        self.plan(tx).map(drop)
    }

    /// Executes one transaction as the next one of the current block.
    ///
    /// `Err` means the transaction cannot be in a block at all (nothing changed). `Ok` carries
    /// the receipt: a failed transaction has consumed its nonce and changed nothing else.
    pub fn execute(&mut self, verified: &VerifiedTransaction) -> Result<Receipt, InclusionError> {
        let tx = verified.tx();
        let sender = self.account(&tx.sender);
        if tx.nonce != sender.nonce {
            return Err(InclusionError::WrongNonce { expected: sender.nonce, got: tx.nonce });
        }
        let next_nonce = sender.nonce.next().ok_or(InclusionError::NonceExhausted)?;
        let receipt = match self.plan(tx) {
            Ok(plan) => {
                self.apply(plan);
                Receipt::Success
            }
            Err(error) => Receipt::Failed(error),
        };
        let mut sender = self.account(&tx.sender);
        sender.nonce = next_nonce;
        self.set_account(tx.sender, sender);
        Ok(receipt)
    }

    /// Executes a whole block. On an inclusion error the block is discarded and the state is as
    /// before.
    pub fn apply_block(
        &mut self,
        txs: &[VerifiedTransaction],
    ) -> Result<BlockOutcome, (usize, InclusionError)> {
        let mut receipts = Vec::with_capacity(txs.len());
        for (index, tx) in txs.iter().enumerate() {
            match self.execute(tx) {
                Ok(receipt) => receipts.push(receipt),
                Err(error) => {
                    self.discard_block();
                    return Err((index, error));
                }
            }
        }
        Ok(BlockOutcome { receipts, diff: self.finish_block() })
    }

    /// Ends the current block: returns the entries it changed and updates the state root.
    pub fn finish_block(&mut self) -> StateDiff {
        let journal = std::mem::take(&mut self.journal);
        let mut changes: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::with_capacity(
            journal.accounts.len().saturating_add(journal.fiat_refs.len()).saturating_add(1),
        );
        for address in journal.accounts.keys() {
            let value = self.accounts.get(address).map(encode);
            changes.push((keys::account(address), value));
        }
        if journal.supply.is_some() {
            changes.push((keys::supply(), Some(encode(&self.supply))));
        }
        for (kind, reference) in &journal.fiat_refs {
            changes.push((keys::fiat_ref(*kind, reference), Some(Vec::new())));
        }
        changes.sort();
        for (key, value) in &changes {
            match value {
                Some(value) => self.tree.insert(key.clone(), value),
                None => self.tree.remove(key),
            }
        }
        self.root = wrap_root(self.tree.root());
        StateDiff { changes, root: self.root }
    }

    /// Undoes everything executed since the last [`State::finish_block`].
    pub fn discard_block(&mut self) {
        let journal = std::mem::take(&mut self.journal);
        for (address, before) in journal.accounts {
            match before {
                Some(account) => self.accounts.insert(address, account),
                None => self.accounts.remove(&address),
            };
        }
        if let Some(supply) = journal.supply {
            self.supply = supply;
        }
        for entry in journal.fiat_refs {
            self.fiat_refs.remove(&entry);
        }
    }

    fn set_account(&mut self, address: Address, account: Account) {
        let before = self.accounts.insert(address, account);
        self.journal.accounts.entry(address).or_insert(before);
    }

    fn apply(&mut self, plan: Plan) {
        for (address, account) in plan.accounts {
            self.set_account(address, account);
        }
        if let Some(supply) = plan.supply {
            self.journal.supply.get_or_insert(self.supply);
            self.supply = supply;
        }
        if let Some(entry) = plan.fiat_ref
            && self.fiat_refs.insert(entry.clone())
        {
            self.journal.fiat_refs.push(entry);
        }
    }

    /// Decides what `tx` does, with every check, and computes the new values it writes.
    fn plan(&self, tx: &Transaction) -> Result<Plan, TxError> {
        match &tx.payload {
            Payload::Transfer { to, amount } => {
                let sender = self.debited(&tx.sender, *amount)?;
                if *to == tx.sender {
                    return Ok(Plan::default());
                }
                let recipient = self.credited(to, *amount)?;
                Ok(Plan {
                    accounts: vec![(tx.sender, sender), (*to, recipient)],
                    ..Plan::default()
                })
            }
            Payload::Mint { to, amount, fiat_ref } => {
                self.require_issuer(&tx.sender)?;
                let fiat_ref = self.unused_fiat_ref(FiatKind::Mint, fiat_ref)?;
                let recipient = self.credited(to, *amount)?;
                let minted =
                    self.supply.minted.checked_add(*amount).ok_or(TxError::SupplyOverflow)?;
                Ok(Plan {
                    accounts: vec![(*to, recipient)],
                    supply: Some(Supply { minted, ..self.supply }),
                    fiat_ref: Some(fiat_ref),
                })
            }
            Payload::Redeem { amount, fiat_ref } => {
                self.require_issuer(&tx.sender)?;
                let fiat_ref = self.unused_fiat_ref(FiatKind::Redeem, fiat_ref)?;
                let issuer = self.debited(&tx.sender, *amount)?;
                let redeemed =
                    self.supply.redeemed.checked_add(*amount).ok_or(TxError::SupplyOverflow)?;
                Ok(Plan {
                    accounts: vec![(tx.sender, issuer)],
                    supply: Some(Supply { redeemed, ..self.supply }),
                    fiat_ref: Some(fiat_ref),
                })
            }
        }
    }

    fn debited(&self, address: &Address, amount: Amount) -> Result<Account, TxError> {
        if amount.is_zero() {
            return Err(TxError::ZeroAmount);
        }
        let mut account = self.account(address);
        account.balance = account
            .balance
            .checked_sub(amount)
            .ok_or(TxError::InsufficientBalance { balance: account.balance, needed: amount })?;
        Ok(account)
    }

    fn credited(&self, address: &Address, amount: Amount) -> Result<Account, TxError> {
        if amount.is_zero() {
            return Err(TxError::ZeroAmount);
        }
        let mut account = self.account(address);
        account.balance = account.balance.checked_add(amount).ok_or(TxError::BalanceOverflow)?;
        Ok(account)
    }

    fn require_issuer(&self, sender: &Address) -> Result<(), TxError> {
        if *sender != self.config.issuer {
            return Err(TxError::NotIssuer);
        }
        Ok(())
    }

    fn unused_fiat_ref(
        &self,
        kind: FiatKind,
        reference: &FiatRef,
    ) -> Result<(FiatKind, FiatRef), TxError> {
        let entry = (kind, reference.clone());
        if self.fiat_refs.contains(&entry) {
            return Err(TxError::FiatRefUsed(reference.clone()));
        }
        Ok(entry)
    }
}

fn wrap_root(tree_root: Hash) -> Hash {
    Hash::digest(domain::STATE_ROOT, &[&tree_root.0])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
