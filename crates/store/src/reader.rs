//! Reading a consistent snapshot of the chain.

use crate::writer::ClearingRecord;
use crate::{error::StoreError, tables, unwind::BlockUndo, writer::decode_height};
use ledger::{Account, Cursor, Receipt, State, Supply, UndoData};
use market::{book::Trade, settlement::SettlementRecord};
use primitives::{
    Address, Block, BlockHash, Genesis, Header, Height, SignedTransaction, Slot, TxHash, decode,
};
use redb::{ReadTransaction, ReadableTable, TableDefinition, TableHandle};
use std::collections::BTreeMap;

/// A state entry: key and value bytes.
pub type StateEntry = (Vec<u8>, Vec<u8>);

/// Every row of one table, as key and value bytes, in key order.
pub type TableRows = Vec<(Vec<u8>, Vec<u8>)>;

/// A snapshot of the database. Everything read through one reader is mutually consistent.
pub struct Reader {
    txn: ReadTransaction,
}

/// A committed transaction with where it is and what it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxRecord {
    /// The transaction.
    pub tx: SignedTransaction,
    /// Its receipt.
    pub receipt: Receipt,
    /// The block that holds it.
    pub height: Height,
    /// Its position in the block.
    pub index: u32,
}

/// One transaction in an account's history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The block.
    pub height: Height,
    /// Position in the block.
    pub index: u32,
    /// The transaction.
    pub tx_hash: TxHash,
}

impl Reader {
    pub(crate) fn new(txn: ReadTransaction) -> Reader {
        Reader { txn }
    }

    /// The genesis this database was initialised with.
    pub fn genesis(&self) -> Result<Option<Genesis>, StoreError> {
        let meta = self.txn.open_table(tables::META)?;
        match meta.get(tables::META_GENESIS)? {
            Some(bytes) => Ok(Some(decode(bytes.value())?)),
            None => Ok(None),
        }
    }

    /// The messages the consensus write-ahead log holds for `height`, in the order written.
    pub fn wal(&self, height: Height) -> Result<Vec<Vec<u8>>, StoreError> {
        let wal = self.txn.open_table(tables::WAL)?;
        let (start, end) =
            (crate::writer::wal_key(height.0, 0), crate::writer::wal_key(height.0, u32::MAX));
        let mut messages = Vec::new();
        for entry in wal.range::<&[u8; 12]>(&start..=&end)? {
            messages.push(entry?.1.value().to_vec());
        }
        Ok(messages)
    }

    /// The height of the last committed block (`None` before initialisation).
    pub fn head_height(&self) -> Result<Option<Height>, StoreError> {
        let meta = self.txn.open_table(tables::META)?;
        match meta.get(tables::META_HEAD)? {
            Some(bytes) => Ok(Some(decode_height(bytes.value())?)),
            None => Ok(None),
        }
    }

    /// The state the consensus engine last asked to keep, if any.
    pub fn engine_state(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let meta = self.txn.open_table(tables::META)?;
        Ok(meta.get(tables::META_ENGINE_STATE)?.map(|bytes| bytes.value().to_vec()))
    }

    /// The last height whose transactions are in the index by hash.
    pub fn indexed_height(&self) -> Result<Height, StoreError> {
        let meta = self.txn.open_table(tables::META)?;
        match meta.get(tables::META_INDEXED)? {
            Some(bytes) => decode_height(bytes.value()),
            // Written by a version that indexed each block in its own transaction.
            None => Ok(self.head_height()?.unwrap_or(Height(0))),
        }
    }

    /// The header of the last committed block.
    pub fn head(&self) -> Result<Option<Header>, StoreError> {
        match self.head_height()? {
            Some(height) => self.header(height),
            None => Ok(None),
        }
    }

    /// The header at `height`.
    pub fn header(&self, height: Height) -> Result<Option<Header>, StoreError> {
        let headers = self.txn.open_table(tables::HEADERS)?;
        match headers.get(height.0)? {
            Some(bytes) => Ok(Some(decode(bytes.value())?)),
            None => Ok(None),
        }
    }

    /// The transactions of the block at `height`.
    pub fn transactions(
        &self,
        height: Height,
    ) -> Result<Option<Vec<SignedTransaction>>, StoreError> {
        let bodies = self.txn.open_table(tables::BODIES)?;
        match bodies.get(height.0)? {
            Some(bytes) => Ok(Some(decode(bytes.value())?)),
            None => Ok(None),
        }
    }

    /// The receipts of the block at `height`.
    pub fn receipts(&self, height: Height) -> Result<Option<Vec<Receipt>>, StoreError> {
        let receipts = self.txn.open_table(tables::RECEIPTS)?;
        match receipts.get(height.0)? {
            Some(bytes) => Ok(Some(decode(bytes.value())?)),
            None => Ok(None),
        }
    }

    /// The whole block at `height`.
    pub fn block(&self, height: Height) -> Result<Option<Block>, StoreError> {
        let Some(header) = self.header(height)? else { return Ok(None) };
        let txs = self.transactions(height)?.ok_or_else(|| {
            StoreError::Corrupt(format!("block {height} has a header but no body"))
        })?;
        Ok(Some(Block { header, txs }))
    }

    /// The height of the block with hash `hash`.
    pub fn height_of(&self, hash: &BlockHash) -> Result<Option<Height>, StoreError> {
        let hashes = self.txn.open_table(tables::BLOCK_HASHES)?;
        Ok(hashes.get(hash.0.as_bytes())?.map(|height| Height(height.value())))
    }

    /// The transaction at `index` in block `height`, read without decoding the rest of the
    /// block.
    pub fn transaction_at(
        &self,
        height: Height,
        index: u32,
    ) -> Result<Option<SignedTransaction>, StoreError> {
        let offsets = self.txn.open_table(tables::TX_OFFSETS)?;
        let Some(offsets) = offsets.get(height.0)? else { return Ok(None) };
        let offsets = offsets.value();
        let word = |position: usize| -> Option<usize> {
            let bytes =
                offsets.get(position.checked_mul(4)?..position.checked_mul(4)?.checked_add(4)?)?;
            Some(u32::from_le_bytes(bytes.try_into().ok()?) as usize)
        };
        let Some(start) = word(index as usize) else { return Ok(None) };
        let bodies = self.txn.open_table(tables::BODIES)?;
        let body = bodies.get(height.0)?.ok_or_else(|| {
            StoreError::Corrupt(format!("block {height} has offsets but no body"))
        })?;
        let body = body.value();
        let end = word(index as usize + 1).unwrap_or(body.len());
        let bytes = body.get(start..end).ok_or_else(|| {
            StoreError::Corrupt(format!("tx {index} lies outside block {height}"))
        })?;
        SignedTransaction::decode(bytes)
            .map(Some)
            .map_err(|error| StoreError::Corrupt(format!("tx {index} of block {height}: {error}")))
    }

    /// Whether the index by hash names `(height, index)` for `hash` (a cheap check that does not
    /// read the transaction).
    pub fn is_indexed_at(
        &self,
        hash: &TxHash,
        height: Height,
        index: u32,
    ) -> Result<bool, StoreError> {
        let generations = self.txn.open_table(tables::GENERATIONS)?;
        let Some(generation) = tables::generation_of(&generations, height)? else {
            return Ok(false);
        };
        let table = self.txn.open_table(tables::TX_INDEX)?;
        Ok(table.get(&tables::tx_index_key(generation, hash, height, index))?.is_some())
    }

    /// A committed transaction by hash.
    pub fn transaction(&self, hash: &TxHash) -> Result<Option<TxRecord>, StoreError> {
        let index = self.txn.open_table(tables::TX_INDEX)?;
        let generations = self.txn.open_table(tables::GENERATIONS)?;
        // Each generation, newest first (recent transactions are asked for most).
        for generation in tables::generations_down_from(&generations, Height(u64::MAX))? {
            let (first, last) = tables::tx_index_range(generation, hash);
            // Usually no candidate or one; more only if two hashes share their first 8 bytes.
            for entry in index.range::<&[u8; 24]>(&first..=&last)? {
                let (key, _) = entry?;
                let (height, position) = tables::tx_index_position(key.value());
                let Some(tx) = self.transaction_at(height, position)? else { continue };
                if tx.hash() != *hash {
                    continue;
                }
                let receipt = self
                    .receipts(height)?
                    .and_then(|receipts| receipts.into_iter().nth(position as usize))
                    .ok_or_else(|| StoreError::Corrupt(format!("tx {hash} has no receipt")))?;
                return Ok(Some(TxRecord { tx, receipt, height, index: position }));
            }
        }
        // Committed blocks not indexed yet (a moment after each commit): read them.
        let head = self.head_height()?.unwrap_or(Height(0));
        for height in self.indexed_height()?.0.saturating_add(1)..=head.0 {
            let height = Height(height);
            let Some(txs) = self.transactions(height)? else { continue };
            let Some(position) = txs.iter().position(|tx| tx.hash() == *hash) else { continue };
            let receipt = self
                .receipts(height)?
                .and_then(|receipts| receipts.into_iter().nth(position))
                .ok_or_else(|| StoreError::Corrupt(format!("tx {hash} has no receipt")))?;
            let tx = txs.into_iter().nth(position).ok_or_else(|| {
                StoreError::Corrupt(format!("tx {hash} vanished from block {height}"))
            })?;
            let index = u32::try_from(position).unwrap_or(u32::MAX);
            return Ok(Some(TxRecord { tx, receipt, height, index }));
        }
        Ok(None)
    }

    /// The transactions that touched `address`, newest first: at most `limit`, strictly before
    /// `before` (a `(height, index)` position) when given, for paging.
    pub fn history(
        &self,
        address: &Address,
        before: Option<(Height, u32)>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let history = self.txn.open_table(tables::HISTORY)?;
        let generations = self.txn.open_table(tables::GENERATIONS)?;
        let below = before.map_or(Height(u64::MAX), |(height, _)| height);
        let mut positions = Vec::new();
        // Generations hold disjoint runs of heights, so newest generation first and newest row
        // first within each is newest first overall.
        'generations: for generation in tables::generations_down_from(&generations, below)? {
            let start = tables::history_key(generation, address, Height(0));
            let end = tables::history_key(generation, address, below);
            for row in history.range::<&[u8; 44]>(&start..=&end)?.rev() {
                let (key, value) = row?;
                let height = tables::history_height(key.value());
                for index in tables::positions(value.value()).rev() {
                    if before.is_some_and(|cursor| (height, index) >= cursor) {
                        continue;
                    }
                    positions.push((height, index));
                    if positions.len() >= limit {
                        break 'generations;
                    }
                }
            }
        }
        let mut entries = Vec::with_capacity(positions.len());
        for (height, index) in positions {
            let tx = self.transaction_at(height, index)?.ok_or_else(|| {
                StoreError::Corrupt(format!("history names a missing tx {index} of block {height}"))
            })?;
            entries.push(HistoryEntry { height, index, tx_hash: tx.hash() });
        }
        Ok(entries)
    }

    /// One ledger state entry.
    pub fn state_entry(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let state = self.txn.open_table(tables::STATE)?;
        Ok(state.get(key)?.map(|value| value.value().to_vec()))
    }

    /// An account as of this snapshot (an unknown address is an empty account).
    pub fn account(&self, address: &Address) -> Result<Account, StoreError> {
        match self.state_entry(&ledger::keys::account(address))? {
            Some(bytes) => Ok(decode(&bytes)?),
            None => Ok(Account::default()),
        }
    }

    /// The supply counters as of this snapshot.
    pub fn supply(&self) -> Result<Supply, StoreError> {
        let bytes = self
            .state_entry(&ledger::keys::supply())?
            .ok_or_else(|| StoreError::Corrupt("no supply entry".into()))?;
        Ok(decode(&bytes)?)
    }

    /// Every state entry whose key starts with `prefix`, in key order.
    pub fn state_prefix(&self, prefix: &[u8]) -> Result<Vec<StateEntry>, StoreError> {
        let state = self.txn.open_table(tables::STATE)?;
        let mut entries = Vec::new();
        for item in state.range::<&[u8]>(prefix..)? {
            let (key, value) = item?;
            if !key.value().starts_with(prefix) {
                break;
            }
            entries.push((key.value().to_vec(), value.value().to_vec()));
        }
        Ok(entries)
    }

    /// Decodes every state entry under `prefix`.
    pub fn state_values<T: borsh::BorshDeserialize>(
        &self,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, T)>, StoreError> {
        self.state_prefix(prefix)?
            .into_iter()
            .map(|(key, value)| Ok((key, decode(&value)?)))
            .collect()
    }

    /// The market's counters and clock.
    pub fn cursor(&self) -> Result<Cursor, StoreError> {
        let bytes = self
            .state_entry(&ledger::keys::cursor())?
            .ok_or_else(|| StoreError::Corrupt("no market cursor".into()))?;
        Ok(decode(&bytes)?)
    }

    /// What clearing slot `slot` produced, once its gate has closed.
    pub fn clearing(&self, slot: Slot) -> Result<Option<ClearingRecord>, StoreError> {
        let table = self.txn.open_table(tables::CLEARINGS)?;
        match table.get(slot.0)? {
            Some(bytes) => Ok(Some(decode(bytes.value())?)),
            None => Ok(None),
        }
    }

    fn per_account<T: borsh::BorshDeserialize>(
        &self,
        table: redb::TableDefinition<'_, &[u8; 40], &[u8]>,
        account: &Address,
        slots: std::ops::RangeInclusive<Slot>,
    ) -> Result<Vec<(Slot, T)>, StoreError> {
        let table = self.txn.open_table(table)?;
        let start = tables::account_slot_key(account, *slots.start());
        let end = tables::account_slot_key(account, *slots.end());
        let mut rows = Vec::new();
        for row in table.range::<&[u8; 40]>(&start..=&end)? {
            let (key, value) = row?;
            rows.push((tables::account_slot(key.value()), decode(value.value())?));
        }
        Ok(rows)
    }

    /// The account's trades in `slots`, by slot.
    pub fn account_trades(
        &self,
        account: &Address,
        slots: std::ops::RangeInclusive<Slot>,
    ) -> Result<Vec<(Slot, Vec<Trade>)>, StoreError> {
        self.per_account(tables::ACCOUNT_TRADES, account, slots)
    }

    /// The account's settlement records in `slots`.
    pub fn settlements(
        &self,
        account: &Address,
        slots: std::ops::RangeInclusive<Slot>,
    ) -> Result<Vec<SettlementRecord>, StoreError> {
        Ok(self
            .per_account(tables::SETTLEMENTS, account, slots)?
            .into_iter()
            .map(|(_, record)| record)
            .collect())
    }

    /// The community's totals per settled slot in `slots`.
    pub fn community(
        &self,
        slots: std::ops::RangeInclusive<Slot>,
    ) -> Result<Vec<SettlementRecord>, StoreError> {
        let table = self.txn.open_table(tables::COMMUNITY)?;
        let mut records = Vec::new();
        for row in table.range(slots.start().0..=slots.end().0)? {
            let (_, value) = row?;
            records.push(decode(value.value())?);
        }
        Ok(records)
    }

    /// The height of the block that settled `slot`, if it is settled (and was settled by a
    /// block this store wrote with that record: stores written before it existed have none).
    pub fn settled_at(&self, slot: Slot) -> Result<Option<Height>, StoreError> {
        let table = self.txn.open_table(tables::SETTLED_AT)?;
        let Some(value) = table.get(slot.0)? else { return Ok(None) };
        let bytes: [u8; 8] = value
            .value()
            .try_into()
            .map_err(|_| StoreError::Corrupt(format!("the settlement height of slot {slot:?}")))?;
        Ok(Some(Height(u64::from_be_bytes(bytes))))
    }

    /// The whole ledger state, rebuilt from its entries as the table yields them (one at a
    /// time, in key order).
    pub fn state(&self) -> Result<State, StoreError> {
        let table = self.txn.open_table(tables::STATE)?;
        let mut failure = None;
        let entries = table.iter()?.map_while(|item| match item {
            Ok((key, value)) => Some((key.value().to_vec(), value.value().to_vec())),
            Err(error) => {
                failure = Some(error);
                None
            }
        });
        let state = State::from_ordered_entries(entries);
        if let Some(error) = failure {
            return Err(error.into());
        }
        state.map_err(|error| StoreError::Corrupt(error.to_string()))
    }

    /// What undoes the state changes of the block at `height`, if the store still keeps it
    /// (see [`crate::StoreConfig::undo_depth`]).
    pub fn undo_data(&self, height: Height) -> Result<Option<UndoData>, StoreError> {
        let table = self.txn.open_table(tables::UNDO)?;
        match table.get(height.0)? {
            Some(bytes) => Ok(Some(decode::<BlockUndo>(bytes.value())?.state)),
            None => Ok(None),
        }
    }

    /// Every row of every table, by table name, as raw bytes: for comparing two stores row by
    /// row (tests, diagnostics). A table this version does not know is an error.
    pub fn dump(&self) -> Result<BTreeMap<String, TableRows>, StoreError> {
        fn rows<K: redb::Key + 'static, V: redb::Value + 'static>(
            txn: &ReadTransaction,
            definition: TableDefinition<'_, K, V>,
            dump: &mut BTreeMap<String, TableRows>,
        ) -> Result<(), StoreError> {
            let table = txn.open_table(definition)?;
            let mut rows = Vec::new();
            for row in table.iter()? {
                let (key, value) = row?;
                rows.push((
                    K::as_bytes(&key.value()).as_ref().to_vec(),
                    V::as_bytes(&value.value()).as_ref().to_vec(),
                ));
            }
            dump.insert(definition.name().to_owned(), rows);
            Ok(())
        }
        let mut dump = BTreeMap::new();
        let txn = &self.txn;
        rows(txn, tables::META, &mut dump)?;
        rows(txn, tables::HEADERS, &mut dump)?;
        rows(txn, tables::BODIES, &mut dump)?;
        rows(txn, tables::TX_OFFSETS, &mut dump)?;
        rows(txn, tables::RECEIPTS, &mut dump)?;
        rows(txn, tables::BLOCK_HASHES, &mut dump)?;
        rows(txn, tables::TX_INDEX, &mut dump)?;
        rows(txn, tables::HISTORY, &mut dump)?;
        rows(txn, tables::GENERATIONS, &mut dump)?;
        rows(txn, tables::CLEARINGS, &mut dump)?;
        rows(txn, tables::ACCOUNT_TRADES, &mut dump)?;
        rows(txn, tables::SETTLEMENTS, &mut dump)?;
        rows(txn, tables::COMMUNITY, &mut dump)?;
        rows(txn, tables::SETTLED_AT, &mut dump)?;
        rows(txn, tables::WAL, &mut dump)?;
        rows(txn, tables::STATE, &mut dump)?;
        rows(txn, tables::UNDO, &mut dump)?;
        for table in txn.list_tables()? {
            if !dump.contains_key(table.name()) {
                return Err(StoreError::Corrupt(format!("unknown table {}", table.name())));
            }
        }
        Ok(dump)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Store, tables};
    use ledger::{Receipt, StateDiff};
    use primitives::{
        Address, Amount, Block, BlockHash, ChainConfig, ChainId, ChainParams, ConsensusProof,
        EngineKind, Genesis, Hash, Header, Height, Nonce, Payload, PublicKey, Signature,
        SignedTransaction, TimestampMs, Transaction, TxHash, Validator,
    };

    fn transfer(nonce: u64) -> SignedTransaction {
        SignedTransaction {
            tx: Transaction {
                chain_id: ChainId::new("t").unwrap(),
                sender: Address(PublicKey([1; 32])),
                nonce: Nonce(nonce),
                fee: primitives::Amount::ZERO,
                payload: Payload::Transfer { to: Address(PublicKey([2; 32])), amount: Amount(1) },
            },
            signature: Signature([0; 64]),
        }
    }

    /// Two hashes that share their first 8 bytes must still find their own transactions.
    #[test]
    fn a_shared_hash_prefix_is_resolved_by_the_full_hash() {
        let dir = tempfile::tempdir().unwrap();
        // Generations of one transaction: block 1's two transactions are in 0, block 2's in 1.
        let config = crate::StoreConfig { generation_txs: 1, ..crate::StoreConfig::default() };
        let store = Store::open_with(&dir.path().join("chain.redb"), config).unwrap();
        let key = PublicKey([3; 32]);
        let genesis = Genesis {
            config: ChainConfig {
                chain_id: ChainId::new("t").unwrap(),
                engine: EngineKind::Solo,
                validators: vec![Validator { name: "v".into(), key, power: 1 }],
                issuer: Address(key),
                operator: Address(key),
                params: ChainParams::default(),
                market: primitives::MarketParams::default(),
            },
            genesis_time: TimestampMs(0),
            balances: vec![],
        };
        let header = |height: u64, parent: BlockHash| Header {
            height: Height(height),
            parent,
            timestamp: TimestampMs(height),
            proposer: Address(key),
            tx_root: Hash::ZERO,
            state_root: Hash::ZERO,
            proof: ConsensusProof::Genesis,
        };
        let block0 = Block { header: header(0, BlockHash::default()), txs: vec![] };
        store.initialize(&genesis, &block0, &[]).unwrap();
        let (first, second) = (transfer(0), transfer(1));
        let block1 =
            Block { header: header(1, block0.hash()), txs: vec![first.clone(), second.clone()] };
        store
            .commit_block(
                &block1,
                &[Receipt::Success(ledger::Outcome::Done), Receipt::Success(ledger::Outcome::Done)],
                &[],
                &StateDiff::default(),
            )
            .unwrap();

        let third = transfer(2);
        let block2 = Block { header: header(2, block1.hash()), txs: vec![third.clone()] };
        store
            .commit_block(
                &block2,
                &[Receipt::Success(ledger::Outcome::Done)],
                &[],
                &StateDiff::default(),
            )
            .unwrap();
        store.index_blocks(&[&block1, &block2]).unwrap();

        // Forge index entries under the second hash's prefix that point at the first
        // transaction, as a colliding hash would, one in each generation, the newer one probed
        // first.
        let txn = store.db.begin_write().unwrap();
        {
            let mut index = txn.open_table(tables::TX_INDEX).unwrap();
            index.insert(&tables::tx_index_key(0, &second.hash(), Height(1), 0), ()).unwrap();
            index.insert(&tables::tx_index_key(1, &second.hash(), Height(1), 0), ()).unwrap();
        }
        txn.commit().unwrap();

        let reader = store.read().unwrap();
        assert_eq!(reader.transaction(&second.hash()).unwrap().unwrap().tx, second);
        assert_eq!(reader.transaction(&first.hash()).unwrap().unwrap().tx, first);
        assert_eq!(reader.transaction(&third.hash()).unwrap().unwrap().height, Height(2));
        let mut unknown = second.hash().0;
        unknown.0[31] ^= 1;
        assert_eq!(reader.transaction(&TxHash(unknown)).unwrap(), None, "same prefix, other hash");
    }
}
