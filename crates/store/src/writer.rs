//! Opening the database and writing blocks.

use crate::{error::StoreError, reader::Reader, tables};
use ledger::{Receipt, StateDiff};
use primitives::{Address, Block, Genesis, Height, encode};
use redb::{Database, ReadableDatabase, ReadableTable};
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

/// The chain database of one node. Cheap to share behind an `Arc`: any number of readers run
/// beside the one writer.
#[derive(Debug)]
pub struct Store {
    pub(crate) db: Database,
    path: PathBuf,
}

impl Store {
    /// Opens the database at `path`, creating it if it does not exist. Fails if another process
    /// has it open.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = Database::builder().create(path).map_err(|error| StoreError::Open {
            path: path.display().to_string(),
            reason: error.to_string(),
        })?;
        // Create every table up front so that readers never meet a missing one.
        let txn = db.begin_write()?;
        txn.open_table(tables::META)?;
        txn.open_table(tables::HEADERS)?;
        txn.open_table(tables::BODIES)?;
        txn.open_table(tables::TX_OFFSETS)?;
        txn.open_table(tables::RECEIPTS)?;
        txn.open_table(tables::BLOCK_HASHES)?;
        txn.open_table(tables::TX_INDEX)?;
        txn.open_table(tables::HISTORY)?;
        txn.open_table(tables::STATE)?;
        txn.commit()?;
        Ok(Store { db, path: path.to_owned() })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A consistent snapshot for reading.
    pub fn read(&self) -> Result<Reader, StoreError> {
        Ok(Reader::new(self.db.begin_read()?))
    }

    /// Writes the genesis, block 0 and the genesis state, unless the database already holds
    /// this chain. Refuses a database that holds another chain.
    pub fn initialize(
        &self,
        genesis: &Genesis,
        block: &Block,
        entries: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<(), StoreError> {
        if let Some(stored) = self.read()?.header(Height(0))? {
            if stored.hash() != block.hash() {
                return Err(StoreError::GenesisMismatch {
                    stored: stored.hash().to_string(),
                    offered: block.hash().to_string(),
                });
            }
            return Ok(());
        }
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(tables::META)?;
            meta.insert(tables::META_GENESIS, encode(genesis).as_slice())?;
            let mut state = txn.open_table(tables::STATE)?;
            for (key, value) in entries {
                state.insert(key.as_slice(), value.as_slice())?;
            }
        }
        write_block(&txn, block, &[])?;
        txn.commit()?;
        Ok(())
    }

    /// Writes a block, its receipts, its state changes and its index entries in one atomic,
    /// durable transaction. The block must extend the stored head.
    pub fn commit_block(
        &self,
        block: &Block,
        receipts: &[Receipt],
        diff: &StateDiff,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let meta = txn.open_table(tables::META)?;
            let head = match meta.get(tables::META_HEAD)? {
                Some(bytes) => decode_height(bytes.value())?,
                None => {
                    return Err(StoreError::Corrupt("no head: database not initialized".into()));
                }
            };
            if head.next() != Some(block.header.height) {
                return Err(StoreError::NotNextBlock {
                    height: block.header.height.0,
                    head: head.0,
                });
            }
            let mut state = txn.open_table(tables::STATE)?;
            for (key, value) in &diff.changes {
                match value {
                    Some(value) => state.insert(key.as_slice(), value.as_slice())?,
                    None => state.remove(key.as_slice())?,
                };
            }
        }
        write_block(&txn, block, receipts)?;
        txn.commit()?;
        Ok(())
    }
}

pub(crate) fn decode_height(bytes: &[u8]) -> Result<Height, StoreError> {
    let bytes: [u8; 8] =
        bytes.try_into().map_err(|_| StoreError::Corrupt("head is not 8 bytes".into()))?;
    Ok(Height(u64::from_be_bytes(bytes)))
}

/// Header, body, receipts, indexes and the new head.
fn write_block(
    txn: &redb::WriteTransaction,
    block: &Block,
    receipts: &[Receipt],
) -> Result<(), StoreError> {
    let height = block.header.height;
    let hash = block.hash();

    // The body is borsh(Vec<SignedTransaction>): a u32 count, then each transaction. Encoding it
    // by hand records where each transaction starts.
    let mut body = Vec::with_capacity(4 + block.txs.len() * 180);
    body.extend_from_slice(&u32::try_from(block.txs.len()).unwrap_or(u32::MAX).to_le_bytes());
    let mut offsets = Vec::with_capacity(block.txs.len() * 4);
    for signed in &block.txs {
        offsets.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes());
        borsh::BorshSerialize::serialize(signed, &mut body)
            .map_err(|error| StoreError::Database(error.to_string()))?;
    }

    txn.open_table(tables::HEADERS)?.insert(height.0, encode(&block.header).as_slice())?;
    txn.open_table(tables::BODIES)?.insert(height.0, body.as_slice())?;
    txn.open_table(tables::TX_OFFSETS)?.insert(height.0, offsets.as_slice())?;
    txn.open_table(tables::RECEIPTS)?.insert(height.0, encode(receipts).as_slice())?;
    txn.open_table(tables::BLOCK_HASHES)?.insert(hash.0.as_bytes(), height.0)?;
    {
        let mut tx_index = txn.open_table(tables::TX_INDEX)?;
        let mut touched: BTreeMap<Address, Vec<u8>> = BTreeMap::new();
        for (index, signed) in block.txs.iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            tx_index.insert(&tables::tx_index_key(&signed.hash(), height, index), ())?;
            for account in signed.tx.accounts() {
                touched.entry(account).or_default().extend_from_slice(&index.to_be_bytes());
            }
        }
        let mut history = txn.open_table(tables::HISTORY)?;
        for (account, positions) in &touched {
            history.insert(&tables::history_key(account, height), positions.as_slice())?;
        }
    }
    txn.open_table(tables::META)?.insert(tables::META_HEAD, height.0.to_be_bytes().as_slice())?;
    Ok(())
}
