//! The ledger state: typed maps, the journal that makes blocks and transactions undoable (and
//! the [`UndoData`] that undoes a finished block), and the state entries the store persists.
//!
//! Every change goes through [`State::put`]: it records the entry's previous bytes in the block
//! journal (and in the transaction journal while a transaction runs) and then loads the new
//! bytes into the typed maps with [`State::load`], the same function that rebuilds a state from
//! the store and undoes a change. So the persisted entries, the journal and the typed maps (and
//! the indexes derived from them) can never disagree.

use crate::{
    accounts::Accounts,
    commitment::StateTree,
    error::{StateError, UndoError},
    keys::{self, FiatKind, Key},
    types::{
        Account, ClearedSlot, Contract, Cursor, Meter, OpenOrder, SlotReadings, StateDiff, Supply,
        UndoData, ValidatorChange,
    },
};
use primitives::{
    Address, Amount, ChainConfig, ContractId, FiatRef, Genesis, Hash, Nonce, OrderId, Side, Slot,
    Tariffs, decode, encode, hash::domain,
};
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Arc,
};

/// How a transaction's changes are journaled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Savepoint {
    /// Not inside a transaction: changes are only recorded for the block.
    None,
    /// A transaction that may commit: changes are recorded for the block and the transaction.
    Execute,
    /// A probe that is always undone (mempool admission): only the transaction journal.
    Probe,
}

/// The whole ledger state.
#[derive(Clone, Debug)]
pub struct State {
    pub(crate) config: ChainConfig,
    pub(crate) accounts: Accounts,
    pub(crate) supply: Supply,
    pub(crate) fiat_refs: HashSet<(FiatKind, FiatRef)>,
    pub(crate) cursor: Cursor,
    /// The validator set installed for a later height, if any.
    pub(crate) next_validators: Option<ValidatorChange>,
    pub(crate) tariffs: BTreeMap<Slot, Tariffs>,
    pub(crate) meters: HashMap<Address, Meter>,
    pub(crate) readings: BTreeMap<(Slot, Address), SlotReadings>,
    pub(crate) orders: BTreeMap<(Slot, OrderId), OpenOrder>,
    pub(crate) cleared: BTreeMap<Slot, ClearedSlot>,
    pub(crate) contracts: BTreeMap<ContractId, Contract>,
    /// On chains that settle only on confirmed blocks: the settlement bound (the first slot
    /// whose deadline had not passed) each of the last blocks saw when it raised it, oldest
    /// first, as `(height, bound)`.
    pub(crate) settle_bounds: Vec<(primitives::Height, Slot)>,
    /// The proposer of the block being executed: it collects the fees (and a proof-of-work
    /// block's reward). Not part of the state's entries.
    pub(crate) proposer: Option<Address>,
    /// Derived: active meters per owner.
    pub(crate) active_meters: HashMap<Address, u32>,
    /// Derived: the slot of each open order.
    pub(crate) order_slots: HashMap<OrderId, Slot>,
    /// Derived: per slot and account, how many open orders of each side.
    pub(crate) slot_sides: HashMap<(Slot, Address), (u32, u32)>,
    tree: StateTree,
    root: Hash,
    /// Entry bytes before the current block, for every entry the block touched.
    journal: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Entry bytes before the current transaction, in touch order.
    tx_journal: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    tx_keys: HashSet<Vec<u8>>,
    savepoint: Savepoint,
    /// What undoes the last finished block, so that a block executed but not decided can be
    /// reverted.
    last_block: Option<Arc<UndoData>>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn wrap_root(tree_root: Hash) -> Hash {
    Hash::digest(domain::STATE_ROOT, &[&tree_root.0])
}

impl State {
    fn empty(config: ChainConfig) -> State {
        State {
            config,
            accounts: Accounts::default(),
            supply: Supply::default(),
            fiat_refs: HashSet::new(),
            cursor: Cursor::default(),
            next_validators: None,
            tariffs: BTreeMap::new(),
            meters: HashMap::new(),
            readings: BTreeMap::new(),
            orders: BTreeMap::new(),
            cleared: BTreeMap::new(),
            contracts: BTreeMap::new(),
            settle_bounds: Vec::new(),
            proposer: None,
            active_meters: HashMap::new(),
            order_slots: HashMap::new(),
            slot_sides: HashMap::new(),
            tree: StateTree::default(),
            root: Hash::ZERO,
            journal: BTreeMap::new(),
            tx_journal: Vec::new(),
            tx_keys: HashSet::new(),
            savepoint: Savepoint::None,
            last_block: None,
        }
    }

    /// The state of block 0.
    pub fn from_genesis(genesis: &Genesis) -> Result<State, StateError> {
        genesis.validate()?;
        let mut state = State::empty(genesis.config.clone());
        let mut minted = Amount::ZERO;
        for (address, balance) in &genesis.balances {
            minted =
                minted.checked_add(*balance).ok_or(primitives::GenesisError::SupplyOverflow)?;
            state.accounts.insert(*address, Account { balance: *balance, ..Account::default() });
        }
        state.supply = Supply { minted, ..Supply::default() };
        let first_slot = genesis.config.market.slot_of(genesis.genesis_time);
        state.cursor = Cursor {
            time: genesis.genesis_time,
            next_clear: first_slot,
            next_settle: first_slot,
            ..Cursor::default()
        };
        state.tariffs.insert(Slot(0), genesis.config.market.tariffs);
        state.rebuild_commitment();
        Ok(state)
    }

    /// Rebuilds a state from persisted entries (as written from [`State::entries`] and
    /// [`StateDiff`]s), in any order.
    pub fn from_entries(
        entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    ) -> Result<State, StateError> {
        let mut entries: Vec<(Vec<u8>, Vec<u8>)> = entries.into_iter().collect();
        entries.sort();
        State::from_ordered_entries(entries)
    }

    /// Rebuilds a state from persisted entries in strictly increasing key order, as a store's
    /// table yields them, one at a time: a state of a million accounts is never held twice.
    pub fn from_ordered_entries(
        entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    ) -> Result<State, StateError> {
        let mut entries = entries.into_iter();
        // The configuration's key is the smallest there is: it comes first.
        let (config_key, config_bytes) = entries
            .next()
            .filter(|(key, _)| *key == keys::config())
            .ok_or(StateError::Missing("chain configuration"))?;
        let config: ChainConfig = decode(&config_bytes).map_err(|error| StateError::BadValue {
            key: hex(&config_key),
            reason: error.to_string(),
        })?;
        let mut state = State::empty(config);
        let (supply, cursor) = (keys::supply(), keys::cursor());
        let (mut has_supply, mut has_cursor) = (false, false);
        let mut previous = config_key;
        for (key, value) in entries {
            if key <= previous {
                return Err(StateError::OutOfOrder(hex(&key)));
            }
            state.load(&key, Some(&value))?;
            has_supply |= key == supply;
            has_cursor |= key == cursor;
            previous = key;
        }
        if !has_supply {
            return Err(StateError::Missing("supply"));
        }
        if !has_cursor {
            return Err(StateError::Missing("market cursor"));
        }
        state.rebuild_commitment();
        Ok(state)
    }

    /// Every entry of the state, in key order.
    pub fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut entries: Vec<(Vec<u8>, Vec<u8>)> = self
            .keys()
            .filter_map(|key| self.value_of(&key).map(|value| (keys::render(&key), value)))
            .collect();
        entries.sort();
        entries
    }

    /// The key of every entry that may exist, in no particular order, one at a time.
    fn keys(&self) -> impl Iterator<Item = Key> + '_ {
        [Key::Config, Key::Supply, Key::Cursor, Key::NextValidators]
            .into_iter()
            .chain(self.accounts.addresses().map(|address| Key::Account(*address)))
            .chain(
                self.fiat_refs
                    .iter()
                    .map(|(kind, reference)| Key::FiatRef(*kind, reference.clone())),
            )
            .chain(self.tariffs.keys().map(|slot| Key::Tariffs(*slot)))
            .chain(self.meters.keys().map(|address| Key::Meter(*address)))
            .chain(self.readings.keys().map(|(slot, meter)| Key::Readings(*slot, *meter)))
            .chain(self.orders.keys().map(|(slot, id)| Key::Order(*slot, *id)))
            .chain(self.cleared.keys().map(|slot| Key::Cleared(*slot)))
            .chain(self.contracts.keys().map(|id| Key::Contract(*id)))
            .chain(std::iter::once(Key::SettleBounds))
    }

    fn rebuild_commitment(&mut self) {
        // One entry at a time: the tree does not need them in order, and a state of a million
        // accounts need not be encoded all at once.
        let mut tree = StateTree::default();
        for key in self.keys() {
            if let Some(value) = self.value_of(&key) {
                tree.insert(&keys::render(&key), &value);
            }
        }
        self.root = wrap_root(tree.root());
        self.tree = tree;
    }

    /// The current bytes of an entry (`None` if absent).
    fn value_of(&self, key: &Key) -> Option<Vec<u8>> {
        match key {
            Key::Config => Some(encode(&self.config)),
            Key::Supply => Some(encode(&self.supply)),
            Key::Cursor => Some(encode(&self.cursor)),
            Key::NextValidators => self.next_validators.as_ref().map(encode),
            Key::Account(address) => self.accounts.get(address).as_ref().map(encode),
            Key::FiatRef(kind, reference) => {
                self.fiat_refs.contains(&(*kind, reference.clone())).then(Vec::new)
            }
            Key::Tariffs(slot) => self.tariffs.get(slot).map(encode),
            Key::Meter(address) => self.meters.get(address).map(encode),
            Key::Readings(slot, meter) => self.readings.get(&(*slot, *meter)).map(encode),
            Key::Order(slot, id) => self.orders.get(&(*slot, *id)).map(encode),
            Key::Cleared(slot) => self.cleared.get(slot).map(encode),
            Key::Contract(id) => self.contracts.get(id).map(encode),
            Key::SettleBounds => {
                (!self.settle_bounds.is_empty()).then(|| encode(&self.settle_bounds))
            }
        }
    }

    /// Sets an entry from bytes (`None` removes it), keeping the derived indexes in step. The
    /// one way the typed maps change.
    fn load(&mut self, raw_key: &[u8], value: Option<&[u8]>) -> Result<(), StateError> {
        let key = keys::parse(raw_key).ok_or_else(|| StateError::UnknownKey(hex(raw_key)))?;
        fn typed<T: borsh::BorshDeserialize>(
            raw_key: &[u8],
            value: Option<&[u8]>,
        ) -> Result<Option<T>, StateError> {
            value
                .map(|bytes| {
                    decode(bytes).map_err(|error| StateError::BadValue {
                        key: hex(raw_key),
                        reason: error.to_string(),
                    })
                })
                .transpose()
        }
        match key {
            Key::Config => {
                if let Some(config) = typed(raw_key, value)? {
                    self.config = config;
                }
            }
            Key::Supply => self.supply = typed(raw_key, value)?.unwrap_or_default(),
            Key::Cursor => self.cursor = typed(raw_key, value)?.unwrap_or_default(),
            Key::NextValidators => self.next_validators = typed(raw_key, value)?,
            Key::Account(address) => match typed::<Account>(raw_key, value)? {
                Some(account) => {
                    self.accounts.insert(address, account);
                }
                None => {
                    self.accounts.remove(&address);
                }
            },
            Key::FiatRef(kind, reference) => {
                if value.is_some() {
                    self.fiat_refs.insert((kind, reference));
                } else {
                    self.fiat_refs.remove(&(kind, reference));
                }
            }
            Key::Tariffs(slot) => match typed::<Tariffs>(raw_key, value)? {
                Some(tariffs) => {
                    self.tariffs.insert(slot, tariffs);
                }
                None => {
                    self.tariffs.remove(&slot);
                }
            },
            Key::Meter(address) => {
                let new: Option<Meter> = typed(raw_key, value)?;
                if let Some(old) = self.meters.get(&address).copied()
                    && old.active
                {
                    adjust(&mut self.active_meters, old.owner, false);
                }
                match new {
                    Some(meter) => {
                        if meter.active {
                            adjust(&mut self.active_meters, meter.owner, true);
                        }
                        self.meters.insert(address, meter);
                    }
                    None => {
                        self.meters.remove(&address);
                    }
                }
            }
            Key::Readings(slot, meter) => match typed::<SlotReadings>(raw_key, value)? {
                Some(readings) => {
                    self.readings.insert((slot, meter), readings);
                }
                None => {
                    self.readings.remove(&(slot, meter));
                }
            },
            Key::Order(slot, id) => {
                let new: Option<OpenOrder> = typed(raw_key, value)?;
                if let Some(old) = self.orders.remove(&(slot, id)) {
                    self.order_slots.remove(&id);
                    count_side(&mut self.slot_sides, slot, old.owner, old.side, false);
                }
                if let Some(order) = new {
                    self.order_slots.insert(id, slot);
                    count_side(&mut self.slot_sides, slot, order.owner, order.side, true);
                    self.orders.insert((slot, id), order);
                }
            }
            Key::Cleared(slot) => match typed::<ClearedSlot>(raw_key, value)? {
                Some(cleared) => {
                    self.cleared.insert(slot, cleared);
                }
                None => {
                    self.cleared.remove(&slot);
                }
            },
            Key::Contract(id) => match typed::<Contract>(raw_key, value)? {
                Some(contract) => {
                    self.contracts.insert(id, contract);
                }
                None => {
                    self.contracts.remove(&id);
                }
            },
            Key::SettleBounds => self.settle_bounds = typed(raw_key, value)?.unwrap_or_default(),
        }
        Ok(())
    }

    /// Changes an entry, journaling what it was.
    pub(crate) fn put(&mut self, key: Key, value: Option<Vec<u8>>) {
        let raw = keys::render(&key);
        if self.savepoint != Savepoint::Probe && !self.journal.contains_key(&raw) {
            self.journal.insert(raw.clone(), self.value_of(&key));
        }
        if self.savepoint != Savepoint::None && self.tx_keys.insert(raw.clone()) {
            self.tx_journal.push((raw.clone(), self.value_of(&key)));
        }
        // Loading bytes this state just encoded cannot fail.
        let _ = self.load(&raw, value.as_deref());
    }

    pub(crate) fn set_account(&mut self, address: Address, account: Account) {
        self.put(Key::Account(address), Some(encode(&account)));
    }

    pub(crate) fn set_supply(&mut self, supply: Supply) {
        self.put(Key::Supply, Some(encode(&supply)));
    }

    pub(crate) fn set_cursor(&mut self, cursor: Cursor) {
        self.put(Key::Cursor, Some(encode(&cursor)));
    }

    pub(crate) fn set_settle_bounds(&mut self, bounds: Vec<(primitives::Height, Slot)>) {
        let value = (!bounds.is_empty()).then(|| encode(&bounds));
        self.put(Key::SettleBounds, value);
    }

    pub(crate) fn set_next_validators(&mut self, change: Option<ValidatorChange>) {
        self.put(Key::NextValidators, change.as_ref().map(encode));
    }

    /// Hands over to the installed validator set at the start of the first block it decides:
    /// `config().validators` are always the validators of the current (or last) block.
    pub(crate) fn hand_over_validators(&mut self) {
        let Some(change) = self.next_validators.clone() else { return };
        if change.from > self.cursor.height {
            return;
        }
        let mut config = self.config.clone();
        config.validators = change.validators;
        self.put(Key::Config, Some(encode(&config)));
        self.set_next_validators(None);
    }

    pub(crate) fn use_fiat_ref(&mut self, kind: FiatKind, reference: FiatRef) {
        self.put(Key::FiatRef(kind, reference), Some(Vec::new()));
    }

    pub(crate) fn set_tariffs(&mut self, slot: Slot, tariffs: Tariffs) {
        self.put(Key::Tariffs(slot), Some(encode(&tariffs)));
    }

    pub(crate) fn set_meter(&mut self, address: Address, meter: Meter) {
        self.put(Key::Meter(address), Some(encode(&meter)));
    }

    pub(crate) fn set_readings(
        &mut self,
        slot: Slot,
        meter: Address,
        readings: Option<SlotReadings>,
    ) {
        self.put(Key::Readings(slot, meter), readings.map(|readings| encode(&readings)));
    }

    pub(crate) fn set_order(&mut self, slot: Slot, id: OrderId, order: Option<OpenOrder>) {
        self.put(Key::Order(slot, id), order.map(|order| encode(&order)));
    }

    pub(crate) fn set_cleared(&mut self, slot: Slot, cleared: Option<ClearedSlot>) {
        self.put(Key::Cleared(slot), cleared.map(|cleared| encode(&cleared)));
    }

    pub(crate) fn set_contract(&mut self, id: ContractId, contract: Contract) {
        self.put(Key::Contract(id), Some(encode(&contract)));
    }

    /// Starts a transaction: its changes can be undone with [`State::rollback_tx`]. A probe is
    /// always undone and leaves no trace in the block journal.
    pub(crate) fn begin_tx(&mut self, probe: bool) {
        self.savepoint = if probe { Savepoint::Probe } else { Savepoint::Execute };
        self.tx_journal.clear();
        self.tx_keys.clear();
    }

    /// Keeps the transaction's changes.
    pub(crate) fn commit_tx(&mut self) {
        self.savepoint = Savepoint::None;
        self.tx_journal.clear();
        self.tx_keys.clear();
    }

    /// Undoes the transaction's changes.
    pub(crate) fn rollback_tx(&mut self) {
        let journal = std::mem::take(&mut self.tx_journal);
        for (key, before) in journal.into_iter().rev() {
            let _ = self.load(&key, before.as_deref());
        }
        self.commit_tx();
    }

    /// Ends the current block: returns the entries it changed, the new state root, and the
    /// entries' bytes before the block ([`UndoData`], for [`State::undo_block`]).
    pub fn finish_block(&mut self) -> StateDiff {
        self.proposer = None;
        let journal = std::mem::take(&mut self.journal);
        let mut changes = Vec::with_capacity(journal.len());
        let mut undo = Vec::with_capacity(journal.len());
        for (raw, before) in journal {
            let now = keys::parse(&raw).and_then(|key| self.value_of(&key));
            if now != before {
                changes.push((raw.clone(), now));
                undo.push((raw, before));
            }
        }
        for (key, value) in &changes {
            match value {
                Some(value) => self.tree.insert(key, value),
                None => self.tree.remove(key),
            }
        }
        let root_before = self.root;
        self.root = wrap_root(self.tree.root());
        let undo = Arc::new(UndoData { entries: undo, root_before, root_after: self.root });
        self.last_block = Some(undo.clone());
        StateDiff { changes, root: self.root, undo }
    }

    /// Undoes the last finished block, as long as no other block has been started since: a
    /// validator executes a proposed block to check it, and reverts it when another block is
    /// decided instead. Returns whether there was a block to revert.
    pub fn revert_block(&mut self) -> bool {
        self.discard_block();
        let Some(undo) = self.last_block.take() else { return false };
        // The data was made by this state for its current root: it applies.
        self.undo_block(&undo).is_ok()
    }

    /// Undoes a finished block from its [`UndoData`] (kept by the store for blocks a chain may
    /// still undo): afterwards the entries, the typed maps, their derived indexes and the root are
    /// exactly what they were before the block. Blocks are undone newest first, each from the
    /// state it produced; anything else is refused and changes nothing.
    pub fn undo_block(&mut self, undo: &UndoData) -> Result<(), UndoError> {
        if !self.journal.is_empty() || self.savepoint != Savepoint::None {
            return Err(UndoError::BlockInProgress);
        }
        if self.root != undo.root_after {
            return Err(UndoError::WrongState { expected: undo.root_after, actual: self.root });
        }
        // What the entries hold now, to put back if the data turns out not to apply.
        let mut replaced: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::with_capacity(undo.entries.len());
        for (key, before) in &undo.entries {
            let current = keys::parse(key).and_then(|parsed| self.value_of(&parsed));
            if let Err(error) = self.set_entry(key, before.as_deref()) {
                self.restore(replaced);
                return Err(UndoError::BadEntry(error));
            }
            replaced.push((key.clone(), current));
        }
        let root = wrap_root(self.tree.root());
        if root != undo.root_before {
            self.restore(replaced);
            return Err(UndoError::RootMismatch { expected: undo.root_before, got: root });
        }
        self.root = root;
        self.last_block = None;
        Ok(())
    }

    /// Sets an entry in the typed maps and in the commitment tree (the root is not recomputed).
    fn set_entry(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), StateError> {
        self.load(key, value)?;
        match value {
            Some(value) => self.tree.insert(key, value),
            None => self.tree.remove(key),
        }
        Ok(())
    }

    /// Puts back the entries [`State::undo_block`] replaced, newest first.
    fn restore(&mut self, replaced: Vec<(Vec<u8>, Option<Vec<u8>>)>) {
        for (key, value) in replaced.into_iter().rev() {
            // Bytes this state encoded itself always load.
            let _ = self.set_entry(&key, value.as_deref());
        }
    }

    /// Undoes everything since the last [`State::finish_block`].
    pub fn discard_block(&mut self) {
        self.proposer = None;
        if self.savepoint != Savepoint::None {
            self.rollback_tx();
        }
        let journal = std::mem::take(&mut self.journal);
        for (key, before) in journal {
            let _ = self.load(&key, before.as_deref());
        }
    }

    /// The state root as of the last finished block.
    pub fn root(&self) -> Hash {
        self.root
    }

    /// The chain's rules and roles; its validators are those of the last finished block (see
    /// [`State::validators_at`] for the next ones).
    pub fn config(&self) -> &ChainConfig {
        &self.config
    }

    /// The validators of `height`, the last finished block's or a later one: the current set,
    /// or the installed one from its first height on. Exact up to two heights past the last
    /// finished block (a change is announced at least two heights ahead); beyond that, a change
    /// in a block not yet executed may still be missing.
    pub fn validators_at(&self, height: primitives::Height) -> &[primitives::Validator] {
        match &self.next_validators {
            Some(change) if change.from <= height => &change.validators,
            _ => &self.config.validators,
        }
    }

    /// The validator set waiting to take over at a later height, if any.
    pub fn next_validators(&self) -> Option<&ValidatorChange> {
        self.next_validators.as_ref()
    }

    /// The supply counters.
    pub fn supply(&self) -> Supply {
        self.supply
    }

    /// The market's counters and clock, the grid's balance among them.
    pub fn cursor(&self) -> Cursor {
        self.cursor
    }

    /// An account (a never-seen address is an empty account).
    pub fn account(&self, address: &Address) -> Account {
        self.accounts.get(address).unwrap_or_default()
    }

    /// Every account that exists.
    pub fn accounts(&self) -> impl Iterator<Item = (&Address, Account)> {
        self.accounts.iter()
    }

    /// The sender's next nonce.
    pub fn nonce(&self, address: &Address) -> Nonce {
        self.account(address).nonce
    }

    /// A registered meter.
    pub fn meter(&self, address: &Address) -> Option<Meter> {
        self.meters.get(address).copied()
    }

    /// An open order.
    pub fn order(&self, id: OrderId) -> Option<(Slot, OpenOrder)> {
        let slot = *self.order_slots.get(&id)?;
        self.orders.get(&(slot, id)).map(|order| (slot, *order))
    }

    /// A contract.
    pub fn contract(&self, id: ContractId) -> Option<Contract> {
        self.contracts.get(&id).copied()
    }

    /// The tariffs in force for `slot`.
    pub fn tariffs_for(&self, slot: Slot) -> Tariffs {
        self.tariffs
            .range(..=slot)
            .next_back()
            .map(|(_, tariffs)| *tariffs)
            .unwrap_or(self.config.market.tariffs)
    }

    /// Whether `owner` has an open order on `side` in `slot`.
    pub(crate) fn has_side(&self, slot: Slot, owner: Address, side: Side) -> bool {
        self.slot_sides.get(&(slot, owner)).is_some_and(|(bids, asks)| match side {
            Side::Bid => *bids > 0,
            Side::Ask => *asks > 0,
        })
    }

    /// The identity `Σ (balance + reserved) + grid − Σ arrears = minted − redeemed + rewarded`,
    /// checked: `Ok(())` or the two sides that differ.
    pub fn check_conservation(&self) -> Result<(), (i128, i128)> {
        let mut held: i128 = self.cursor.grid;
        for (_, account) in self.accounts.iter() {
            held = held
                .saturating_add(i128::try_from(account.balance.0).unwrap_or(i128::MAX))
                .saturating_add(i128::try_from(account.reserved.0).unwrap_or(i128::MAX))
                .saturating_sub(i128::try_from(account.arrears.0).unwrap_or(i128::MAX));
        }
        let issued = i128::try_from(self.supply.circulating().0).unwrap_or(i128::MAX);
        if held == issued { Ok(()) } else { Err((held, issued)) }
    }
}

fn adjust(counts: &mut HashMap<Address, u32>, owner: Address, up: bool) {
    let count = counts.entry(owner).or_default();
    *count = if up { count.saturating_add(1) } else { count.saturating_sub(1) };
    if *count == 0 {
        counts.remove(&owner);
    }
}

fn count_side(
    counts: &mut HashMap<(Slot, Address), (u32, u32)>,
    slot: Slot,
    owner: Address,
    side: Side,
    up: bool,
) {
    let entry = counts.entry((slot, owner)).or_default();
    let count = match side {
        Side::Bid => &mut entry.0,
        Side::Ask => &mut entry.1,
    };
    *count = if up { count.saturating_add(1) } else { count.saturating_sub(1) };
    if *entry == (0, 0) {
        counts.remove(&(slot, owner));
    }
}

#[cfg(test)]
mod tests;
