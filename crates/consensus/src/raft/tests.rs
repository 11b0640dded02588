//! Engine tests: events in, exact commands out, no timers.
//!
//! Three validators of power 1 unless said otherwise (a majority is two). Election timeouts
//! are drawn between one and two base timeouts; a test learns the deadline from the
//! `WakeAt` the engine asks for.

use super::message::sign;
use super::*;
use crate::{ProofError, verify_proof};
use primitives::{EngineKind, MarketParams};

const HEAD_TIME: u64 = 1000;
const ELECTION_MS: u64 = 1000;
const HEARTBEAT_MS: u64 = 200;

fn key(index: usize) -> SecretKey {
    SecretKey::from_seed([u8::try_from(index).unwrap() + 1; 32])
}

fn public(index: usize) -> PublicKey {
    key(index).public_key()
}

fn validators(powers: &[u64]) -> Vec<Validator> {
    powers
        .iter()
        .enumerate()
        .map(|(index, power)| Validator {
            name: format!("v{index}"),
            key: public(index),
            power: *power,
        })
        .collect()
}

fn config_with(powers: &[u64]) -> ChainConfig {
    ChainConfig {
        chain_id: ChainId::new("raft").unwrap(),
        engine: EngineKind::Raft,
        validators: validators(powers),
        issuer: Address(PublicKey([2; 32])),
        operator: Address(PublicKey([2; 32])),
        params: ChainParams {
            block_interval_ms: 1000,
            empty_block_interval_ms: 5000,
            max_block_txs: 10,
        },
        market: MarketParams::default(),
    }
}

fn config() -> ChainConfig {
    config_with(&[1, 1, 1])
}

fn chain() -> ChainId {
    config().chain_id
}

fn timeouts() -> RaftTimeouts {
    RaftTimeouts { election_ms: ELECTION_MS, heartbeat_ms: HEARTBEAT_MS }
}

fn at(ms: u64) -> TimestampMs {
    TimestampMs(ms)
}

fn genesis() -> Header {
    header(0, HEAD_TIME, 0)
}

/// A header at `height` built by validator `proposer`.
fn header(height: u64, timestamp: u64, proposer: usize) -> Header {
    Header {
        height: Height(height),
        parent: BlockHash(Hash([u8::try_from(height % 256).unwrap(); 32])),
        timestamp: TimestampMs(timestamp),
        proposer: Address(public(proposer)),
        tx_root: Hash::ZERO,
        state_root: Hash([7; 32]),
        proof: ConsensusProof::Genesis,
    }
}

fn engine_of(config: &ChainConfig, index: Option<usize>) -> RaftEngine {
    RaftEngine::new(config, index.map(key), &genesis(), None, vec![], timeouts())
}

fn engine(index: usize) -> RaftEngine {
    engine_of(&config(), Some(index))
}

fn durable(term: u64, voted_for: Option<usize>) -> Command {
    Command::SaveState(primitives::encode(&Durable {
        term: Term(term),
        voted_for: voted_for.map(public),
    }))
}

fn entry(term: u64, height: u64, block: BlockHash) -> RaftEntry {
    RaftEntry { term: Term(term), height: Height(height), block }
}

fn append(leader: usize, entry: RaftEntry) -> Message {
    sign(&chain(), &key(leader), entry, Message::Append)
}

fn ack(follower: usize, entry: RaftEntry) -> Message {
    sign(&chain(), &key(follower), entry, Message::Ack)
}

fn campaign(candidate: usize, term: u64, pre: bool, position: LogPosition) -> Message {
    sign(&chain(), &key(candidate), Campaign { term: Term(term), pre, position }, Message::Campaign)
}

fn ballot(voter: usize, term: u64, pre: bool, candidate: usize, granted: bool) -> Message {
    ballot_at(1, voter, term, pre, candidate, granted)
}

/// A ballot answering a campaign for `height`.
fn ballot_at(
    height: u64,
    voter: usize,
    term: u64,
    pre: bool,
    candidate: usize,
    granted: bool,
) -> Message {
    let body = Ballot {
        term: Term(term),
        pre,
        candidate: public(candidate),
        height: Height(height),
        granted,
    };
    sign(&chain(), &key(voter), body, Message::Ballot)
}

fn heartbeat(
    leader: usize,
    term: u64,
    height: u64,
    sent_at: u64,
    commit: Option<Commit>,
) -> Message {
    let body = Heartbeat { term: Term(term), height: Height(height), sent_at: at(sent_at), commit };
    sign(&chain(), &key(leader), body, Message::Heartbeat)
}

fn reply(follower: usize, term: u64, leader: usize, sent_at: u64) -> Message {
    let body =
        Reply { term: Term(term), leader: public(leader), height: Height(1), sent_at: at(sent_at) };
    sign(&chain(), &key(follower), body, Message::Reply)
}

fn position(head: u64, pending: Option<u64>) -> LogPosition {
    LogPosition { head: Height(head), pending: pending.map(Term) }
}

fn message(message: &Message) -> Event {
    Event::Message { message: encode(message), block: None }
}

fn with_block(message: &Message, hash: BlockHash, valid: bool) -> Event {
    Event::Message { message: encode(message), block: Some(BlockCheck { hash, valid }) }
}

fn send(to: usize, message: &Message) -> Command {
    Command::Send { to: public(to), message: encode(message), block: message.block() }
}

/// The deadline the engine asked to be woken at, from its commands.
fn wake_of(commands: &[Command]) -> TimestampMs {
    commands
        .iter()
        .find_map(|command| match command {
            Command::WakeAt { at } => Some(*at),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no WakeAt in {commands:?}"))
}

/// `commands` without the wake-up requests (which every heard leader message renews).
fn without_wake(commands: Vec<Command>) -> Vec<Command> {
    commands.into_iter().filter(|command| !matches!(command, Command::WakeAt { .. })).collect()
}

/// Starts `engine` at `now` and lets its election timeout pass; returns the commands of the
/// timeout and when it came.
fn time_out(engine: &mut RaftEngine, now: u64) -> (Vec<Command>, TimestampMs) {
    // The deadline was asked for already if an earlier event set it.
    engine.handle(at(now), Event::Tick);
    let deadline = engine.election_at.expect("an election deadline");
    assert!((now + ELECTION_MS..now + 2 * ELECTION_MS).contains(&deadline.0), "{deadline:?}");
    (engine.handle(deadline, Event::Tick), deadline)
}

/// Validator `index` of three, elected leader of term 1 by itself and validator `voter`.
fn elected(index: usize, voter: usize) -> (RaftEngine, TimestampMs) {
    let mut engine = engine(index);
    let (_, now) = time_out(&mut engine, HEAD_TIME);
    engine.handle(now, message(&ballot(voter, 1, true, index, true)));
    engine.handle(now, message(&ballot(voter, 1, false, index, true)));
    assert!(engine.is_leader());
    (engine, now)
}

fn block_hash(byte: u8) -> BlockHash {
    BlockHash(Hash([byte; 32]))
}

#[test]
fn a_lone_validator_leads_and_commits_each_block_alone() {
    let config = config_with(&[1]);
    let mut engine = engine_of(&config, Some(0));
    let (commands, now) = time_out(&mut engine, HEAD_TIME);
    assert_eq!(
        commands,
        vec![
            durable(1, Some(0)),
            Command::BuildBlock { height: Height(1), timestamp: now },
            Command::WakeAt { at: at(now.0 + HEARTBEAT_MS) },
        ]
    );
    let built = header(1, now.0, 0);
    let hash = built.hash();
    let commands = engine.handle(now, Event::BlockBuilt { header: built.clone() });
    let appended = sign(&config.chain_id, &key(0), entry(1, 1, hash), Message::Append);
    let [Command::Broadcast { message, block }, Command::Commit { hash: committed, proof }] =
        commands.as_slice()
    else {
        panic!("expected an append and its commit, got {commands:?}")
    };
    assert_eq!((message, *block, *committed), (&encode(&appended), Some(hash), hash));
    let mut sealed = built;
    sealed.proof = proof.clone();
    assert_eq!(verify_proof(&config, &sealed), Ok(()));
    // The next block is due one empty-block interval after this one.
    let builds = |commands: Vec<Command>| {
        commands.iter().any(|command| matches!(command, Command::BuildBlock { .. }))
    };
    assert!(!builds(engine.handle(now, Event::Committed { header: sealed })));
    assert!(!builds(engine.handle(at(now.0 + 4999), Event::Tick)));
    assert_eq!(
        without_wake(engine.handle(at(now.0 + 5000), Event::Tick)),
        vec![Command::BuildBlock { height: Height(2), timestamp: at(now.0 + 5000) }]
    );
}

#[test]
fn a_follower_that_hears_nothing_sounds_out_the_others_before_it_enters_a_term() {
    let mut engine = engine(0);
    let (commands, now) = time_out(&mut engine, HEAD_TIME);
    let asked = campaign(0, 1, true, position(0, None));
    assert_eq!(&commands[..2], &[send(1, &asked), send(2, &asked)]);
    assert_eq!(commands.len(), 3, "and a new deadline: {commands:?}");
    assert!(wake_of(&commands) >= at(now.0 + ELECTION_MS));
    // A pre-vote changes no term and keeps nothing.
    assert_eq!(engine.term(), Term(0));
    assert_eq!(engine.status().role, Some(Role::Candidate));
}

#[test]
fn pre_votes_from_a_majority_start_the_election_once_the_term_is_durable() {
    let mut engine = engine(0);
    let (_, now) = time_out(&mut engine, HEAD_TIME);
    let commands = engine.handle(now, message(&ballot(1, 1, true, 0, true)));
    let asked = campaign(0, 1, false, position(0, None));
    assert_eq!(&commands[..3], &[durable(1, Some(0)), send(1, &asked), send(2, &asked)]);
    assert_eq!(engine.term(), Term(1));

    // A vote from the second validator makes a majority: heartbeats, and at once a block.
    let commands = engine.handle(now, message(&ballot(2, 1, false, 0, true)));
    let beat = heartbeat(0, 1, 1, now.0, None);
    assert_eq!(
        commands,
        vec![
            send(1, &beat),
            send(2, &beat),
            Command::BuildBlock { height: Height(1), timestamp: now },
            Command::WakeAt { at: at(now.0 + HEARTBEAT_MS) },
        ]
    );
    assert_eq!(
        engine.status(),
        EngineStatus { role: Some(Role::Leader), term: Some(1), leader: Some(public(0)) }
    );
}

#[test]
fn a_leader_commits_once_a_majority_has_the_block_and_the_certificate_checks_out() {
    let (mut engine, now) = elected(0, 1);
    let built = header(1, now.0, 0);
    let hash = built.hash();
    let appended = append(0, entry(1, 1, hash));
    assert_eq!(
        engine.handle(now, Event::BlockBuilt { header: built.clone() }),
        vec![Command::Broadcast { message: encode(&appended), block: Some(hash) }]
    );
    // The leader alone is one of three: nothing yet. One acknowledgement makes two.
    let commands = engine.handle(now, message(&ack(2, entry(1, 1, hash))));
    let [Command::Commit { hash: committed, proof }] = commands.as_slice() else {
        panic!("expected a commit, got {commands:?}")
    };
    assert_eq!(*committed, hash);
    let ConsensusProof::Raft(certificate) = proof else { panic!("{proof:?}") };
    assert_eq!(certificate.acks.len(), 1);
    assert_eq!((certificate.term, certificate.leader), (Term(1), public(0)));
    let mut sealed = built;
    sealed.proof = proof.clone();
    assert_eq!(verify_proof(&config(), &sealed), Ok(()));

    // Certificates that do not hold.
    let with = |change: &dyn Fn(&mut RaftCertificate)| {
        let mut header = sealed.clone();
        let mut certificate = certificate.clone();
        change(&mut certificate);
        header.proof = ConsensusProof::Raft(certificate);
        verify_proof(&config(), &header)
    };
    assert_eq!(
        with(&|cert| cert.acks.clear()),
        Err(ProofError::NoMajority { signed: 1, total: 3 })
    );
    assert_eq!(
        with(&|cert| cert.acks.push(cert.acks[0])),
        Err(ProofError::DuplicateSigner(Address(public(2))))
    );
    assert_eq!(
        with(&|cert| cert.acks[0].validator = public(0)),
        Err(ProofError::DuplicateSigner(Address(public(0)))),
        "the leader does not acknowledge its own append"
    );
    assert_eq!(
        with(&|cert| cert.acks[0].signature = Signature([1; 64])),
        Err(ProofError::BadAckSignature(Address(public(2))))
    );
    assert_eq!(with(&|cert| cert.term = Term(2)), Err(ProofError::BadLeaderSignature));
    let stranger = SecretKey::from_seed([99; 32]).public_key();
    assert_eq!(
        with(&|cert| cert.leader = stranger),
        Err(ProofError::NotAValidator(Address(stranger)))
    );
    let mut other_block = sealed.clone();
    other_block.state_root = Hash([8; 32]);
    assert_eq!(verify_proof(&config(), &other_block), Err(ProofError::BadLeaderSignature));
    let mut bft = config();
    bft.engine = EngineKind::Bft;
    assert_eq!(verify_proof(&bft, &sealed), Err(ProofError::WrongKind { engine: EngineKind::Bft }));
}

#[test]
fn a_follower_logs_the_append_before_it_acknowledges_and_refuses_an_invalid_block() {
    let hash = block_hash(5);
    let appended = append(0, entry(1, 1, hash));

    let mut follower = engine(1);
    follower.handle(at(HEAD_TIME), Event::Tick);
    let commands = follower.handle(at(1100), with_block(&appended, hash, true));
    assert_eq!(
        &commands[..3],
        &[
            durable(1, None),
            Command::Log { message: encode(&appended), block: Some(hash) },
            send(0, &ack(1, entry(1, 1, hash))),
        ]
    );
    assert_eq!(follower.position(), position(0, Some(1)));
    assert_eq!(follower.status().leader, Some(public(0)));
    // The same append again (the leader re-sends it): acknowledged again, not logged again.
    assert_eq!(
        without_wake(follower.handle(at(1200), with_block(&appended, hash, true))),
        vec![send(0, &ack(1, entry(1, 1, hash)))]
    );

    for check in [
        Some(BlockCheck { hash, valid: false }),
        Some(BlockCheck { hash: block_hash(6), valid: true }),
        None,
    ] {
        let mut follower = engine(1);
        follower.handle(at(HEAD_TIME), Event::Tick);
        let commands =
            follower.handle(at(1100), Event::Message { message: encode(&appended), block: check });
        assert!(
            commands
                .iter()
                .all(|command| matches!(command, Command::SaveState(_) | Command::WakeAt { .. })),
            "no log, no acknowledgement for {check:?}: {commands:?}"
        );
        assert_eq!(follower.pending(), None);
    }
}

#[test]
fn followers_commit_from_the_acknowledgements_they_see() {
    let hash = block_hash(5);
    let mut follower = engine(2);
    follower.handle(at(HEAD_TIME), Event::Tick);
    // An acknowledgement before the append is kept.
    assert_eq!(follower.handle(at(1100), message(&ack(1, entry(1, 1, hash)))), vec![]);
    let commands = without_wake(
        follower.handle(at(1101), with_block(&append(0, entry(1, 1, hash)), hash, true)),
    );
    let Some(Command::Commit { hash: committed, proof: ConsensusProof::Raft(certificate) }) =
        commands.last()
    else {
        panic!("expected the commit last, got {commands:?}")
    };
    assert_eq!(*committed, hash);
    assert_eq!(
        certificate.acks.iter().map(|ack| ack.validator).collect::<Vec<_>>(),
        vec![public(1)]
    );
}

#[test]
fn a_full_node_follows_and_commits_but_never_signs() {
    let hash = block_hash(5);
    let mut full = engine_of(&config(), None);
    full.handle(at(HEAD_TIME), Event::Tick);
    assert_eq!(
        without_wake(full.handle(at(1100), with_block(&append(0, entry(1, 1, hash)), hash, true))),
        vec![durable(1, None)]
    );
    let commands = without_wake(full.handle(at(1101), message(&ack(1, entry(1, 1, hash)))));
    assert!(matches!(commands.as_slice(), [Command::Commit { .. }]), "{commands:?}");
    // Its election timeouts pass without a campaign.
    for now in [5_000, 10_000, 20_000] {
        let commands = full.handle(at(now), Event::Tick);
        assert!(
            commands.iter().all(|command| matches!(command, Command::WakeAt { .. })),
            "{commands:?}"
        );
    }
}

#[test]
fn a_validator_that_hears_its_leader_refuses_other_candidates() {
    let mut follower = engine(1);
    follower.handle(at(HEAD_TIME), Event::Tick);
    follower.handle(at(2000), message(&heartbeat(0, 1, 1, 2000, None)));
    assert_eq!(follower.term(), Term(1));
    // A node that was cut off (it did not hear the leader) asks, within the lease: no answer.
    for pre in [true, false] {
        let commands = follower.handle(at(2500), message(&campaign(2, 2, pre, position(0, None))));
        assert!(
            commands.iter().all(|command| matches!(command, Command::WakeAt { .. })),
            "{commands:?}"
        );
    }
    assert_eq!(follower.term(), Term(1), "not moved to the candidate's term");
    // Once the leader has been silent for an election timeout, it would vote.
    let commands = follower.handle(at(3001), message(&campaign(2, 2, true, position(0, None))));
    assert_eq!(commands[0], send(2, &ballot(1, 2, true, 2, true)));
}

#[test]
fn votes_go_once_per_term_to_candidates_at_least_as_far_on_and_are_durable_first() {
    let hash = block_hash(5);
    let mut voter = engine(1);
    voter.handle(at(HEAD_TIME), Event::Tick);
    voter.handle(at(1100), with_block(&append(0, entry(1, 1, hash)), hash, true));
    assert_eq!(voter.position(), position(0, Some(1)));
    let late = 5_000; // the lease is over

    // Behind us (no entry after the head): refused, but its term is taken.
    let commands = voter.handle(at(late), message(&campaign(2, 2, false, position(0, None))));
    assert_eq!(&commands[..2], &[durable(2, None), send(2, &ballot(1, 2, false, 2, false))]);
    // As far on as us: granted, and the vote kept before the ballot leaves.
    let commands = voter.handle(at(late), message(&campaign(0, 2, false, position(0, Some(1)))));
    assert_eq!(&commands[..2], &[durable(2, Some(0)), send(0, &ballot(1, 2, false, 0, true))]);
    // Further on, but we have voted in this term.
    let commands = voter.handle(at(late), message(&campaign(2, 2, false, position(1, None))));
    assert_eq!(commands[0], send(2, &ballot_at(2, 1, 2, false, 2, false)));
    // The next term is another vote.
    let commands = voter.handle(at(late), message(&campaign(2, 3, false, position(1, None))));
    assert_eq!(
        &commands[..2],
        &[durable(3, Some(2)), send(2, &ballot_at(2, 1, 3, false, 2, true))]
    );
    // A pre-vote for a term not after ours is refused with our term.
    let commands = voter.handle(at(late), message(&campaign(0, 3, true, position(1, None))));
    assert_eq!(commands[0], send(0, &ballot_at(2, 1, 3, true, 0, false)));
}

#[test]
fn a_rejected_pre_vote_from_a_later_term_makes_the_candidate_follow_that_term() {
    let mut engine = engine(0);
    let (_, now) = time_out(&mut engine, HEAD_TIME);
    let commands = engine.handle(now, message(&ballot(1, 4, true, 0, false)));
    assert_eq!(commands[0], durable(4, None));
    assert_eq!(engine.status().role, Some(Role::Follower));
    assert_eq!(engine.term(), Term(4));
}

#[test]
fn a_leader_that_hears_from_no_majority_steps_down() {
    // Heard from a majority: still leading after the check.
    let (mut leader, now) = elected(0, 1);
    leader.handle(at(now.0 + 100), message(&reply(2, 1, 0, now.0)));
    leader.handle(at(now.0 + ELECTION_MS), Event::Tick);
    assert!(leader.is_leader());

    // Heard from nobody: a follower again, same term, after one election timeout.
    let (mut leader, now) = elected(0, 1);
    leader.handle(at(now.0 + ELECTION_MS - 1), Event::Tick);
    assert!(leader.is_leader());
    let commands = leader.handle(at(now.0 + ELECTION_MS), Event::Tick);
    assert!(!leader.is_leader());
    assert_eq!(
        leader.status(),
        EngineStatus { role: Some(Role::Follower), term: Some(1), leader: None }
    );
    assert!(
        commands.iter().all(|command| matches!(command, Command::WakeAt { .. })),
        "{commands:?}"
    );
}

#[test]
fn a_leader_follows_a_newer_term_and_tells_a_stale_leader_of_it() {
    let (mut leader, now) = elected(0, 1);
    let later = now.0 + 50;
    let commands = leader.handle(at(later), message(&heartbeat(1, 2, 1, later, None)));
    assert_eq!(&commands[..2], &[durable(2, None), send(1, &reply(0, 2, 1, later))]);
    assert_eq!(
        leader.status(),
        EngineStatus { role: Some(Role::Follower), term: Some(2), leader: Some(public(1)) }
    );

    // It hears the old leader's append of term 1 (delayed): it tells it of term 2 and takes
    // nothing.
    let hash = block_hash(9);
    let stale = append(2, entry(1, 1, hash));
    let commands = leader.handle(at(later + 1), with_block(&stale, hash, true));
    let told = sign(
        &chain(),
        &key(0),
        Reply { term: Term(2), leader: public(2), height: Height(1), sent_at: at(0) },
        Message::Reply,
    );
    assert_eq!(commands, vec![send(2, &told)]);
    assert_eq!(leader.pending(), None);

    // A leader told of a later term by a reply follows it.
    let (mut leader, now) = elected(0, 1);
    leader.handle(now, message(&reply(2, 3, 0, now.0)));
    assert!(!leader.is_leader());
    assert_eq!(leader.term(), Term(3));
}

#[test]
fn a_new_leader_appends_its_inherited_entry_again_in_its_own_term() {
    let hash = block_hash(5);
    let mut engine = engine(0);
    engine.handle(at(HEAD_TIME), Event::Tick);
    engine.handle(at(1100), with_block(&append(1, entry(1, 1, hash)), hash, true));
    // Validator 1 dies; validator 0 times out and wins term 2 with validator 2's votes.
    let (_, now) = time_out(&mut engine, 1100);
    engine.handle(now, message(&ballot(2, 2, true, 0, true)));
    let commands = engine.handle(now, message(&ballot(2, 2, false, 0, true)));
    let again = append(0, entry(2, 1, hash));
    assert!(
        commands.contains(&Command::Broadcast { message: encode(&again), block: Some(hash) }),
        "{commands:?}"
    );
    assert!(
        !commands.iter().any(|command| matches!(command, Command::BuildBlock { .. })),
        "no new block first"
    );
    assert_eq!(engine.position(), position(0, Some(2)));
    // Committed in term 2 once acknowledged in term 2 (an acknowledgement of term 1 is not one).
    assert_eq!(engine.handle(now, message(&ack(2, entry(1, 1, hash)))), vec![]);
    let commands = engine.handle(now, message(&ack(2, entry(2, 1, hash))));
    let [Command::Commit { hash: committed, proof: ConsensusProof::Raft(certificate) }] =
        commands.as_slice()
    else {
        panic!("{commands:?}")
    };
    assert_eq!((*committed, certificate.term), (hash, Term(2)));
}

#[test]
fn a_follower_commits_from_the_certificate_in_a_heartbeat_and_not_from_a_forged_one() {
    let hash = block_hash(5);
    let block = header(1, 1100, 0);
    let hash_1 = block.hash();
    let genuine = RaftCertificate {
        term: Term(1),
        leader: public(0),
        leader_signature: key(0).sign(
            entry(1, 1, hash_1).signing_hash(&chain(), primitives::EntryRole::Append).as_bytes(),
        ),
        acks: vec![CommitSignature {
            validator: public(1),
            signature: key(1).sign(
                entry(1, 1, hash_1).signing_hash(&chain(), primitives::EntryRole::Ack).as_bytes(),
            ),
        }],
    };
    let forged = RaftCertificate {
        acks: vec![CommitSignature { validator: public(1), signature: Signature([3; 64]) }],
        ..genuine.clone()
    };
    let short = RaftCertificate { acks: vec![], ..genuine.clone() };
    for (certificate, commits) in [(forged, false), (short, false), (genuine, true)] {
        let mut follower = engine(2);
        follower.handle(at(HEAD_TIME), Event::Tick);
        let commit = Commit { height: Height(1), block: hash_1, certificate: certificate.clone() };
        let commands = follower.handle(at(1200), message(&heartbeat(0, 1, 2, 1200, Some(commit))));
        let committed = commands
            .contains(&Command::Commit { hash: hash_1, proof: ConsensusProof::Raft(certificate) });
        assert_eq!(committed, commits, "{commands:?}");
    }
    let _ = hash;
}

#[test]
fn a_restarted_node_keeps_its_term_its_vote_and_its_logged_entry() {
    let hash = block_hash(5);
    let state = primitives::encode(&Durable { term: Term(3), voted_for: Some(public(2)) });
    let restored = vec![append(0, entry(2, 1, hash)), append(0, entry(1, 1, block_hash(4)))];
    let mut engine =
        RaftEngine::new(&config(), Some(key(1)), &genesis(), Some(&state), restored, timeouts());
    assert_eq!((engine.term(), engine.position()), (Term(3), position(0, Some(2))));
    let late = 5_000;
    let commands = engine.handle(at(late), message(&campaign(0, 3, false, position(0, Some(2)))));
    assert_eq!(
        commands[0],
        send(0, &ballot(1, 3, false, 0, false)),
        "it voted for validator 2 in term 3"
    );
    let commands = engine.handle(at(late), message(&campaign(2, 3, false, position(0, Some(2)))));
    assert_eq!(commands[0], send(2, &ballot(1, 3, false, 2, true)));

    // An entry logged in a later term than the one kept (the state was written first, so this
    // only happens with a state from before): the term is at least the entry's.
    let restored = vec![append(0, entry(4, 1, hash))];
    let mut engine =
        RaftEngine::new(&config(), Some(key(1)), &genesis(), Some(&state), restored, timeouts());
    assert_eq!(engine.term(), Term(4));
    assert_eq!(engine.handle(at(late), Event::Tick)[0], durable(4, None));
}

#[test]
fn a_leader_steps_down_when_those_that_elected_it_are_no_majority_of_the_next_set() {
    let (mut leader, now) = elected(0, 1);
    // From height 2 validators 0, 3 and 4 decide: validator 1's vote is worth nothing there.
    let next = validators(&[1, 1, 1, 1, 1]);
    let set = vec![next[0].clone(), next[3].clone(), next[4].clone()];
    leader.handle(now, Event::Validators { from: Height(2), validators: set });
    let built = header(1, now.0, 0);
    leader.handle(now, Event::BlockBuilt { header: built.clone() });
    let commands = leader.handle(now, message(&ack(1, entry(1, 1, built.hash()))));
    let [Command::Commit { proof, .. }] = commands.as_slice() else { panic!("{commands:?}") };
    let mut sealed = built;
    sealed.proof = proof.clone();
    leader.handle(at(now.0 + 10), Event::Committed { header: sealed });
    assert!(!leader.is_leader(), "height 2's validators elect their own leader");

    // A leader that is not in the next set at all steps down too.
    let (mut leader, now) = elected(0, 1);
    let set = vec![next[1].clone(), next[2].clone()];
    leader.handle(now, Event::Validators { from: Height(2), validators: set });
    let built = header(1, now.0, 0);
    leader.handle(now, Event::BlockBuilt { header: built.clone() });
    let commands = leader.handle(now, message(&ack(1, entry(1, 1, built.hash()))));
    let [Command::Commit { proof, .. }] = commands.as_slice() else { panic!("{commands:?}") };
    let mut sealed = built;
    sealed.proof = proof.clone();
    leader.handle(at(now.0 + 10), Event::Committed { header: sealed });
    assert!(!leader.is_leader());
}

#[test]
fn a_node_that_catches_up_signs_nothing() {
    let hash = block_hash(5);
    let mut engine = engine(1);
    engine.handle(at(HEAD_TIME), Event::Syncing { behind: true });
    for now in [3_000, 6_000, 9_000] {
        let commands = engine.handle(at(now), Event::Tick);
        assert!(
            commands.iter().all(|command| matches!(command, Command::WakeAt { .. })),
            "{commands:?}"
        );
    }
    let commands = engine.handle(at(9_001), with_block(&append(0, entry(1, 1, hash)), hash, true));
    assert!(
        !commands
            .iter()
            .any(|command| matches!(command, Command::Broadcast { .. } | Command::Send { .. })),
        "{commands:?}"
    );
    let commands = engine.handle(at(9_002), message(&campaign(2, 2, false, position(5, None))));
    assert!(
        !commands.iter().any(|command| matches!(command, Command::Send { .. })),
        "{commands:?}"
    );
    // A leader that finds itself behind steps down.
    let (mut leader, now) = elected(0, 1);
    leader.handle(now, Event::Syncing { behind: true });
    assert!(!leader.is_leader());
}

#[test]
fn a_leader_sends_its_append_again_to_followers_that_have_not_acknowledged_it() {
    let (mut leader, now) = elected(0, 1);
    let built = header(1, now.0, 0);
    let hash = built.hash();
    leader.handle(now, Event::BlockBuilt { header: built });
    // Validator 1 keeps answering heartbeats, validator 2 is silent; neither acknowledges.
    let mut resent = Vec::new();
    let mut time = now.0;
    while time < now.0 + 2 * ELECTION_MS {
        time += HEARTBEAT_MS;
        // The reply wakes the leader as a tick would: what is due goes out with either.
        let mut commands = leader.handle(at(time), message(&reply(1, 1, 0, time)));
        commands.extend(leader.handle(at(time), Event::Tick));
        if commands.iter().any(|command| matches!(command, Command::Send { block: Some(_), .. })) {
            resent.push(time);
            let again = append(0, entry(1, 1, hash));
            assert!(
                commands.contains(&send(1, &again)) && commands.contains(&send(2, &again)),
                "{commands:?}"
            );
        }
    }
    assert_eq!(
        resent,
        vec![now.0 + ELECTION_MS, now.0 + 2 * ELECTION_MS],
        "once per election timeout"
    );
}

#[test]
fn election_timeouts_differ_between_nodes_and_terms() {
    let deadlines: BTreeSet<u64> = (0..3)
        .map(|index| {
            let mut engine = engine(index);
            wake_of(&engine.handle(at(HEAD_TIME), Event::Tick)).0
        })
        .collect();
    assert_eq!(deadlines.len(), 3, "{deadlines:?}");
    for deadline in deadlines {
        assert!((HEAD_TIME + ELECTION_MS..HEAD_TIME + 2 * ELECTION_MS).contains(&deadline));
    }
}

#[test]
fn the_relay_check_wants_a_validator_of_the_height_and_its_signature_and_passes_on_what_others_need()
 {
    let rules = crate::rules(EngineKind::Raft);
    struct View(Vec<Validator>);
    impl crate::ValidatorView for View {
        fn at(&self, _: Height) -> &[Validator] {
            &self.0
        }
        fn knows(&self, height: Height) -> bool {
            height.0 <= 2
        }
    }
    let view = View(config().validators);
    let good = append(0, entry(1, 1, block_hash(5)));
    // The leader sent its append to every peer, and a reply is for the leader alone: neither
    // is passed on. Acknowledgements, heartbeats and campaigns are.
    assert_eq!(rules.check_message(&chain(), &view, &encode(&good)), crate::Verdict::Deliver);
    let check = |message: &Message| rules.check_message(&chain(), &view, &encode(message));
    assert_eq!(check(&reply(1, 1, 0, 5)), crate::Verdict::Deliver);
    assert_eq!(check(&ack(1, entry(1, 1, block_hash(5)))), crate::Verdict::Relay);
    assert_eq!(check(&heartbeat(0, 1, 1, 5, None)), crate::Verdict::Relay);
    assert_eq!(check(&campaign(1, 2, false, position(0, None))), crate::Verdict::Relay);
    assert_eq!(check(&ballot(2, 2, false, 1, true)), crate::Verdict::Relay);
    let stranger = sign(
        &chain(),
        &SecretKey::from_seed([99; 32]),
        entry(1, 1, block_hash(5)),
        Message::Append,
    );
    assert_eq!(rules.check_message(&chain(), &view, &encode(&stranger)), crate::Verdict::Invalid);
    let far = sign(
        &chain(),
        &SecretKey::from_seed([99; 32]),
        entry(1, 9, block_hash(5)),
        Message::Append,
    );
    assert_eq!(rules.check_message(&chain(), &view, &encode(&far)), crate::Verdict::Drop);
    let Message::Append(mut forged) = good else { unreachable!() };
    forged.signature = Signature([1; 64]);
    assert_eq!(
        rules.check_message(&chain(), &view, &encode(&Message::Append(forged))),
        crate::Verdict::Invalid
    );
    assert_eq!(
        rules.check_message(&chain(), &view, &EngineMessage(vec![1, 2, 3])),
        crate::Verdict::Invalid
    );
}

/// Block `height` as committed by the leader of `term` (the engine reads only the term).
fn certified(height: u64, term: u64) -> Header {
    let certificate = primitives::RaftCertificate {
        term: Term(term),
        leader: public(1),
        leader_signature: Signature([0; 64]),
        acks: vec![],
    };
    Header { proof: ConsensusProof::Raft(certificate), ..header(height, HEAD_TIME + height, 1) }
}

#[test]
fn a_node_never_campaigns_in_a_term_a_committed_block_was_led_in() {
    // A node that was down through the elections syncs a block its peers committed in term 3:
    // its own term becomes 3, durably, and its next campaign is for term 4.
    let mut engine = engine(0);
    let mut commands = engine.handle(at(HEAD_TIME), Event::Committed { header: certified(1, 3) });
    assert_eq!(engine.term(), Term(3));
    commands.extend(engine.handle(at(HEAD_TIME), Event::Tick));
    let deadline = engine.election_at.expect("an election deadline");
    commands.extend(engine.handle(deadline, Event::Tick));
    // Durable before the first message goes out.
    let first_send = commands.iter().position(|c| matches!(c, Command::Send { .. }));
    let saved = commands.iter().position(|c| *c == durable(3, None));
    assert!(saved.is_some() && first_send.is_some() && saved < first_send, "{commands:?}");
    let campaigns: Vec<Term> = commands
        .iter()
        .filter_map(|command| match command {
            Command::Send { message, .. } => match decode(message) {
                Some(Message::Campaign(signed)) => Some(signed.body.term),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert!(
        !campaigns.is_empty() && campaigns.iter().all(|term| *term == Term(4)),
        "{campaigns:?}"
    );
    // A node that restarts on such a head without its saved state starts in that term too.
    let restarted =
        RaftEngine::new(&config(), Some(key(0)), &certified(1, 5), None, vec![], timeouts());
    assert_eq!(restarted.term(), Term(5));
}
