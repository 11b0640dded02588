//! Core types to API types.

use crate::dto::{AccountDto, BlockDto, HeadDto, PayloadDto, ReceiptDto};
use ledger::{Account, Receipt};
use primitives::{Address, Block, ConsensusProof, Nonce, Payload};

pub(crate) fn head_dto(block: &Block) -> HeadDto {
    HeadDto {
        height: block.header.height.0,
        hash: block.hash().to_string(),
        timestamp_ms: block.header.timestamp.0,
        state_root: block.header.state_root.to_string(),
        tx_count: block.txs.len() as u64,
    }
}

pub(crate) fn block_dto(block: &Block) -> BlockDto {
    let header = &block.header;
    BlockDto {
        height: header.height.0,
        hash: block.hash().to_string(),
        parent: header.parent.to_string(),
        timestamp_ms: header.timestamp.0,
        proposer: header.proposer.to_string(),
        state_root: header.state_root.to_string(),
        tx_root: header.tx_root.to_string(),
        tx_count: block.txs.len() as u64,
        txs: block.txs.iter().map(|tx| tx.hash().to_string()).collect(),
        proof: match header.proof {
            ConsensusProof::Genesis => "genesis".into(),
            ConsensusProof::Solo { .. } => "solo".into(),
        },
    }
}

pub(crate) fn payload_dto(payload: &Payload) -> PayloadDto {
    match payload {
        Payload::Transfer { to, amount } => {
            PayloadDto::Transfer { to: to.to_string(), amount: amount.to_string() }
        }
        Payload::Mint { to, amount, fiat_ref } => PayloadDto::Mint {
            to: to.to_string(),
            amount: amount.to_string(),
            fiat_ref: fiat_ref.to_string(),
        },
        Payload::Redeem { amount, fiat_ref } => {
            PayloadDto::Redeem { amount: amount.to_string(), fiat_ref: fiat_ref.to_string() }
        }
    }
}

pub(crate) fn receipt_dto(receipt: &Receipt) -> ReceiptDto {
    match receipt {
        Receipt::Success => ReceiptDto { success: true, reason: None, message: None },
        Receipt::Failed(error) => ReceiptDto {
            success: false,
            reason: Some(error.code().to_owned()),
            message: Some(error.to_string()),
        },
    }
}

pub(crate) fn account_dto(address: &Address, account: &Account, next_nonce: Nonce) -> AccountDto {
    AccountDto {
        address: address.to_string(),
        balance: account.balance.to_string(),
        nonce: account.nonce.0,
        next_nonce: next_nonce.0,
    }
}
