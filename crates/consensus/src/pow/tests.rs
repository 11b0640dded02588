//! The proof-of-work engine, fed events: the exact commands that come out.

use super::*;
use primitives::{Hash, SecretKey};

const START: u64 = 1_000_000;

fn params() -> PowParams {
    PowParams {
        target_block_ms: 1_000,
        initial_difficulty: 2,
        half_life_blocks: 4,
        max_reorg_depth: 3,
        ..PowParams::new(TimestampMs(START))
    }
}

fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed([seed; 32])
}

fn genesis() -> Header {
    Header {
        height: Height(0),
        parent: BlockHash(Hash::ZERO),
        timestamp: TimestampMs(START),
        proposer: Address(key(9).public_key()),
        tx_root: Hash::ZERO,
        state_root: Hash([1; 32]),
        proof: ConsensusProof::Genesis,
    }
}

/// A valid block on `parent`, `after` ms later, by `miner` (`salt` tells apart blocks that are
/// otherwise alike).
fn mine(parent: &Header, after: u64, miner: u8, salt: u8) -> Header {
    mine_at(parent, TimestampMs(parent.timestamp.0 + after), miner, salt)
}

/// A valid block on `parent` stamped `timestamp` (the engine does not look at timestamps).
fn mine_at(parent: &Header, timestamp: TimestampMs, miner: u8, salt: u8) -> Header {
    let target = next_target(&params(), parent);
    let mut header = Header {
        height: Height(parent.height.0 + 1),
        parent: parent.hash(),
        timestamp,
        proposer: Address(key(miner).public_key()),
        tx_root: Hash([salt; 32]),
        state_root: Hash([2; 32]),
        proof: ConsensusProof::Pow { target, nonce: 0 },
    };
    for nonce in 0.. {
        header.proof = ConsensusProof::Pow { target, nonce };
        if meets_target(&header) {
            return header;
        }
    }
    unreachable!()
}

/// A chain of `count` blocks on `parent`, `after` ms apart.
fn chain(parent: &Header, count: usize, after: u64, salt: u8) -> Vec<Header> {
    let mut headers: Vec<Header> = Vec::new();
    for _ in 0..count {
        let last = headers.last().cloned().unwrap_or_else(|| parent.clone());
        headers.push(mine(&last, after, 1, salt));
    }
    headers
}

fn engine(key_seed: Option<u8>, restored_chain: Vec<Header>) -> PowEngine {
    let head = restored_chain.last().cloned().unwrap_or_else(genesis);
    let key = key_seed.map(key);
    let restored = Restored { chain: restored_chain, ..Restored::default() };
    PowEngine::new(params(), key.as_ref(), &head, &restored, false, &TimeScale::REAL)
}

fn at(ms: u64) -> TimestampMs {
    TimestampMs(START + ms)
}

fn proof(header: &Header) -> ConsensusProof {
    header.proof.clone()
}

#[test]
fn the_first_block_has_the_initial_target_and_the_schedule_moves_it() {
    let p = PowParams { initial_difficulty: 1 << 20, ..params() };
    let on_schedule = |height: u64, late_ms: i64| Header {
        height: Height(height),
        timestamp: TimestampMs((START as i64 + height as i64 * 1_000 + late_ms) as u64),
        ..genesis()
    };
    let initial = p.initial_target();
    assert_eq!(next_target(&p, &genesis()), initial);
    assert_eq!(next_target(&p, &on_schedule(50, 0)), initial);
    // One half-life (4 blocks of 1 s) behind the schedule: twice as easy; ahead: half as hard.
    let behind = next_target(&p, &on_schedule(50, 4_000)).0 as f64 / initial.0 as f64;
    let ahead = next_target(&p, &on_schedule(50, -4_000)).0 as f64 / initial.0 as f64;
    assert!((behind - 2.0).abs() < 1e-4, "{behind}");
    assert!((ahead - 0.5).abs() < 1e-4, "{ahead}");
    // In between, the cubic follows 2^x closely.
    for late in (-12_000i64..12_000).step_by(337) {
        let ratio = next_target(&p, &on_schedule(50, late)).0 as f64 / initial.0 as f64;
        let exact = 2f64.powf(late as f64 / 4_000.0);
        assert!((ratio / exact - 1.0).abs() < 2e-4, "{late}: {ratio} vs {exact}");
    }
    // Far behind or far ahead, the bounds hold.
    assert_eq!(next_target(&p, &on_schedule(50, 10_000_000)), Target::EASIEST);
    assert_eq!(next_target(&p, &on_schedule(5_000_000, -4_000_000_000)), Target::HARDEST);
}

#[test]
fn the_difficulty_follows_the_hash_rate_to_the_target_block_time() {
    // Blocks solved in exactly their expected time at a hash rate that jumps ten times up and
    // ten times down: the block time returns to the target each time.
    let p = PowParams { initial_difficulty: 10_000, half_life_blocks: 16, ..params() };
    let mut parent = genesis();
    let mut times = Vec::new();
    for (rate, blocks) in [(10_000u128, 200), (100_000, 300), (10_000, 300)] {
        let mut phase = Vec::new();
        for _ in 0..blocks {
            let target = next_target(&p, &parent);
            let solve_ms = (target.work() * 1_000 / rate).max(1) as u64;
            parent = Header {
                height: Height(parent.height.0 + 1),
                timestamp: TimestampMs(parent.timestamp.0 + solve_ms),
                ..parent
            };
            phase.push(solve_ms);
        }
        times.push(phase);
    }
    for phase in &times {
        let tail = &phase[phase.len() - 50..];
        let mean = tail.iter().sum::<u64>() as f64 / tail.len() as f64;
        assert!((mean - 1_000.0).abs() < 50.0, "settled at {mean} ms a block");
    }
    // Right after the jump up, blocks come ten times too fast; after the jump down, ten times
    // too slow.
    assert!(times[1][0] < 150, "{}", times[1][0]);
    assert!(times[2][0] > 7_000, "{}", times[2][0]);
}

#[test]
fn a_miner_builds_mines_broadcasts_and_appends_then_mines_on_the_new_head() {
    let mut engine = engine(Some(1), vec![]);
    assert_eq!(engine.handle(at(0), Event::Tick), vec![], "mining is off");
    assert_eq!(
        engine.handle(at(5), Event::Mining { on: true }),
        vec![Command::BuildBlock { height: Height(1), timestamp: at(5) }]
    );
    let built = Header {
        height: Height(1),
        parent: genesis().hash(),
        timestamp: at(5),
        proposer: Address(key(1).public_key()),
        tx_root: Hash::ZERO,
        state_root: Hash([3; 32]),
        proof: ConsensusProof::Genesis,
    };
    let target = next_target(&params(), &genesis());
    let template = Header { proof: ConsensusProof::Pow { target, nonce: 0 }, ..built.clone() };
    assert_eq!(
        engine.handle(at(6), Event::BlockBuilt { header: built }),
        vec![Command::Mine { header: template.clone() }]
    );
    let mut found = template;
    while !meets_target(&found) {
        let ConsensusProof::Pow { nonce, .. } = found.proof else { unreachable!() };
        found.proof = ConsensusProof::Pow { target, nonce: nonce + 1 };
    }
    assert_eq!(
        engine.handle(at(9), Event::Mined { header: found.clone() }),
        vec![
            Command::Extend { hash: found.hash(), proof: proof(&found) },
            Command::Broadcast { message: announce(&found), block: Some(found.hash()) },
        ]
    );
    assert_eq!(
        engine.handle(at(12), Event::Committed { header: found.clone() }),
        vec![Command::BuildBlock { height: Height(2), timestamp: at(12) }]
    );
    assert_eq!(engine.head(), Some(&found));
    // A forged find (wrong target) is ignored.
    let mut forged = mine(&found, 10, 1, 0);
    forged.proof = ConsensusProof::Pow { target: Target::EASIEST, nonce: 0 };
    assert_eq!(engine.handle(at(13), Event::Mined { header: forged }), vec![]);
}

#[test]
fn without_a_key_or_while_catching_up_the_engine_does_not_mine() {
    let mut follower = engine(None, vec![]);
    assert_eq!(follower.handle(at(0), Event::Mining { on: true }), vec![]);
    assert!(!follower.is_mining());

    let mut miner = engine(Some(1), vec![]);
    assert_eq!(miner.handle(at(0), Event::Mining { on: true }).len(), 1);
    assert_eq!(miner.handle(at(1), Event::Syncing { behind: true }), vec![Command::StopMining]);
    assert_eq!(
        miner.handle(at(2), Event::Syncing { behind: false }),
        vec![Command::BuildBlock { height: Height(1), timestamp: at(2) }]
    );
    miner.handle(
        at(3),
        Event::BlockBuilt {
            header: Header {
                proposer: Address(key(1).public_key()),
                timestamp: at(2),
                height: Height(1),
                parent: genesis().hash(),
                ..genesis()
            },
        },
    );
    assert_eq!(miner.handle(at(4), Event::Mining { on: false }), vec![Command::StopMining]);
    assert_eq!(miner.handle(at(5), Event::Tick), vec![]);
}

#[test]
fn waiting_transactions_refresh_an_old_template() {
    let mut engine = engine(Some(1), vec![]);
    engine.handle(at(0), Event::Mining { on: true });
    let built = Header {
        height: Height(1),
        parent: genesis().hash(),
        timestamp: at(0),
        proposer: Address(key(1).public_key()),
        ..genesis()
    };
    assert!(matches!(
        engine.handle(at(10), Event::BlockBuilt { header: built }).as_slice(),
        [Command::Mine { .. }]
    ));
    // Transactions arrive: the template is looked at again a refresh after it was built.
    assert_eq!(
        engine.handle(at(200), Event::PendingChanged { ready: 3 }),
        vec![Command::WakeAt { at: at(10 + REFRESH_MS) }]
    );
    assert_eq!(engine.handle(at(500), Event::Tick), vec![]);
    assert_eq!(
        engine.handle(at(10 + REFRESH_MS), Event::Tick),
        vec![Command::BuildBlock { height: Height(1), timestamp: at(10 + REFRESH_MS) }]
    );
}

#[test]
fn no_wake_up_is_asked_for_while_a_block_is_being_appended() {
    // Found by the proof-of-work simulation: a template due for a refresh while a peer's block
    // was being written asked for a wake-up in the past on every tick, and the node's shell
    // ticked without end until the write completed.
    let mut engine = engine(Some(1), vec![]);
    engine.handle(at(0), Event::Mining { on: true });
    let built = Header {
        height: Height(1),
        parent: genesis().hash(),
        timestamp: at(0),
        proposer: Address(key(1).public_key()),
        ..genesis()
    };
    engine.handle(at(10), Event::BlockBuilt { header: built });
    assert_eq!(
        engine.handle(at(200), Event::PendingChanged { ready: 3 }),
        vec![Command::WakeAt { at: at(10 + REFRESH_MS) }]
    );
    let theirs = mine(&genesis(), 100, 2, 7);
    assert_eq!(
        engine.handle(at(300), Event::Stored { headers: vec![theirs.clone()] }),
        vec![Command::Extend { hash: theirs.hash(), proof: proof(&theirs) }]
    );
    // The refresh comes due while that block is being written: nothing to do yet.
    let due = at(10 + REFRESH_MS);
    assert_eq!(engine.handle(due, Event::Tick), vec![]);
    assert_eq!(engine.handle(TimestampMs(due.0 + 1), Event::Tick), vec![]);
    // Committed: a template on the new head.
    assert_eq!(
        engine.handle(TimestampMs(due.0 + 5), Event::Committed { header: theirs }),
        vec![Command::BuildBlock { height: Height(2), timestamp: TimestampMs(due.0 + 5) }]
    );
}

#[test]
fn the_branch_with_more_work_wins_and_equal_work_keeps_the_first_seen() {
    let mut engine = engine(None, vec![]);
    let a = chain(&genesis(), 2, 1_000, 1);
    let b = chain(&genesis(), 3, 1_000, 2);
    assert_eq!(
        engine.handle(at(0), Event::Stored { headers: vec![a[0].clone()] }),
        vec![Command::Extend { hash: a[0].hash(), proof: proof(&a[0]) }]
    );
    // Nothing more while the append is in flight.
    assert_eq!(engine.handle(at(1), Event::Stored { headers: vec![a[1].clone()] }), vec![]);
    assert_eq!(
        engine.handle(at(2), Event::Committed { header: a[0].clone() }),
        vec![Command::Extend { hash: a[1].hash(), proof: proof(&a[1]) }]
    );
    assert_eq!(engine.handle(at(3), Event::Committed { header: a[1].clone() }), vec![]);
    // Another branch with the same work (same targets, same count): the head stays.
    assert_eq!(engine.handle(at(4), Event::Stored { headers: b[..2].to_vec() }), vec![]);
    // One more block on it: more work, switch from genesis.
    assert_eq!(
        engine.handle(at(5), Event::Stored { headers: vec![b[2].clone()] }),
        vec![Command::SwitchBranch {
            to: Height(0),
            blocks: b.iter().map(|header| (header.hash(), proof(header))).collect(),
        }]
    );
    for header in &b {
        engine.handle(at(6), Event::Committed { header: header.clone() });
    }
    assert_eq!(engine.head(), Some(&b[2]));
}

#[test]
fn an_invalid_block_is_struck_off_with_its_descendants() {
    let mut engine = engine(None, vec![]);
    let a = chain(&genesis(), 1, 1_000, 1);
    engine.handle(at(0), Event::Stored { headers: a.clone() });
    engine.handle(at(1), Event::Committed { header: a[0].clone() });
    let b = chain(&genesis(), 3, 1_000, 2);
    let switch = engine.handle(at(2), Event::Stored { headers: b.clone() });
    assert!(matches!(switch.as_slice(), [Command::SwitchBranch { to: Height(0), .. }]));
    // The node finds b[1] invalid: b[1] and b[2] are struck, the head stays a[0].
    assert_eq!(engine.handle(at(3), Event::Invalid { hash: b[1].hash() }), vec![]);
    // b[0] alone has the same work as a[0]: no switch; a block on b[1] is refused.
    let on_bad = mine(&b[2], 1_000, 1, 2);
    assert_eq!(engine.handle(at(4), Event::Stored { headers: vec![on_bad] }), vec![]);
    // A valid block on a[0] extends as usual.
    let next = mine(&a[0], 1_000, 1, 1);
    assert_eq!(
        engine.handle(at(5), Event::Stored { headers: vec![next.clone()] }),
        vec![Command::Extend { hash: next.hash(), proof: proof(&next) }]
    );
}

#[test]
fn a_branch_forking_off_deeper_than_the_reorg_depth_is_never_taken() {
    // Depth 3: a head at 5 can be replaced from height 2 up, not from 1.
    let main = chain(&genesis(), 5, 1_000, 1);
    let mut engine = engine(None, std::iter::once(genesis()).chain(main.clone()).collect());
    assert_eq!(engine.head(), Some(&main[4]));
    let deep = chain(&main[0], 8, 1_000, 2);
    assert_eq!(engine.handle(at(0), Event::Stored { headers: deep }), vec![]);
    let within = chain(&main[1], 5, 1_000, 3);
    assert_eq!(
        engine.handle(at(1), Event::Stored { headers: within.clone() }),
        vec![Command::SwitchBranch {
            to: Height(2),
            blocks: within.iter().map(|header| (header.hash(), proof(header))).collect(),
        }]
    );
    for header in &within {
        engine.handle(at(2), Event::Committed { header: header.clone() });
    }
    // The new head is at 7: heights up to 4 are final, blocks below are forgotten.
    assert_eq!(engine.head(), Some(&within[4]));
    assert!(engine.known.values().all(|known| known.header.height >= Height(4)));
}

#[test]
fn committing_the_head_finalizes_what_is_deeper_than_the_reorg_depth() {
    let mut engine = engine(None, vec![]);
    let blocks = chain(&genesis(), 5, 1_000, 1);
    let mut finalized = Vec::new();
    for header in &blocks {
        engine.handle(at(0), Event::Stored { headers: vec![header.clone()] });
        for command in engine.handle(at(0), Event::Committed { header: header.clone() }) {
            if let Command::Finalize { height } = command {
                finalized.push(height.0);
            }
        }
    }
    assert_eq!(finalized, vec![1, 2]);
}

#[test]
fn the_median_of_recent_timestamps_is_the_middle_one_or_the_later_of_two() {
    let stamps = |values: &[u64]| values.iter().map(|&ms| TimestampMs(ms)).collect::<Vec<_>>();
    assert_eq!(median_time_past(&[]), None);
    assert_eq!(median_time_past(&stamps(&[7])), Some(TimestampMs(7)));
    assert_eq!(median_time_past(&stamps(&[5, 9])), Some(TimestampMs(9)));
    // Order does not matter, and one clock far ahead does not move the median.
    assert_eq!(median_time_past(&stamps(&[30, 10, 20])), Some(TimestampMs(20)));
    assert_eq!(median_time_past(&stamps(&[10, 9_000_000, 20])), Some(TimestampMs(20)));
    let eleven: Vec<u64> = (1..=11).map(|i| i * 100).rev().collect();
    assert_eq!(median_time_past(&stamps(&eleven)), Some(TimestampMs(600)));
}

#[test]
fn a_proof_of_work_timestamp_must_pass_the_median_of_eleven_blocks() {
    assert_eq!(PowRules.time_window(), MEDIAN_TIME_BLOCKS);
    assert_eq!(MEDIAN_TIME_BLOCKS, 11);
    // Eleven blocks a second apart, the newest (the parent) stamped far ahead, then one back.
    let mut recent: Vec<TimestampMs> = (0..11).map(|i| at(i * 1_000)).collect();
    recent[10] = at(60_000);
    recent[9] = at(8_500);
    let median = median_time_past(&recent).expect("eleven");
    assert_eq!(median, at(5_000));
    // One millisecond after the median passes, even though it is before the parent's; the
    // median itself does not.
    assert!(after_median(&recent, TimestampMs(median.0 + 1)));
    assert!(!after_median(&recent, median));
    assert!(!after_median(&recent, TimestampMs(median.0 - 1)));
    // With the parent alone (other engines' window), the rule is "later than the parent".
    assert!(after_median(&recent[10..], at(60_001)));
    assert!(!after_median(&recent[10..], at(60_000)));
    assert!(after_median(&[], at(0)));
    assert!(TimestampMs(median.0 + 1) < recent[10], "earlier than the parent is allowed");
}

#[test]
fn a_heavier_branch_with_a_lower_head_keeps_the_engine_s_blocks() {
    // Found by the proof-of-work simulation: a switch to a branch with more work but fewer
    // blocks lowered the head, so the floor fell below the oldest block the engine kept; the
    // engine then took that block for one whose branch forks off below the floor and forgot
    // it, and with it every block it knew. The node never extended its chain again.
    let mut engine = engine(None, vec![]);
    // Blocks on schedule: the first target (the easiest) throughout.
    let slow = chain(&genesis(), 5, 1_000, 1);
    for header in &slow {
        engine.handle(at(0), Event::Stored { headers: vec![header.clone()] });
        engine.handle(at(0), Event::Committed { header: header.clone() });
    }
    assert_eq!(engine.head(), slow.last());
    // From the second block (at the floor, 3 below the head), two blocks whose first is
    // stamped 8 s ahead of the schedule (a harder target for the second): more work than the
    // three on schedule, and a lower head.
    let first = mine_at(&slow[1], TimestampMs(START - 5_000), 2, 9);
    let second = mine(&first, 1, 2, 9);
    assert!(block_work(&first) + block_work(&second) > slow[2..].iter().map(block_work).sum());
    assert_eq!(
        engine.handle(at(0), Event::Stored { headers: vec![first.clone(), second.clone()] }),
        vec![Command::SwitchBranch {
            to: Height(2),
            blocks: vec![(first.hash(), proof(&first)), (second.hash(), proof(&second))],
        }]
    );
    engine.handle(at(0), Event::Committed { header: second.clone() });
    assert_eq!(engine.head(), Some(&second));
    // The engine still knows its chain: the next block is appended.
    let third = mine(&second, 1, 2, 9);
    assert_eq!(
        engine.handle(at(0), Event::Stored { headers: vec![third.clone()] }),
        vec![Command::Extend { hash: third.hash(), proof: proof(&third) }]
    );
    // And the old branch above the floor is still there to switch back to.
    assert!(engine.known.contains_key(&slow[4].hash()));
}
