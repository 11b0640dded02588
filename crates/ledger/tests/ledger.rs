//! Ledger rules and properties, through the public API only.

use ledger::{InclusionError, Receipt, State, TxError};
use primitives::{
    Amount, ChainParams, FiatRef, Genesis, Nonce, Payload, TimestampMs, VerifiedTransaction,
    testing::{self, address, chain_id},
};
use proptest::prelude::*;
use std::collections::BTreeMap;

const CHAIN: &str = "ledger-test";
/// Block time in these tests: within the genesis slot, so the market stays idle.
const NOW: TimestampMs = TimestampMs(1_000);
const ISSUER: u8 = 0;
const MEMBERS: u8 = 5;

fn genesis() -> Genesis {
    let balances: Vec<(u8, u128)> = (1..=MEMBERS).map(|i| (i, 1_000)).collect();
    testing::genesis(CHAIN, 99, ISSUER, &balances, ChainParams::default(), TimestampMs(0))
}

fn signed(sender: u8, nonce: u64, payload: Payload) -> VerifiedTransaction {
    testing::signed(CHAIN, sender, nonce, payload).verify(&chain_id(CHAIN)).unwrap()
}

fn transfer(sender: u8, nonce: u64, to: u8, amount: u128) -> VerifiedTransaction {
    testing::transfer(CHAIN, sender, nonce, to, amount).verify(&chain_id(CHAIN)).unwrap()
}

/// The state entries a block changed, besides the market clock.
fn changed_keys(outcome: &ledger::BlockOutcome) -> std::collections::BTreeSet<Vec<u8>> {
    outcome
        .diff
        .changes
        .iter()
        .map(|(key, _)| key.clone())
        .filter(|key| *key != ledger::keys::cursor())
        .collect()
}

fn fiat(text: &str) -> FiatRef {
    FiatRef::new(text).unwrap()
}

fn balance(state: &State, index: u8) -> u128 {
    state.account(&address(index)).balance.0
}

fn total_balances(state: &State) -> Amount {
    state
        .accounts()
        .fold(Amount::ZERO, |sum, (_, account)| sum.checked_add(account.balance).unwrap())
}

#[test]
fn a_transfer_moves_tokens_and_uses_the_nonce() {
    let mut state = State::from_genesis(&genesis()).unwrap();
    let root = state.root();
    let outcome = state.apply_block(NOW, &[transfer(1, 0, 2, 300)]).unwrap();
    assert_eq!(outcome.receipts, vec![Receipt::Success(ledger::Outcome::Done)]);
    assert_eq!((balance(&state, 1), balance(&state, 2)), (700, 1300));
    assert_eq!(state.account(&address(1)).nonce, Nonce(1));
    assert_ne!(state.root(), root);
    assert_eq!(outcome.diff.root, state.root());
    assert_eq!(
        changed_keys(&outcome),
        vec![ledger::keys::account(&address(1)), ledger::keys::account(&address(2))]
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>(),
        "two accounts changed"
    );
}

#[test]
fn failures_use_the_nonce_and_change_nothing_else() {
    let mut state = State::from_genesis(&genesis()).unwrap();
    let cases = [
        (
            transfer(1, 0, 2, 1_001),
            TxError::InsufficientBalance { balance: Amount(1000), needed: Amount(1001) },
        ),
        (transfer(1, 1, 2, 0), TxError::ZeroAmount),
        (
            signed(1, 2, Payload::Mint { to: address(1), amount: Amount(5), fiat_ref: fiat("x") }),
            TxError::NotIssuer,
        ),
        (
            signed(1, 3, Payload::Redeem { amount: Amount(5), fiat_ref: fiat("x") }),
            TxError::NotIssuer,
        ),
    ];
    for (tx, expected) in cases {
        assert_eq!(state.check(tx.tx(), NOW), Err(expected.clone()));
        let outcome = state.apply_block(NOW, &[tx]).unwrap();
        assert_eq!(outcome.receipts, vec![Receipt::Failed(expected)]);
        assert_eq!(
            changed_keys(&outcome),
            [ledger::keys::account(&address(1))].into_iter().collect(),
            "only the sender's nonce changed"
        );
    }
    assert_eq!(balance(&state, 1), 1_000);
    assert_eq!(balance(&state, 2), 1_000);
    assert_eq!(state.account(&address(1)).nonce, Nonce(4));
    assert_eq!(state.supply().circulating(), Amount(5_000));
}

#[test]
fn mint_and_redeem_are_the_issuers_and_each_fiat_reference_counts_once() {
    let mut state = State::from_genesis(&genesis()).unwrap();
    let mint = |nonce, reference: &str| {
        signed(
            ISSUER,
            nonce,
            Payload::Mint { to: address(3), amount: Amount(250), fiat_ref: fiat(reference) },
        )
    };
    let outcome = state.apply_block(NOW, &[mint(0, "bank-1"), mint(1, "bank-1")]).unwrap();
    assert_eq!(outcome.receipts[0], Receipt::Success(ledger::Outcome::Done));
    assert_eq!(outcome.receipts[1], Receipt::Failed(TxError::FiatRefUsed(fiat("bank-1"))));
    assert_eq!(balance(&state, 3), 1_250);
    assert_eq!(state.supply().minted, Amount(5_250));

    // Redeeming burns from the issuer's own balance: first it needs tokens.
    let redeem =
        signed(ISSUER, 2, Payload::Redeem { amount: Amount(100), fiat_ref: fiat("bank-1") });
    assert_eq!(
        state.check(redeem.tx(), NOW),
        Err(TxError::InsufficientBalance { balance: Amount(0), needed: Amount(100) })
    );
    state.apply_block(NOW, &[transfer(3, 0, ISSUER, 100)]).unwrap();
    let outcome = state.apply_block(NOW, &[redeem]).unwrap();
    assert_eq!(
        outcome.receipts,
        vec![Receipt::Success(ledger::Outcome::Done)],
        "a mint reference may back one redemption"
    );
    assert_eq!(state.supply().redeemed, Amount(100));
    assert_eq!(total_balances(&state), state.supply().circulating());
}

#[test]
fn a_wrong_nonce_keeps_the_transaction_out_and_the_block_is_undone() {
    let mut state = State::from_genesis(&genesis()).unwrap();
    let before = state.clone();
    let result = state.apply_block(NOW, &[transfer(1, 0, 2, 10), transfer(1, 5, 2, 10)]);
    assert_eq!(
        result.unwrap_err(),
        (1, InclusionError::WrongNonce { expected: Nonce(1), got: Nonce(5) })
    );
    assert_eq!(state.root(), before.root());
    assert_eq!(state.entries(), before.entries(), "the first transaction was undone too");
    let replay = state.apply_block(NOW, &[transfer(1, 0, 2, 10)]).unwrap();
    assert_eq!(replay.receipts, vec![Receipt::Success(ledger::Outcome::Done)]);
    assert!(state.apply_block(NOW, &[transfer(1, 0, 2, 10)]).is_err(), "a replay is refused");
}

/// One step of a random history.
#[derive(Clone, Debug)]
enum Step {
    Transfer { from: u8, to: u8, amount: u128 },
    Mint { by: u8, to: u8, amount: u128, reference: u8 },
    Redeem { by: u8, amount: u128, reference: u8 },
    EndBlock,
}

fn step() -> impl Strategy<Value = Step> {
    let member = 0..=MEMBERS;
    prop_oneof![
        6 => (member.clone(), member.clone(), 0u128..1_500).prop_map(|(from, to, amount)| Step::Transfer { from, to, amount }),
        2 => (prop_oneof![Just(ISSUER), member.clone()], member.clone(), 0u128..2_000, 0u8..6)
            .prop_map(|(by, to, amount, reference)| Step::Mint { by, to, amount, reference }),
        1 => (prop_oneof![Just(ISSUER), member], 0u128..500, 0u8..6)
            .prop_map(|(by, amount, reference)| Step::Redeem { by, amount, reference }),
        2 => Just(Step::EndBlock),
    ]
}

/// Replays `steps` on a fresh state, checking the invariants after every block, and returns the
/// state and a store-like map of entries maintained only from the block diffs.
fn run(steps: &[Step]) -> (State, BTreeMap<Vec<u8>, Vec<u8>>) {
    let mut state = State::from_genesis(&genesis()).unwrap();
    let mut store: BTreeMap<Vec<u8>, Vec<u8>> = state.entries().into_iter().collect();
    let mut nonces = [0u64; (MEMBERS + 1) as usize];
    let mut block = Vec::new();
    let end_block = |state: &mut State,
                     block: &mut Vec<VerifiedTransaction>,
                     store: &mut BTreeMap<Vec<u8>, Vec<u8>>| {
        let outcome = state.apply_block(NOW, block).unwrap();
        assert_eq!(outcome.receipts.len(), block.len());
        block.clear();
        for (key, value) in outcome.diff.changes {
            match value {
                Some(value) => store.insert(key, value),
                None => store.remove(&key),
            };
        }
        // Conservation: the balances always add up to what was minted minus what was redeemed.
        assert_eq!(total_balances(state), state.supply().circulating());
        assert!(state.supply().minted >= state.supply().redeemed);
    };
    for step in steps {
        let (sender, payload) = match step {
            Step::Transfer { from, to, amount } => {
                (*from, Payload::Transfer { to: address(*to), amount: Amount(*amount) })
            }
            Step::Mint { by, to, amount, reference } => (
                *by,
                Payload::Mint {
                    to: address(*to),
                    amount: Amount(*amount),
                    fiat_ref: fiat(&format!("ref-{reference}")),
                },
            ),
            Step::Redeem { by, amount, reference } => (
                *by,
                Payload::Redeem {
                    amount: Amount(*amount),
                    fiat_ref: fiat(&format!("ref-{reference}")),
                },
            ),
            Step::EndBlock => {
                end_block(&mut state, &mut block, &mut store);
                continue;
            }
        };
        let nonce = &mut nonces[sender as usize];
        block.push(signed(sender, *nonce, payload));
        *nonce += 1;
    }
    end_block(&mut state, &mut block, &mut store);
    (state, store)
}

/// The rules written as plainly as possible, with signed integers, so that an overdraft the
/// ledger wrongly allowed would show up as a difference (or a negative model balance).
#[derive(Default)]
struct Model {
    balances: BTreeMap<u8, i128>,
    used: std::collections::BTreeSet<(bool, u8)>,
}

impl Model {
    fn new() -> Model {
        Model {
            balances: (1..=MEMBERS).map(|member| (member, 1_000)).collect(),
            ..Model::default()
        }
    }

    fn balance(&self, account: u8) -> i128 {
        self.balances.get(&account).copied().unwrap_or(0)
    }

    /// Whether `step` succeeds; applies it if so.
    fn apply(&mut self, step: &Step) -> bool {
        match *step {
            Step::Transfer { from, to, amount } => {
                let amount = amount as i128;
                if amount == 0 || self.balance(from) < amount {
                    return false;
                }
                *self.balances.entry(from).or_default() -= amount;
                *self.balances.entry(to).or_default() += amount;
                true
            }
            Step::Mint { by, to, amount, reference } => {
                if by != ISSUER || amount == 0 || !self.used.insert((true, reference)) {
                    return false;
                }
                *self.balances.entry(to).or_default() += amount as i128;
                true
            }
            Step::Redeem { by, amount, reference } => {
                let amount = amount as i128;
                if by != ISSUER
                    || amount == 0
                    || self.used.contains(&(false, reference))
                    || self.balance(by) < amount
                {
                    return false;
                }
                self.used.insert((false, reference));
                *self.balances.entry(by).or_default() -= amount;
                true
            }
            Step::EndBlock => true,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_ledger_agrees_with_a_naive_model(steps in proptest::collection::vec(step(), 0..80)) {
        let mut state = State::from_genesis(&genesis()).unwrap();
        let mut model = Model::new();
        let mut nonces = [0u64; (MEMBERS + 1) as usize];
        for step in &steps {
            let payload = match *step {
                Step::Transfer { to, amount, .. } => Payload::Transfer { to: address(to), amount: Amount(amount) },
                Step::Mint { to, amount, reference, .. } => Payload::Mint {
                    to: address(to),
                    amount: Amount(amount),
                    fiat_ref: fiat(&format!("ref-{reference}")),
                },
                Step::Redeem { amount, reference, .. } => {
                    Payload::Redeem { amount: Amount(amount), fiat_ref: fiat(&format!("ref-{reference}")) }
                }
                Step::EndBlock => {
                    state.finish_block();
                    continue;
                }
            };
            let sender = match *step {
                Step::Transfer { from, .. } => from,
                Step::Mint { by, .. } | Step::Redeem { by, .. } => by,
                Step::EndBlock => unreachable!(),
            };
            let receipt = state.execute(&signed(sender, nonces[sender as usize], payload)).unwrap();
            nonces[sender as usize] += 1;
            prop_assert_eq!(receipt == Receipt::Success(ledger::Outcome::Done), model.apply(step), "step {:?}", step);
        }
        state.finish_block();
        for member in 0..=MEMBERS {
            prop_assert!(model.balance(member) >= 0);
            prop_assert_eq!(balance(&state, member) as i128, model.balance(member), "account {}", member);
            prop_assert_eq!(state.account(&address(member)).nonce, Nonce(nonces[member as usize]));
        }
    }

    #[test]
    fn supply_is_conserved_and_roots_are_deterministic(steps in proptest::collection::vec(step(), 0..60)) {
        let (first, store) = run(&steps);
        let (second, _) = run(&steps);
        // The same blocks on the same state give the same root.
        prop_assert_eq!(first.root(), second.root());
        // What a store kept from the diffs alone rebuilds the very same state.
        let rebuilt = State::from_entries(store.clone()).unwrap();
        prop_assert_eq!(rebuilt.root(), first.root());
        prop_assert_eq!(rebuilt.entries(), first.entries());
        prop_assert_eq!(store.into_iter().collect::<Vec<_>>(), first.entries());
    }

    #[test]
    fn a_different_history_gives_a_different_root(amount in 1u128..1_000) {
        let (one, _) = run(&[Step::Transfer { from: 1, to: 2, amount }]);
        let (two, _) = run(&[Step::Transfer { from: 1, to: 2, amount: amount + 1 }]);
        prop_assert_ne!(one.root(), two.root());
    }
}

#[test]
fn a_finished_block_can_be_reverted_exactly_once() {
    let mut state = State::from_genesis(&genesis()).unwrap();
    state.apply_block(NOW, &[transfer(1, 0, 2, 10)]).unwrap();
    let before = state.clone();
    let outcome = state
        .apply_block(TimestampMs(NOW.0 + 5), &[transfer(1, 1, 3, 300), transfer(2, 0, 1, 5)])
        .unwrap();
    assert_ne!(outcome.diff.root, before.root());
    assert!(state.revert_block());
    assert_eq!(state.root(), before.root());
    assert_eq!(state.entries(), before.entries());
    assert_eq!(balance(&state, 3), 1_000);
    assert!(!state.revert_block(), "only the last block can be reverted");
    // The same block executes again to the same root: nothing of it was left behind.
    let again = state
        .apply_block(TimestampMs(NOW.0 + 5), &[transfer(1, 1, 3, 300), transfer(2, 0, 1, 5)])
        .unwrap();
    assert_eq!(again.diff.root, outcome.diff.root);
}
