//! Undoing finished blocks: random histories of transfers, mints and market activity, undone
//! block by block, give back every earlier state exactly (entries, typed maps, derived indexes
//! and root); undo data that does not fit is refused and changes nothing.

use super::*;
use crate::testing::{RandomBlocks, genesis};
use primitives::ClearingRule;
use proptest::prelude::*;

/// Asserts that two states are the same in every part: entries, typed maps, derived indexes,
/// root, and no block or transaction in progress.
fn assert_same(actual: &State, expected: &State, context: &str) {
    assert_eq!(actual.root, expected.root, "{context}: root");
    assert_eq!(actual.entries(), expected.entries(), "{context}: entries");
    assert_eq!(actual.config, expected.config, "{context}: config");
    assert_eq!(actual.accounts, expected.accounts, "{context}: accounts");
    assert_eq!(actual.supply, expected.supply, "{context}: supply");
    assert_eq!(actual.fiat_refs, expected.fiat_refs, "{context}: fiat references");
    assert_eq!(actual.cursor, expected.cursor, "{context}: cursor");
    assert_eq!(actual.next_validators, expected.next_validators, "{context}: next validators");
    assert_eq!(actual.tariffs, expected.tariffs, "{context}: tariffs");
    assert_eq!(actual.meters, expected.meters, "{context}: meters");
    assert_eq!(actual.readings, expected.readings, "{context}: readings");
    assert_eq!(actual.orders, expected.orders, "{context}: orders");
    assert_eq!(actual.cleared, expected.cleared, "{context}: cleared slots");
    assert_eq!(actual.contracts, expected.contracts, "{context}: contracts");
    assert_eq!(actual.active_meters, expected.active_meters, "{context}: active meters");
    assert_eq!(actual.order_slots, expected.order_slots, "{context}: order slots");
    assert_eq!(actual.slot_sides, expected.slot_sides, "{context}: order sides");
    assert!(actual.journal.is_empty() && actual.tx_journal.is_empty(), "{context}: journals");
    assert_eq!(actual.savepoint, Savepoint::None, "{context}: savepoint");
    // The incrementally kept tree agrees with one built from scratch, and the derived indexes
    // with those a fresh load derives.
    let fresh = State::from_entries(actual.entries()).unwrap();
    assert_eq!(fresh.root, actual.root, "{context}: root rebuilt from the entries");
    assert_eq!(fresh.active_meters, actual.active_meters, "{context}: active meters rebuilt");
    assert_eq!(fresh.order_slots, actual.order_slots, "{context}: order slots rebuilt");
    assert_eq!(fresh.slot_sides, actual.slot_sides, "{context}: order sides rebuilt");
}

/// Applies `count` random blocks; returns the state before each block and each block's undo
/// data, and how many transactions succeeded, failed, cleared and settled (to check that the
/// history is not trivial).
fn apply(
    state: &mut State,
    blocks: &mut RandomBlocks,
    count: usize,
) -> (Vec<State>, Vec<Arc<UndoData>>, [usize; 4]) {
    let mut before = Vec::with_capacity(count);
    let mut undo = Vec::with_capacity(count);
    let mut activity = [0usize; 4];
    for _ in 0..count {
        before.push(state.clone());
        let (time, txs) = blocks.next_block(state);
        let outcome = state.apply_block(time, &txs).expect("generated blocks are valid");
        assert_eq!(state.check_conservation(), Ok(()));
        activity[0] += outcome.receipts.iter().filter(|receipt| receipt.is_success()).count();
        activity[1] += outcome.receipts.iter().filter(|receipt| !receipt.is_success()).count();
        for event in &outcome.events {
            match event {
                crate::MarketEvent::Cleared { .. } => activity[2] += 1,
                crate::MarketEvent::Settled { .. } => activity[3] += 1,
            }
        }
        assert_eq!(outcome.diff.undo.root_after, outcome.diff.root);
        assert_eq!(
            outcome.diff.undo.entries.iter().map(|(key, _)| key).collect::<Vec<_>>(),
            outcome.diff.changes.iter().map(|(key, _)| key).collect::<Vec<_>>(),
            "the undo data names exactly the changed entries"
        );
        undo.push(outcome.diff.undo);
    }
    (before, undo, activity)
}

/// Applies `count` blocks from `seed`, undoes `depth` of them one by one, checking each earlier
/// state on the way, then applies `again` other blocks and checks the result against the same
/// blocks applied to the earlier state directly.
fn undo_and_reapply(seed: u64, clearing: ClearingRule, count: usize, depth: usize, again: usize) {
    let mut state = State::from_genesis(&genesis(clearing)).unwrap();
    let (before, undo, _) = apply(&mut state, &mut RandomBlocks::new(seed), count);
    for step in 1..=depth {
        let height = count - step;
        state.undo_block(&undo[height]).unwrap();
        assert_same(&state, &before[height], &format!("after undoing to height {height}"));
    }
    let base = count - depth;
    let mut direct = before[base].clone();
    let other_seed = seed ^ 0x5555_5555_5555_5555;
    apply(&mut state, &mut RandomBlocks::new(other_seed), again);
    apply(&mut direct, &mut RandomBlocks::new(other_seed), again);
    assert_same(&state, &direct, "other blocks on top of the undone state");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// Short histories, undone by a few blocks: every depth up to ten.
    #[test]
    fn undoing_a_few_blocks_restores_each_earlier_state(
        seed in any::<u64>(),
        pay_as_bid in any::<bool>(),
        count in 1usize..=25,
        depth in 1usize..=10,
        again in 0usize..=4,
    ) {
        let clearing = if pay_as_bid { ClearingRule::PayAsBid } else { ClearingRule::UniformPrice };
        undo_and_reapply(seed, clearing, count, depth.min(count), again);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, ..ProptestConfig::default() })]

    /// Long histories undone all the way back: every depth from 1 to at least 100.
    #[test]
    fn undoing_a_hundred_blocks_restores_each_earlier_state(
        seed in any::<u64>(),
        pay_as_bid in any::<bool>(),
        extra in 0usize..=10,
    ) {
        let clearing = if pay_as_bid { ClearingRule::PayAsBid } else { ClearingRule::UniformPrice };
        undo_and_reapply(seed, clearing, 100 + extra, 100 + extra, 3);
    }
}

/// The generated histories exercise the market: orders clear, slots settle, and transactions
/// both succeed and fail.
#[test]
fn random_histories_trade_clear_and_settle() {
    let mut state = State::from_genesis(&genesis(ClearingRule::UniformPrice)).unwrap();
    let (_, _, [succeeded, failed, cleared, settled]) =
        apply(&mut state, &mut RandomBlocks::new(7), 60);
    assert!(succeeded > 100 && failed > 10, "{succeeded} succeeded, {failed} failed");
    assert!(cleared > 5 && settled > 5, "{cleared} slots cleared, {settled} settled");
    assert!(state.cursor().next_contract > 0 && state.cursor().next_order > 10);
}

fn two_blocks() -> (State, State, Arc<UndoData>, Arc<UndoData>) {
    let mut state = State::from_genesis(&genesis(ClearingRule::UniformPrice)).unwrap();
    let (before, undo, _) = apply(&mut state, &mut RandomBlocks::new(3), 2);
    (state, before[1].clone(), undo[0].clone(), undo[1].clone())
}

#[test]
fn undo_data_of_another_block_is_refused_and_changes_nothing() {
    let (mut state, _, first, _) = two_blocks();
    let unchanged = state.clone();
    let error = state.undo_block(&first).unwrap_err();
    assert_eq!(
        error,
        UndoError::WrongState { expected: first.root_after, actual: unchanged.root() }
    );
    assert_same(&state, &unchanged, "after refusing");
}

#[test]
fn a_block_in_progress_must_be_finished_or_discarded_first() {
    let (mut state, before, _, last) = two_blocks();
    let _ = state.begin_block(primitives::TimestampMs(state.cursor().time.0 + 1));
    assert_eq!(state.undo_block(&last), Err(UndoError::BlockInProgress));
    state.discard_block();
    state.undo_block(&last).unwrap();
    assert_same(&state, &before, "after discarding, then undoing");
    assert!(!state.revert_block(), "the undone block cannot be reverted again");
}

#[test]
fn damaged_undo_data_is_refused_and_changes_nothing() {
    let (mut state, before, _, last) = two_blocks();
    let unchanged = state.clone();

    // An entry missing: the root does not come out right.
    let mut incomplete = (*last).clone();
    incomplete.entries.pop();
    assert!(matches!(state.undo_block(&incomplete), Err(UndoError::RootMismatch { .. })));
    assert_same(&state, &unchanged, "after refusing incomplete data");

    // A value that does not decode, after entries that did.
    let mut damaged = (*last).clone();
    damaged.entries.push((keys::supply(), Some(vec![1, 2, 3])));
    assert!(matches!(state.undo_block(&damaged), Err(UndoError::BadEntry(_))));
    assert_same(&state, &unchanged, "after refusing undecodable data");

    // An unknown key.
    let mut unknown = (*last).clone();
    unknown.entries.push((vec![0xee, 1], None));
    assert!(matches!(state.undo_block(&unknown), Err(UndoError::BadEntry(_))));
    assert_same(&state, &unchanged, "after refusing an unknown key");

    state.undo_block(&last).unwrap();
    assert_same(&state, &before, "the intact data still applies");
}

#[test]
fn ordered_entries_rebuild_the_same_state_and_disorder_is_refused() {
    let (_, state, _, _) = two_blocks();
    let entries = state.entries();
    assert!(entries.len() > 3, "a state with accounts and the market's entries");
    let rebuilt = State::from_ordered_entries(entries.clone()).unwrap();
    assert_same(&rebuilt, &state, "loaded in key order");

    let mut swapped = entries.clone();
    swapped.swap(1, 2);
    assert_eq!(
        State::from_ordered_entries(swapped).unwrap_err(),
        StateError::OutOfOrder(hex(&entries[1].0))
    );
    let mut repeated = entries.clone();
    repeated.insert(2, entries[1].clone());
    assert_eq!(
        State::from_ordered_entries(repeated).unwrap_err(),
        StateError::OutOfOrder(hex(&entries[1].0))
    );
    assert_eq!(
        State::from_ordered_entries(entries[1..].to_vec()).unwrap_err(),
        StateError::Missing("chain configuration")
    );
    // Any order is the other constructor's job.
    let mut reversed = entries;
    reversed.reverse();
    assert_same(&State::from_entries(reversed).unwrap(), &state, "loaded in any order");
}
