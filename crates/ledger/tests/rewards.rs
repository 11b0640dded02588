//! Fees (every engine), proof-of-work block rewards counted apart from the fiat-backed supply,
//! and settlement that waits for confirmations on proof of work, through the public API.

use ledger::{InclusionError, State, TxError};
use primitives::{
    Amount, ChainParams, EngineKind, FiatRef, Genesis, Nonce, Payload, PowParams, TimestampMs,
    Transaction, VerifiedTransaction,
    testing::{self, address, chain_id, key},
};

const CHAIN: &str = "rewards-test";
const NOW: TimestampMs = TimestampMs(1_000);
const ISSUER: u8 = 0;
const MINER: u8 = 9;
const REWARD: u128 = 50;

fn solo() -> Genesis {
    let balances: Vec<(u8, u128)> = (1..=3).map(|i| (i, 1_000)).collect();
    testing::genesis(CHAIN, 99, ISSUER, &balances, ChainParams::default(), TimestampMs(0))
}

fn pow() -> Genesis {
    let mut genesis = solo();
    genesis.config.validators.clear();
    genesis.config.engine = EngineKind::Pow(PowParams {
        block_reward: Amount(REWARD),
        settlement_confirmations: 2,
        ..PowParams::new(genesis.genesis_time)
    });
    genesis.validate().unwrap();
    genesis
}

/// A transaction of `sender` with `fee`.
fn paying(sender: u8, nonce: u64, fee: u128, payload: Payload) -> VerifiedTransaction {
    Transaction {
        chain_id: chain_id(CHAIN),
        sender: address(sender),
        nonce: Nonce(nonce),
        fee: Amount(fee),
        payload,
    }
    .sign(&key(sender))
    .verify(&chain_id(CHAIN))
    .unwrap()
}

fn balance(state: &State, index: u8) -> u128 {
    state.account(&address(index)).balance.0
}

#[test]
fn a_fee_goes_to_the_proposer_whether_the_payload_succeeds_or_fails() {
    let mut state = State::from_genesis(&solo()).unwrap();
    let ok = paying(1, 0, 7, Payload::Transfer { to: address(2), amount: Amount(100) });
    // Fails (more than the balance left after the fee), but pays the fee and uses the nonce.
    let failing = paying(1, 1, 3, Payload::Transfer { to: address(2), amount: Amount(1_000) });
    let outcome = state.apply_block_by(NOW, address(MINER), &[ok, failing]).unwrap();
    assert!(outcome.receipts[0].is_success() && !outcome.receipts[1].is_success());
    assert_eq!(balance(&state, 1), 1_000 - 100 - 7 - 3);
    assert_eq!(balance(&state, 2), 1_100);
    assert_eq!(balance(&state, MINER), 10);
    assert_eq!(state.account(&address(1)).nonce, Nonce(2));
    assert_eq!(state.check_conservation(), Ok(()));
    assert_eq!(state.supply().rewarded, Amount::ZERO, "no reward on a final engine");
}

#[test]
fn a_fee_the_sender_cannot_pay_keeps_the_transaction_out_and_changes_nothing() {
    let mut state = State::from_genesis(&solo()).unwrap();
    let root = state.root();
    let tx = paying(1, 0, 1_001, Payload::Transfer { to: address(2), amount: Amount(1) });
    let (index, error) = state.apply_block_by(NOW, address(MINER), &[tx]).unwrap_err();
    assert_eq!(index, 0);
    assert!(
        matches!(error, InclusionError::FeeUnpaid(TxError::InsufficientBalance { .. })),
        "{error:?}"
    );
    assert_eq!(state.root(), root);
    assert_eq!(balance(&state, MINER), 0);
}

#[test]
fn a_proof_of_work_block_rewards_its_miner_apart_from_the_fiat_backed_supply() {
    let mut state = State::from_genesis(&pow()).unwrap();
    let minted = state.supply().minted;
    for block in 0..3u64 {
        state.apply_block_by(TimestampMs(NOW.0 + block), address(MINER), &[]).unwrap();
        assert_eq!(state.check_conservation(), Ok(()), "after block {block}");
    }
    let supply = state.supply();
    assert_eq!(supply.rewarded, Amount(3 * REWARD));
    assert_eq!(supply.fiat_backed(), minted);
    assert_eq!(supply.circulating(), Amount(minted.0 + 3 * REWARD));
    assert_eq!(balance(&state, MINER), 3 * REWARD);

    // The miner's reward tokens pay like any other; the issuer redeems fiat-backed tokens only.
    let redeem = |nonce, amount| {
        let fiat_ref = FiatRef::new(&format!("redeem-{nonce}")).unwrap();
        paying(ISSUER, nonce, 0, Payload::Redeem { amount: Amount(amount), fiat_ref })
    };
    let give = paying(MINER, 0, 0, Payload::Transfer { to: address(ISSUER), amount: Amount(150) });
    state.apply_block_by(TimestampMs(NOW.0 + 10), address(MINER), &[give]).unwrap();
    let too_much = minted.0 + 1;
    let outcome = state
        .apply_block_by(TimestampMs(NOW.0 + 11), address(MINER), &[redeem(0, too_much)])
        .unwrap();
    assert_eq!(
        outcome.receipts,
        vec![ledger::Receipt::Failed(TxError::RedeemExceedsBacking { backed: minted })]
    );
    assert_eq!(state.check_conservation(), Ok(()));
}

#[test]
fn on_proof_of_work_a_slot_settles_only_once_the_block_that_passed_its_deadline_is_confirmed() {
    let slot_ms = 15 * 60 * 1000;
    let mut final_chain = State::from_genesis(&solo()).unwrap();
    let mut forked_chain = State::from_genesis(&pow()).unwrap();
    let mut final_settle = Vec::new();
    let mut forked_settle = Vec::new();
    // One block per slot, twelve slots.
    for block in 1..=12u64 {
        let time = TimestampMs(block * slot_ms + 1);
        final_chain.apply_block_by(time, address(MINER), &[]).unwrap();
        forked_chain.apply_block_by(time, address(MINER), &[]).unwrap();
        final_settle.push(final_chain.cursor().next_settle);
        forked_settle.push(forked_chain.cursor().next_settle);
    }
    assert!(final_settle.last() > final_settle.first(), "slots settled: {final_settle:?}");
    // Two confirmations: each block settles what the final chain settled two blocks before.
    assert_eq!(&forked_settle[2..], &final_settle[..10], "{forked_settle:?} {final_settle:?}");
    assert!(forked_settle[..2].iter().all(|slot| *slot <= final_settle[0]));
}
