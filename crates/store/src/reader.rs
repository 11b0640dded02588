//! Reading a consistent snapshot of the chain.

use crate::{
    error::StoreError,
    tables::{self, TxLocation},
    writer::decode_height,
};
use ledger::{Account, Receipt, State, Supply};
use primitives::{
    Address, Block, BlockHash, Genesis, Header, Height, SignedTransaction, TxHash, decode,
};
use redb::{ReadTransaction, ReadableTable};

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

    /// The height of the last committed block (`None` before initialisation).
    pub fn head_height(&self) -> Result<Option<Height>, StoreError> {
        let meta = self.txn.open_table(tables::META)?;
        match meta.get(tables::META_HEAD)? {
            Some(bytes) => Ok(Some(decode_height(bytes.value())?)),
            None => Ok(None),
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

    /// A committed transaction by hash.
    pub fn transaction(&self, hash: &TxHash) -> Result<Option<TxRecord>, StoreError> {
        let index = self.txn.open_table(tables::TX_INDEX)?;
        let Some(location) = index.get(hash.0.as_bytes())? else { return Ok(None) };
        let location = TxLocation::from_bytes(location.value());
        let bodies = self.txn.open_table(tables::BODIES)?;
        let body = bodies
            .get(location.height.0)?
            .ok_or_else(|| StoreError::Corrupt(format!("no body at {}", location.height)))?;
        let start = location.offset as usize;
        let bytes = body
            .value()
            .get(start..start.saturating_add(location.len as usize))
            .ok_or_else(|| StoreError::Corrupt(format!("tx {hash} lies outside its block")))?;
        let tx = SignedTransaction::decode(bytes)
            .map_err(|error| StoreError::Corrupt(error.to_string()))?;
        let receipt = self
            .receipts(location.height)?
            .and_then(|receipts| receipts.into_iter().nth(location.index as usize))
            .ok_or_else(|| StoreError::Corrupt(format!("tx {hash} has no receipt")))?;
        Ok(Some(TxRecord { tx, receipt, height: location.height, index: location.index }))
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
        let start = tables::history_key(address, Height(0), 0);
        let end = match before {
            Some((height, index)) => tables::history_key(address, height, index),
            None => tables::history_key(address, Height(u64::MAX), u32::MAX),
        };
        let mut entries = Vec::new();
        for item in history.range::<&[u8; 44]>(&start..&end)?.rev().take(limit) {
            let (key, tx_hash) = item?;
            let (height, index) = tables::history_position(key.value());
            entries.push(HistoryEntry {
                height,
                index,
                tx_hash: TxHash(primitives::Hash(*tx_hash.value())),
            });
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

    /// The whole ledger state, rebuilt from its entries.
    pub fn state(&self) -> Result<State, StoreError> {
        let table = self.txn.open_table(tables::STATE)?;
        let mut entries = Vec::new();
        for item in table.iter()? {
            let (key, value) = item?;
            entries.push((key.value().to_vec(), value.value().to_vec()));
        }
        State::from_entries(entries).map_err(|error| StoreError::Corrupt(error.to_string()))
    }
}
