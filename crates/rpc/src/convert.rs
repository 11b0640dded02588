//! Core types to API types.

use crate::dto::{AccountDto, BlockDto, HeadDto, PayloadDto, ReceiptDto, ValidatorDto};
use ledger::{Account, Outcome, Receipt};
use primitives::{Address, Block, ConsensusProof, Nonce, Payload, Validator};

/// The head `block` of a chain on which branches may replace up to `reorg_depth` blocks.
pub(crate) fn head_dto(block: &Block, reorg_depth: u64) -> HeadDto {
    HeadDto {
        final_height: block.header.height.0.saturating_sub(reorg_depth),
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
        proof: match &header.proof {
            ConsensusProof::Genesis => "genesis".into(),
            ConsensusProof::Solo { .. } => "solo".into(),
            ConsensusProof::Bft(certificate) => {
                format!(
                    "bft: round {}, {} precommits",
                    certificate.round,
                    certificate.signatures.len()
                )
            }
            ConsensusProof::Raft(certificate) => format!(
                "raft: term {}, leader {}, {} acknowledgements",
                certificate.term,
                primitives::Address(certificate.leader),
                certificate.acks.len()
            ),
            ConsensusProof::Pow { target, nonce } => format!("pow: target {target}, nonce {nonce}"),
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
        Payload::RegisterMeter { meter, owner } => {
            PayloadDto::RegisterMeter { meter: meter.to_string(), owner: owner.to_string() }
        }
        Payload::DeregisterMeter { meter } => {
            PayloadDto::DeregisterMeter { meter: meter.to_string() }
        }
        Payload::Reading { interval, produced, consumed, estimated } => PayloadDto::Reading {
            interval: *interval,
            produced_mwh: produced.0,
            consumed_mwh: consumed.0,
            estimated: *estimated,
        },
        Payload::PlaceOrder { slot, side, energy, price } => PayloadDto::PlaceOrder {
            slot: slot.0,
            side: side.to_string(),
            energy_mwh: energy.0,
            price: price.0,
        },
        Payload::CancelOrder { order } => PayloadDto::CancelOrder { order: order.0 },
        Payload::ProposeContract { prosumer, price, max_energy, first_slot, last_slot } => {
            PayloadDto::ProposeContract {
                prosumer: prosumer.to_string(),
                price: price.0,
                max_energy_mwh: max_energy.0,
                first_slot: first_slot.0,
                last_slot: last_slot.0,
            }
        }
        Payload::AcceptContract { contract } => PayloadDto::AcceptContract { contract: contract.0 },
        Payload::EndContract { contract } => PayloadDto::EndContract { contract: contract.0 },
        Payload::SetTariffs { from_slot, tariffs } => PayloadDto::SetTariffs {
            from_slot: from_slot.0,
            retail: tariffs.retail.0,
            feed_in: tariffs.feed_in.0,
            grid_fee: tariffs.grid_fee.0,
        },
        Payload::SetValidators { from_height, validators } => PayloadDto::SetValidators {
            from_height: from_height.0,
            validators: validators.iter().map(validator_dto).collect(),
        },
        Payload::TransferCertificates { to, count } => {
            PayloadDto::TransferCertificates { to: to.to_string(), count: *count }
        }
        Payload::RetireCertificates { count } => PayloadDto::RetireCertificates { count: *count },
    }
}

impl From<&Payload> for PayloadDto {
    /// The API's shape of a payload (what `tx_get` shows and what the dashboard encodes).
    fn from(payload: &Payload) -> PayloadDto {
        payload_dto(payload)
    }
}

pub(crate) fn validator_dto(validator: &Validator) -> ValidatorDto {
    ValidatorDto {
        name: validator.name.clone(),
        address: Address(validator.key).to_string(),
        power: validator.power,
    }
}

pub(crate) fn receipt_dto(receipt: &Receipt) -> ReceiptDto {
    match receipt {
        Receipt::Success(outcome) => ReceiptDto {
            success: true,
            reason: None,
            message: None,
            order_id: match outcome {
                Outcome::Order(id) => Some(id.0),
                _ => None,
            },
            contract_id: match outcome {
                Outcome::Contract(id) => Some(id.0),
                _ => None,
            },
        },
        Receipt::Failed(error) => ReceiptDto {
            success: false,
            reason: Some(error.code().to_owned()),
            message: Some(error.to_string()),
            order_id: None,
            contract_id: None,
        },
    }
}

pub(crate) fn account_dto(address: &Address, account: &Account, next_nonce: Nonce) -> AccountDto {
    AccountDto {
        address: address.to_string(),
        balance: account.balance.to_string(),
        nonce: account.nonce.0,
        next_nonce: next_nonce.0,
        reserved: account.reserved.to_string(),
        arrears: account.arrears.to_string(),
        certificates: account.certificates,
    }
}
