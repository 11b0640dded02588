//! Transactions: the signed envelope and its payloads.
//!
//! A sender signs the transaction hash, `H("joule/tx/v1", borsh(Transaction))`. The hash covers
//! the chain id, so a transaction signed for one chain is worthless on another, and the nonce,
//! so it cannot be replayed on its own chain. The signature is not part of the hash: a
//! transaction's identity cannot be changed by re-encoding its signature.

use crate::{
    address::Address,
    crypto::{PublicKey, SecretKey, Signature, SignatureError, verify_batch},
    encoding::{DecodeError, decode, encode},
    genesis::{Tariffs, Validator},
    hash::{Hash, domain},
    market::{ContractId, OrderId, Side},
    units::{Amount, Energy, Height, Nonce, Price, Slot},
};
use borsh::{BorshDeserialize, BorshSerialize};
use rand_core::CryptoRng;
use std::{fmt, io};

/// The largest encoded signed transaction accepted anywhere, in bytes.
pub const MAX_TX_BYTES: usize = 4096;

/// Defines a short, validated text newtype whose borsh decoding re-runs the validation, so an
/// invalid value cannot arrive through the wire either.
macro_rules! checked_text {
    ($(#[$meta:meta])* $name:ident, $max:expr, $allowed:expr, $what:expr) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize)]
        pub struct $name(String);

        impl $name {
            /// The longest value accepted, in bytes.
            pub const MAX_LEN: usize = $max;

            /// Validates `text`.
            pub fn new(text: &str) -> Result<$name, String> {
                let allowed: fn(u8) -> bool = $allowed;
                if text.is_empty() || text.len() > $max || !text.bytes().all(allowed) {
                    return Err(format!(
                        "{} must be 1 to {} characters of {}, got {:?}",
                        stringify!($name), $max, $what, text
                    ));
                }
                Ok($name(text.to_owned()))
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl BorshDeserialize for $name {
            fn deserialize_reader<R: io::Read>(reader: &mut R) -> io::Result<Self> {
                let text = String::deserialize_reader(reader)?;
                $name::new(&text).map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(formatter, "{:?}", self.0)
            }
        }
    };
}

checked_text!(
    /// The name of a chain, fixed by its genesis (`joule-devnet`, `village-grid-1`).
    ChainId,
    32,
    |byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-',
    "a-z, 0-9 and '-'"
);

checked_text!(
    /// The issuer's reference to the fiat payment behind a mint or a redemption (a bank
    /// transfer id, an invoice number). Each reference can be used once per kind.
    FiatRef,
    64,
    |byte| byte.is_ascii_graphic(),
    "printable ASCII without spaces"
);

/// What a transaction does.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub enum Payload {
    /// Move tokens from the sender to `to`.
    Transfer {
        /// The recipient.
        to: Address,
        /// How many tokens.
        amount: Amount,
    },
    /// Create tokens for `to` against fiat received (issuer only).
    Mint {
        /// The account credited.
        to: Address,
        /// How many tokens.
        amount: Amount,
        /// The fiat payment received.
        fiat_ref: FiatRef,
    },
    /// Destroy tokens from the issuer's own balance against fiat paid out (issuer only). A
    /// member redeems by transferring tokens to the issuer, who pays the fiat and burns them.
    Redeem {
        /// How many tokens.
        amount: Amount,
        /// The fiat payment made.
        fiat_ref: FiatRef,
    },
    /// Bind a smart meter's key to the account it reports for (operator only).
    RegisterMeter {
        /// The meter's key, as an address.
        meter: Address,
        /// The account that owns it.
        owner: Address,
    },
    /// Stop accepting a meter's readings (operator or owner).
    DeregisterMeter {
        /// The meter.
        meter: Address,
    },
    /// What a meter measured over one interval (signed by the meter's key).
    Reading {
        /// The interval: it covers `[interval·R, (interval+1)·R)` of chain time.
        interval: u64,
        /// Energy produced.
        produced: Energy,
        /// Energy consumed.
        consumed: Energy,
        /// Whether the values are estimated rather than measured.
        estimated: bool,
    },
    /// A buy or sell order for a delivery slot.
    PlaceOrder {
        /// The delivery slot.
        slot: Slot,
        /// Buy or sell.
        side: Side,
        /// Energy.
        energy: Energy,
        /// Limit price per kWh.
        price: Price,
    },
    /// Withdraw an open order before its gate closes.
    CancelOrder {
        /// The order.
        order: OrderId,
    },
    /// A consumer proposes a supply contract to a prosumer.
    ProposeContract {
        /// The seller.
        prosumer: Address,
        /// Price per kWh.
        price: Price,
        /// Most energy per slot.
        max_energy: Energy,
        /// First delivery slot.
        first_slot: Slot,
        /// Last delivery slot.
        last_slot: Slot,
    },
    /// The prosumer accepts a proposed contract.
    AcceptContract {
        /// The contract.
        contract: ContractId,
    },
    /// Either party ends a contract (or withdraws or declines a proposal).
    EndContract {
        /// The contract.
        contract: ContractId,
    },
    /// Change the tariffs from a slot whose gate has not closed (operator only).
    SetTariffs {
        /// The first slot they apply to.
        from_slot: Slot,
        /// The new tariffs.
        tariffs: Tariffs,
    },
    /// Replace the validator set from a later height (operator only). The set is checked like
    /// the genesis set; `from_height` must be at least two above the height of the block that
    /// carries the change, so every node knows the validators of a height before it starts.
    SetValidators {
        /// The first height the new set decides.
        from_height: Height,
        /// The new set, in proposer order.
        validators: Vec<Validator>,
    },
    /// Give generation certificates to another account.
    TransferCertificates {
        /// The recipient.
        to: Address,
        /// How many.
        count: u64,
    },
    /// Retire (claim) generation certificates: they can no longer be transferred.
    RetireCertificates {
        /// How many.
        count: u64,
    },
}

impl Payload {
    /// A short name for the kind of payload, for display and indexes.
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::Transfer { .. } => "transfer",
            Payload::Mint { .. } => "mint",
            Payload::Redeem { .. } => "redeem",
            Payload::RegisterMeter { .. } => "register_meter",
            Payload::DeregisterMeter { .. } => "deregister_meter",
            Payload::Reading { .. } => "reading",
            Payload::PlaceOrder { .. } => "place_order",
            Payload::CancelOrder { .. } => "cancel_order",
            Payload::ProposeContract { .. } => "propose_contract",
            Payload::AcceptContract { .. } => "accept_contract",
            Payload::EndContract { .. } => "end_contract",
            Payload::SetTariffs { .. } => "set_tariffs",
            Payload::SetValidators { .. } => "set_validators",
            Payload::TransferCertificates { .. } => "transfer_certificates",
            Payload::RetireCertificates { .. } => "retire_certificates",
        }
    }
}

crate::hash::hash_newtype!(
    /// The identity of a transaction: the hash its sender signs.
    TxHash
);

/// An unsigned transaction.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct Transaction {
    /// The chain this transaction is meant for.
    pub chain_id: ChainId,
    /// The account that signs and pays.
    pub sender: Address,
    /// Must equal the sender's nonce when the transaction executes.
    pub nonce: Nonce,
    /// Tokens the sender pays the block's proposer (or miner) for including it; 0 for none.
    /// Paid whether the payload succeeds or fails, like the nonce it uses up.
    pub fee: Amount,
    /// What it does.
    pub payload: Payload,
}

impl Transaction {
    /// The transaction's identity, which is what gets signed.
    pub fn hash(&self) -> TxHash {
        TxHash(Hash::digest(domain::TX, &[&encode(self)]))
    }

    /// Signs the transaction. The key should be the sender's; a signature by any other key
    /// will fail verification.
    pub fn sign(self, key: &SecretKey) -> SignedTransaction {
        let signature = key.sign(self.hash().0.as_bytes());
        SignedTransaction { tx: self, signature }
    }

    /// Every account the transaction touches, sender first, without repeats.
    pub fn accounts(&self) -> Vec<Address> {
        let mut accounts = vec![self.sender];
        let mut add = |address: &Address| {
            if !accounts.contains(address) {
                accounts.push(*address);
            }
        };
        match &self.payload {
            Payload::Transfer { to, .. }
            | Payload::Mint { to, .. }
            | Payload::TransferCertificates { to, .. } => add(to),
            Payload::RegisterMeter { meter, owner } => {
                add(meter);
                add(owner);
            }
            Payload::DeregisterMeter { meter } => add(meter),
            Payload::ProposeContract { prosumer, .. } => add(prosumer),
            Payload::Redeem { .. }
            | Payload::Reading { .. }
            | Payload::PlaceOrder { .. }
            | Payload::CancelOrder { .. }
            | Payload::AcceptContract { .. }
            | Payload::EndContract { .. }
            | Payload::SetTariffs { .. }
            | Payload::SetValidators { .. }
            | Payload::RetireCertificates { .. } => {}
        }
        accounts
    }
}

/// A transaction with its sender's signature, as submitted and as stored in blocks.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct SignedTransaction {
    /// The transaction.
    pub tx: Transaction,
    /// The sender's signature over `tx.hash()`.
    pub signature: Signature,
}

/// Why a transaction was refused before it could be looked at against any state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxRejection {
    /// More than [`MAX_TX_BYTES`].
    #[error("transaction is {size} bytes, the limit is {MAX_TX_BYTES}")]
    TooLarge {
        /// The size found.
        size: usize,
    },
    /// The bytes are not a transaction.
    #[error("not a transaction: {0}")]
    Malformed(DecodeError),
    /// Signed for another chain.
    #[error("transaction is for chain '{got}', this is chain '{expected}'")]
    WrongChain {
        /// This node's chain.
        expected: ChainId,
        /// The chain named in the transaction.
        got: ChainId,
    },
    /// The signature is not the sender's over this transaction.
    #[error("signature does not match the sender and the transaction")]
    BadSignature,
}

impl SignedTransaction {
    /// Decodes a transaction from its canonical bytes, refusing oversized or malformed input.
    pub fn decode(bytes: &[u8]) -> Result<SignedTransaction, TxRejection> {
        if bytes.len() > MAX_TX_BYTES {
            return Err(TxRejection::TooLarge { size: bytes.len() });
        }
        decode(bytes).map_err(TxRejection::Malformed)
    }

    /// The canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// The transaction's identity.
    pub fn hash(&self) -> TxHash {
        self.tx.hash()
    }

    fn sender_key(&self) -> PublicKey {
        self.tx.sender.public_key()
    }

    fn check_chain(&self, chain_id: &ChainId) -> Result<(), TxRejection> {
        if &self.tx.chain_id != chain_id {
            return Err(TxRejection::WrongChain {
                expected: chain_id.clone(),
                got: self.tx.chain_id.clone(),
            });
        }
        Ok(())
    }

    /// Checks the chain id and the signature.
    pub fn verify(self, chain_id: &ChainId) -> Result<VerifiedTransaction, TxRejection> {
        self.check_chain(chain_id)?;
        let hash = self.hash();
        self.sender_key()
            .verify(hash.0.as_bytes(), &self.signature)
            .map_err(|SignatureError| TxRejection::BadSignature)?;
        Ok(VerifiedTransaction { signed: self, hash })
    }

    /// Checks the chain id and signature of many transactions with one batch verification.
    /// The result for each transaction is the same as [`SignedTransaction::verify`] gives.
    pub fn verify_batch<R: CryptoRng>(
        transactions: Vec<SignedTransaction>,
        chain_id: &ChainId,
        rng: R,
    ) -> Vec<Result<VerifiedTransaction, TxRejection>> {
        let hashes: Vec<TxHash> = transactions.iter().map(SignedTransaction::hash).collect();
        let chain_ok: Vec<Result<(), TxRejection>> =
            transactions.iter().map(|transaction| transaction.check_chain(chain_id)).collect();
        let items: Vec<(PublicKey, &[u8], Signature)> = transactions
            .iter()
            .zip(&hashes)
            .zip(&chain_ok)
            .filter(|(_, chain)| chain.is_ok())
            .map(|((transaction, hash), _)| {
                (transaction.sender_key(), hash.0.as_bytes().as_slice(), transaction.signature)
            })
            .collect();
        let mut signature_results = verify_batch(&items, rng).into_iter();
        transactions
            .into_iter()
            .zip(hashes)
            .zip(chain_ok)
            .map(|((signed, hash), chain)| {
                chain?;
                match signature_results.next() {
                    Some(Ok(())) => Ok(VerifiedTransaction { signed, hash }),
                    _ => Err(TxRejection::BadSignature),
                }
            })
            .collect()
    }
}

/// A transaction whose chain id and signature have been checked. Only
/// [`SignedTransaction::verify`] and [`SignedTransaction::verify_batch`] make one, so code that
/// takes a `VerifiedTransaction` never sees an unsigned or foreign transaction.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VerifiedTransaction {
    signed: SignedTransaction,
    hash: TxHash,
}

impl VerifiedTransaction {
    /// The transaction.
    pub fn tx(&self) -> &Transaction {
        &self.signed.tx
    }

    /// The signed envelope.
    pub fn signed(&self) -> &SignedTransaction {
        &self.signed
    }

    /// Gives back the signed envelope.
    pub fn into_signed(self) -> SignedTransaction {
        self.signed
    }

    /// The transaction's identity (computed once, at verification).
    pub fn hash(&self) -> TxHash {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chain() -> ChainId {
        ChainId::new("test-chain").unwrap()
    }

    fn transfer(key: &SecretKey, nonce: u64, amount: u128) -> SignedTransaction {
        Transaction {
            chain_id: chain(),
            sender: Address(key.public_key()),
            nonce: Nonce(nonce),
            fee: Amount::ZERO,
            payload: Payload::Transfer { to: Address(PublicKey([9; 32])), amount: Amount(amount) },
        }
        .sign(key)
    }

    #[test]
    fn verification_catches_tampering_and_foreign_chains() {
        let key = SecretKey::from_seed([1; 32]);
        let good = transfer(&key, 0, 10);
        assert!(good.clone().verify(&chain()).is_ok());

        let mut tampered = good.clone();
        tampered.tx.payload =
            Payload::Transfer { to: Address(PublicKey([9; 32])), amount: Amount(11) };
        assert_eq!(tampered.clone().verify(&chain()), Err(TxRejection::BadSignature));

        let other_chain = ChainId::new("other").unwrap();
        assert!(matches!(good.clone().verify(&other_chain), Err(TxRejection::WrongChain { .. })));

        let results = SignedTransaction::verify_batch(
            vec![good.clone(), tampered, good.clone()],
            &chain(),
            rand::rng(),
        );
        assert!(results[0].is_ok());
        assert_eq!(results[1], Err(TxRejection::BadSignature));
        assert!(results[2].is_ok());
        let foreign = SignedTransaction::verify_batch(vec![good], &other_chain, rand::rng());
        assert!(matches!(foreign[0], Err(TxRejection::WrongChain { .. })));
    }

    #[test]
    fn decode_refuses_garbage_oversize_and_trailing_bytes() {
        let key = SecretKey::from_seed([1; 32]);
        let bytes = transfer(&key, 3, 5).encode();
        assert_eq!(SignedTransaction::decode(&bytes).unwrap(), transfer(&key, 3, 5));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(SignedTransaction::decode(&trailing), Err(TxRejection::Malformed(_))));
        assert!(matches!(SignedTransaction::decode(&[1, 2, 3]), Err(TxRejection::Malformed(_))));
        assert!(matches!(
            SignedTransaction::decode(&vec![0; MAX_TX_BYTES + 1]),
            Err(TxRejection::TooLarge { .. })
        ));
    }

    #[test]
    fn the_fee_is_signed_and_encoded_between_the_nonce_and_the_payload() {
        let key = SecretKey::from_seed([1; 32]);
        let free = transfer(&key, 0, 10);
        let mut paid = free.tx.clone();
        paid.fee = Amount(3);
        assert_ne!(paid.hash(), free.hash(), "the fee is part of what is signed");
        let mut tampered = paid.clone().sign(&key);
        tampered.tx.fee = Amount(1);
        assert_eq!(tampered.verify(&chain()), Err(TxRejection::BadSignature));
        // chain id (length-prefixed), sender (32 bytes), nonce (8 bytes), fee (16 bytes).
        let bytes = encode(&paid);
        let fee_at = 4 + chain().as_str().len() + 32 + 8;
        assert_eq!(&bytes[fee_at..fee_at + 16], &3u128.to_le_bytes());
        assert_eq!(&encode(&paid.payload)[..], &bytes[fee_at + 16..]);
    }

    #[test]
    fn invalid_text_fields_cannot_be_decoded() {
        assert!(ChainId::new("Upper").is_err());
        assert!(ChainId::new("").is_err());
        assert!(FiatRef::new("has space").is_err());
        let bad = encode(&"Bad Chain".to_string());
        assert!(decode::<ChainId>(&bad).is_err());
    }

    fn arbitrary_payload() -> impl Strategy<Value = Payload> {
        let address = any::<[u8; 32]>().prop_map(|bytes| Address(PublicKey(bytes)));
        let fiat = "[A-Za-z0-9/-]{1,64}".prop_map(|text| FiatRef::new(&text).unwrap());
        prop_oneof![
            (address.clone(), any::<u128>())
                .prop_map(|(to, amount)| Payload::Transfer { to, amount: Amount(amount) }),
            (address, any::<u128>(), fiat.clone()).prop_map(|(to, amount, fiat_ref)| {
                Payload::Mint { to, amount: Amount(amount), fiat_ref }
            }),
            (any::<u128>(), fiat).prop_map(|(amount, fiat_ref)| Payload::Redeem {
                amount: Amount(amount),
                fiat_ref
            }),
        ]
    }

    proptest! {
        #[test]
        fn encoding_round_trips(
            sender in any::<[u8; 32]>(),
            nonce in any::<u64>(),
            fee in any::<u128>(),
            payload in arbitrary_payload(),
            signature in proptest::collection::vec(any::<u8>(), 64),
        ) {
            let signed = SignedTransaction {
                tx: Transaction { chain_id: chain(), sender: Address(PublicKey(sender)), nonce: Nonce(nonce), fee: Amount(fee), payload },
                signature: Signature(signature.try_into().unwrap()),
            };
            let bytes = signed.encode();
            prop_assert_eq!(SignedTransaction::decode(&bytes).unwrap(), signed);
        }

        #[test]
        fn whatever_decodes_re_encodes_to_the_same_bytes(
            nonce in any::<u64>(),
            position in any::<prop::sample::Index>(),
            replacement in any::<u8>(),
            cut in 0usize..4,
        ) {
            // Start from a valid encoding, corrupt one byte and maybe drop some from the end:
            // whatever still decodes must be canonical.
            let key = SecretKey::from_seed([4; 32]);
            let mut bytes = transfer(&key, nonce, 77).encode();
            let index = position.index(bytes.len());
            bytes[index] = replacement;
            bytes.truncate(bytes.len() - cut);
            if let Ok(signed) = SignedTransaction::decode(&bytes) {
                prop_assert_eq!(signed.encode(), bytes);
            }
        }
    }
}
