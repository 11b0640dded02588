//! Changing the validator set by an operator transaction: who may, how far ahead, and the
//! height the new set takes over at.

use ledger::{Receipt, State, TxError};
use primitives::{
    ChainParams, EngineKind, Height, Payload, TimestampMs, Validator, VerifiedTransaction,
    testing::{self, chain_id},
};

const CHAIN: &str = "validators-test";
const OPERATOR: u8 = 1;
const MEMBER: u8 = 2;

fn validator(seed: u8) -> Validator {
    Validator { name: format!("v{seed}"), key: testing::key(seed).public_key(), power: 1 }
}

struct Chain {
    state: State,
    nonces: [u64; 3],
    time: u64,
}

impl Chain {
    fn new(engine: EngineKind) -> Chain {
        let mut genesis = testing::genesis(
            CHAIN,
            10,
            OPERATOR,
            &[(MEMBER, 100)],
            ChainParams::default(),
            TimestampMs(1_000),
        );
        genesis.config.engine = engine;
        if engine == EngineKind::Bft {
            genesis.config.validators = (10..14).map(validator).collect();
        }
        Chain { state: State::from_genesis(&genesis).unwrap(), nonces: [0; 3], time: 1_000 }
    }

    fn tx(&mut self, sender: u8, payload: Payload) -> VerifiedTransaction {
        let nonce = &mut self.nonces[usize::from(sender)];
        let tx = testing::signed(CHAIN, sender, *nonce, payload).verify(&chain_id(CHAIN)).unwrap();
        *nonce += 1;
        tx
    }

    /// Runs one block and returns its receipts; the block's height is the cursor's afterwards.
    fn block(&mut self, txs: Vec<VerifiedTransaction>) -> Vec<Receipt> {
        self.time += 1_000;
        self.state.apply_block(TimestampMs(self.time), &txs).unwrap().receipts
    }

    fn height(&self) -> u64 {
        self.state.cursor().height.0
    }

    fn set(&mut self, sender: u8, from: u64, validators: Vec<Validator>) -> Receipt {
        let tx = self.tx(sender, Payload::SetValidators { from_height: Height(from), validators });
        self.block(vec![tx]).remove(0)
    }
}

fn keys(validators: &[Validator]) -> Vec<u8> {
    validators
        .iter()
        .map(|validator| (10..20).find(|seed| testing::key(*seed).public_key() == validator.key))
        .map(|seed| seed.unwrap())
        .collect()
}

#[test]
fn the_cursor_counts_blocks() {
    let mut chain = Chain::new(EngineKind::Bft);
    assert_eq!(chain.height(), 0);
    chain.block(vec![]);
    chain.block(vec![]);
    assert_eq!(chain.height(), 2);
}

#[test]
fn a_new_set_takes_over_at_its_height_and_is_known_ahead() {
    let mut chain = Chain::new(EngineKind::Bft);
    chain.block(vec![]);
    let new_set: Vec<Validator> = [10, 11, 14].map(validator).to_vec();
    // Executed in block 2, taking over at block 5.
    assert_eq!(chain.set(OPERATOR, 5, new_set.clone()), Receipt::Success(ledger::Outcome::Done));
    assert_eq!(chain.height(), 2);
    assert_eq!(keys(chain.state.validators_at(Height(3))), vec![10, 11, 12, 13]);
    assert_eq!(keys(chain.state.validators_at(Height(5))), vec![10, 11, 14]);
    assert_eq!(chain.state.next_validators().unwrap().from, Height(5));
    chain.block(vec![]);
    chain.block(vec![]);
    assert_eq!(chain.height(), 4);
    assert_eq!(keys(&chain.state.config().validators), vec![10, 11, 12, 13]);
    assert_eq!(keys(chain.state.validators_at(Height(5))), vec![10, 11, 14]);
    // From block 5 on the configuration names the new set.
    chain.block(vec![]);
    assert_eq!(keys(&chain.state.config().validators), vec![10, 11, 14]);
    assert!(chain.state.next_validators().is_none());
    assert_eq!(keys(chain.state.validators_at(Height(6))), vec![10, 11, 14]);
}

#[test]
fn the_change_survives_a_round_trip_through_the_entries_and_a_revert() {
    let mut chain = Chain::new(EngineKind::Bft);
    let root_before = chain.state.root();
    chain.set(OPERATOR, 3, vec![validator(15)]);
    let rebuilt = State::from_entries(chain.state.entries()).unwrap();
    assert_eq!(rebuilt.root(), chain.state.root());
    assert_eq!(rebuilt.next_validators(), chain.state.next_validators());
    assert!(chain.state.revert_block());
    assert_eq!(chain.state.root(), root_before);
    assert!(chain.state.next_validators().is_none());
    chain.nonces[usize::from(OPERATOR)] -= 1;
    // Handing over is part of a block too: reverting the new set's first block restores the
    // old configuration.
    chain.set(OPERATOR, 3, vec![validator(15)]);
    chain.block(vec![]);
    let before_handover = chain.state.root();
    chain.block(vec![]);
    assert_eq!(chain.height(), 3);
    assert_eq!(keys(&chain.state.config().validators), vec![15]);
    assert!(chain.state.revert_block());
    assert_eq!(chain.state.root(), before_handover);
    assert_eq!(keys(&chain.state.config().validators), vec![10, 11, 12, 13]);
}

#[test]
fn bad_changes_fail_and_change_nothing_but_the_nonce() {
    let mut chain = Chain::new(EngineKind::Bft);
    let expect_failure = |receipt: Receipt, code: &str| match receipt {
        Receipt::Failed(error) => assert_eq!(error.code(), code, "{error}"),
        other => panic!("expected {code}, got {other:?}"),
    };
    let root = chain.state.root();
    expect_failure(chain.set(MEMBER, 10, vec![validator(15)]), "not_operator");
    // Executed at height 2: height 3 is too soon, height 4 would do.
    expect_failure(chain.set(OPERATOR, 3, vec![validator(15)]), "validators_too_soon");
    expect_failure(chain.set(OPERATOR, 10, vec![]), "bad_validator_set");
    let twice = vec![validator(15), validator(15)];
    expect_failure(chain.set(OPERATOR, 10, twice), "bad_validator_set");
    let powerless = vec![Validator { power: 0, ..validator(15) }];
    expect_failure(chain.set(OPERATOR, 10, powerless), "bad_validator_set");
    assert!(chain.state.next_validators().is_none());
    assert_ne!(chain.state.root(), root, "nonces moved");
    assert_eq!(keys(&chain.state.config().validators), vec![10, 11, 12, 13]);
    let message =
        TxError::ValidatorsTooSoon { from: Height(3), height: Height(2), earliest: Height(4) }
            .to_string();
    assert!(message.contains("height 4 at the earliest"), "{message}");
}

#[test]
fn a_solo_chain_keeps_its_validator() {
    let mut chain = Chain::new(EngineKind::Solo);
    match chain.set(OPERATOR, 10, vec![validator(15)]) {
        Receipt::Failed(TxError::SoloValidatorFixed) => {}
        other => panic!("expected solo_validator_fixed, got {other:?}"),
    }
}

#[test]
fn a_later_change_replaces_a_waiting_one() {
    let mut chain = Chain::new(EngineKind::Bft);
    chain.set(OPERATOR, 10, vec![validator(15)]);
    chain.set(OPERATOR, 8, vec![validator(16)]);
    let waiting = chain.state.next_validators().unwrap();
    assert_eq!((waiting.from, keys(&waiting.validators)), (Height(8), vec![16]));
}
