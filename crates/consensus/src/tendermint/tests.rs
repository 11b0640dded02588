//! Engine tests: events in, exact commands out, no timers.
//!
//! Four validators of power 1 unless said otherwise. With equal powers the proposer of height
//! `h`, round `r` is validator `(h + r) mod 4`: at height 1, round 0 it is validator 1, round 1
//! validator 2, round 2 validator 3; at height 2, round 0 validator 2.

use super::*;

fn vote_event(vote: SignedVote) -> Event {
    Event::Message { message: encode(&Message::Vote(vote)), block: None }
}

fn checked_proposal_event(proposal: SignedProposal, valid: bool) -> Event {
    Event::Message {
        message: encode(&Message::Proposal(proposal)),
        block: Some(BlockCheck { hash: proposal.proposal.block, valid }),
    }
}

fn broadcast_of(message: Message) -> Command {
    broadcast(&message)
}
use crate::{ProofError, certificate_signatures, verify_proof};
use primitives::{EngineKind, Hash, MarketParams};

const HEAD_TIME: u64 = 1000;

fn key(index: usize) -> SecretKey {
    SecretKey::from_seed([u8::try_from(index).unwrap() + 1; 32])
}

fn public(index: usize) -> PublicKey {
    key(index).public_key()
}

fn stranger() -> SecretKey {
    SecretKey::from_seed([99; 32])
}

fn config_with(powers: &[u64]) -> ChainConfig {
    ChainConfig {
        chain_id: ChainId::new("bft").unwrap(),
        engine: EngineKind::Bft,
        validators: powers
            .iter()
            .enumerate()
            .map(|(index, power)| Validator {
                name: format!("v{index}"),
                key: public(index),
                power: *power,
            })
            .collect(),
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
    config_with(&[1, 1, 1, 1])
}

fn chain_id() -> ChainId {
    config().chain_id
}

fn at(ms: u64) -> TimestampMs {
    TimestampMs(ms)
}

fn head() -> Header {
    block(0, HEAD_TIME, 0)
}

/// A header at `height` proposed by validator `proposer`.
fn block(height: u64, timestamp: u64, proposer: usize) -> Header {
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

fn value(byte: u8) -> BlockHash {
    BlockHash(Hash([byte; 32]))
}

fn engine(index: Option<usize>, restored: Vec<Message>) -> TendermintEngine {
    TendermintEngine::new(&config(), index.map(key), &head(), restored, Timeouts::default())
}

fn signed_vote(
    signer: &SecretKey,
    height: u64,
    round: u32,
    kind: VoteKind,
    block: Option<BlockHash>,
) -> SignedVote {
    let vote = Vote { height: Height(height), round, kind, block };
    let signature = signer.sign(vote.signing_hash(&chain_id()).as_bytes());
    SignedVote { vote, validator: signer.public_key(), signature }
}

fn prevote(index: usize, height: u64, round: u32, block: Option<BlockHash>) -> SignedVote {
    signed_vote(&key(index), height, round, VoteKind::Prevote, block)
}

fn precommit(index: usize, height: u64, round: u32, block: Option<BlockHash>) -> SignedVote {
    signed_vote(&key(index), height, round, VoteKind::Precommit, block)
}

fn signed_proposal(
    index: usize,
    height: u64,
    round: u32,
    block: BlockHash,
    pol_round: Option<u32>,
) -> SignedProposal {
    let proposal = Proposal { height: Height(height), round, block, pol_round };
    let signature = key(index).sign(proposal.signing_hash(&chain_id()).as_bytes());
    SignedProposal { proposal, proposer: public(index), signature }
}

fn proposal_event(signed: SignedProposal) -> Event {
    checked_proposal_event(signed, true)
}

fn send(vote: SignedVote) -> Command {
    broadcast_of(Message::Vote(vote))
}

fn send_proposal(proposal: SignedProposal) -> Command {
    broadcast_of(Message::Proposal(proposal))
}

/// The certificate of `signers`' precommits for `header` in `round`.
fn certificate(header: &Header, round: u32, signers: &[SecretKey]) -> CommitCertificate {
    let vote = Vote {
        height: header.height,
        round,
        kind: VoteKind::Precommit,
        block: Some(header.hash()),
    };
    let signatures = signers
        .iter()
        .map(|signer| CommitSignature {
            validator: signer.public_key(),
            signature: signer.sign(vote.signing_hash(&chain_id()).as_bytes()),
        })
        .collect();
    CommitCertificate { round, signatures }
}

fn sealed(header: &Header, proof: &ConsensusProof) -> Header {
    Header { proof: proof.clone(), ..header.clone() }
}

fn expect_commit(commands: &[Command], header: &Header, round: u32, signers: &[usize]) -> Header {
    let [Command::Commit { hash, proof }] = commands else {
        panic!("expected a commit: {commands:?}")
    };
    assert_eq!(*hash, header.hash());
    let ConsensusProof::Bft(certificate) = proof else { panic!("not a BFT proof: {proof:?}") };
    assert_eq!(certificate.round, round);
    let mut expected: Vec<PublicKey> = signers.iter().map(|index| public(*index)).collect();
    expected.sort();
    let actual: Vec<PublicKey> =
        certificate.signatures.iter().map(|signature| signature.validator).collect();
    assert_eq!(actual, expected, "one signature per signer, sorted by key");
    let header = sealed(header, proof);
    assert_eq!(verify_proof(&config(), &header), Ok(()));
    header
}

#[test]
fn four_validators_decide_a_height_in_round_zero() {
    let mut engine = engine(Some(1), vec![]);
    // Idle: the proposer waits an empty-block interval.
    assert_eq!(engine.handle(at(1000), Event::Tick), vec![Command::WakeAt { at: at(6000) }]);
    // Transactions wait: one block interval after the head.
    assert_eq!(
        engine.handle(at(1500), Event::PendingChanged { ready: 2 }),
        vec![Command::WakeAt { at: at(2000) }]
    );
    assert_eq!(engine.handle(at(1999), Event::Tick), vec![]);
    assert_eq!(
        engine.handle(at(2000), Event::Tick),
        vec![
            Command::BuildBlock { height: Height(1), timestamp: at(2000) },
            // The propose timeout, counted from the latest moment the proposer is due.
            Command::WakeAt { at: at(7000) },
        ]
    );
    let built = block(1, 2000, 1);
    let v = built.hash();
    assert_eq!(
        engine.handle(at(2010), Event::BlockBuilt { header: built.clone() }),
        vec![send_proposal(signed_proposal(1, 1, 0, v, None)), send(prevote(1, 1, 0, Some(v)))]
    );
    assert_eq!(engine.handle(at(2020), vote_event(prevote(0, 1, 0, Some(v)))), vec![]);
    assert_eq!(
        engine.handle(at(2030), vote_event(prevote(2, 1, 0, Some(v)))),
        vec![send(precommit(1, 1, 0, Some(v)))]
    );
    assert_eq!(engine.handle(at(2040), vote_event(precommit(0, 1, 0, Some(v)))), vec![]);
    let commands = engine.handle(at(2050), vote_event(precommit(3, 1, 0, Some(v))));
    let committed = expect_commit(&commands, &built, 0, &[0, 1, 3]);
    // Once per height: more precommits change nothing.
    assert_eq!(engine.handle(at(2060), vote_event(precommit(2, 1, 0, Some(v)))), vec![]);
    assert_eq!(engine.handle(at(9000), Event::Tick), vec![]);

    // The next height starts only once the block is committed; validator 2 proposes it.
    assert_eq!(
        engine.handle(at(2100), Event::Committed { header: committed }),
        vec![Command::WakeAt { at: at(8000) }]
    );
    assert_eq!((engine.height(), engine.round()), (Height(2), 0));
}

#[test]
fn tampered_certificates_are_refused() {
    let header = block(1, 2000, 1);
    let with = |certificate: CommitCertificate| sealed(&header, &ConsensusProof::Bft(certificate));
    let good = with(certificate(&header, 0, &[key(0), key(1), key(2)]));
    assert_eq!(verify_proof(&config(), &good), Ok(()));
    assert_eq!(certificate_signatures(&config(), &good).map(|triples| triples.len()), Ok(3));

    let too_few = with(certificate(&header, 0, &[key(0), key(1)]));
    assert_eq!(
        verify_proof(&config(), &too_few),
        Err(ProofError::NotEnoughPower { signed: 2, total: 4 })
    );
    let twice = with(certificate(&header, 0, &[key(0), key(1), key(1), key(2)]));
    assert_eq!(
        verify_proof(&config(), &twice),
        Err(ProofError::DuplicateSigner(Address(public(1))))
    );
    let outsider = with(certificate(&header, 0, &[key(0), key(1), stranger()]));
    assert_eq!(
        verify_proof(&config(), &outsider),
        Err(ProofError::NotAValidator(Address(stranger().public_key())))
    );
    // Structurally fine, but validator 2's signature is validator 1's.
    let mut forged = certificate(&header, 0, &[key(0), key(1), key(2)]);
    let ones = forged.signatures[1].signature;
    forged.signatures[2].signature = ones;
    let forged = with(forged);
    assert!(certificate_signatures(&config(), &forged).is_ok());
    assert_eq!(
        verify_proof(&config(), &forged),
        Err(ProofError::BadPrecommitSignature(Address(public(2))))
    );
    // Signatures for another round, or for another block, do not carry over.
    let mut other_round = certificate(&header, 0, &[key(0), key(1), key(2)]);
    other_round.round = 1;
    assert!(matches!(
        verify_proof(&config(), &with(other_round)),
        Err(ProofError::BadPrecommitSignature(_))
    ));
    let mut other_block = good.clone();
    other_block.state_root = Hash([8; 32]);
    assert!(matches!(
        verify_proof(&config(), &other_block),
        Err(ProofError::BadPrecommitSignature(_))
    ));
    // A heavier validator's signature counts for its power.
    let weighted = config_with(&[5, 1, 1, 1]);
    assert_eq!(verify_proof(&weighted, &with(certificate(&header, 0, &[key(0), key(1)]))), Ok(()));
    assert_eq!(
        verify_proof(&weighted, &with(certificate(&header, 0, &[key(1), key(2), key(3)]))),
        Err(ProofError::NotEnoughPower { signed: 3, total: 8 })
    );
    let solo = sealed(&header, &ConsensusProof::Solo { signature: ones });
    assert_eq!(
        verify_proof(&config(), &solo),
        Err(ProofError::WrongKind { engine: EngineKind::Bft })
    );
}

#[test]
fn a_silent_proposer_costs_one_round() {
    let mut engine = engine(Some(2), vec![]);
    assert_eq!(engine.handle(at(1000), Event::Tick), vec![Command::WakeAt { at: at(7000) }]);
    assert_eq!(engine.handle(at(6999), Event::Tick), vec![]);
    assert_eq!(engine.handle(at(7000), Event::Tick), vec![send(prevote(2, 1, 0, None))]);
    assert_eq!(engine.handle(at(7010), vote_event(prevote(0, 1, 0, None))), vec![]);
    assert_eq!(
        engine.handle(at(7020), vote_event(prevote(3, 1, 0, None))),
        vec![send(precommit(2, 1, 0, None))]
    );
    assert_eq!(engine.handle(at(7030), vote_event(precommit(0, 1, 0, None))), vec![]);
    assert_eq!(
        engine.handle(at(7100), vote_event(precommit(3, 1, 0, None))),
        vec![Command::WakeAt { at: at(7600) }]
    );
    // Round 1: validator 2 proposes at once.
    assert_eq!(
        engine.handle(at(7600), Event::Tick),
        vec![
            Command::BuildBlock { height: Height(1), timestamp: at(7600) },
            Command::WakeAt { at: at(9100) },
        ]
    );
    let built = block(1, 7600, 2);
    let v = built.hash();
    assert_eq!(
        engine.handle(at(7610), Event::BlockBuilt { header: built.clone() }),
        vec![send_proposal(signed_proposal(2, 1, 1, v, None)), send(prevote(2, 1, 1, Some(v)))]
    );
    assert_eq!(engine.handle(at(7620), vote_event(prevote(0, 1, 1, Some(v)))), vec![]);
    assert_eq!(
        engine.handle(at(7630), vote_event(prevote(3, 1, 1, Some(v)))),
        vec![send(precommit(2, 1, 1, Some(v)))]
    );
    assert_eq!(engine.handle(at(7640), vote_event(precommit(0, 1, 1, Some(v)))), vec![]);
    let commands = engine.handle(at(7650), vote_event(precommit(3, 1, 1, Some(v))));
    expect_commit(&commands, &built, 1, &[0, 2, 3]);
}

/// Validator 0 locks on `v` in round 0 and moves to round 1 (returns the engine at 1700).
fn locked_on(v: BlockHash) -> TendermintEngine {
    let mut engine = engine(Some(0), vec![]);
    assert_eq!(engine.handle(at(1000), Event::Tick), vec![Command::WakeAt { at: at(7000) }]);
    assert_eq!(
        engine.handle(at(1100), proposal_event(signed_proposal(1, 1, 0, v, None))),
        vec![send(prevote(0, 1, 0, Some(v)))]
    );
    assert_eq!(engine.handle(at(1110), vote_event(prevote(1, 1, 0, Some(v)))), vec![]);
    assert_eq!(
        engine.handle(at(1120), vote_event(prevote(2, 1, 0, Some(v)))),
        vec![send(precommit(0, 1, 0, Some(v)))]
    );
    assert_eq!(engine.handle(at(1130), vote_event(precommit(1, 1, 0, None))), vec![]);
    assert_eq!(
        engine.handle(at(1200), vote_event(precommit(2, 1, 0, None))),
        vec![Command::WakeAt { at: at(1700) }]
    );
    // Round 1 (validator 2 proposes): propose timeout 1000 + 500.
    assert_eq!(engine.handle(at(1700), Event::Tick), vec![Command::WakeAt { at: at(3200) }]);
    engine
}

#[test]
fn a_locked_validator_prevotes_another_value_only_after_a_newer_polka() {
    let (v, w) = (value(10), value(20));
    let mut engine = locked_on(v);
    // A new proposal without a polka: nil.
    assert_eq!(
        engine.handle(at(1800), proposal_event(signed_proposal(2, 1, 1, w, None))),
        vec![send(prevote(0, 1, 1, None))]
    );
    assert_eq!(engine.handle(at(1800), vote_event(prevote(1, 1, 1, Some(w)))), vec![]);
    // Prevotes from more than two thirds, but no polka: the prevote timeout (500 + 500).
    assert_eq!(
        engine.handle(at(1800), vote_event(prevote(2, 1, 1, Some(w)))),
        vec![Command::WakeAt { at: at(2800) }]
    );
    assert_eq!(engine.handle(at(2800), Event::Tick), vec![send(precommit(0, 1, 1, None))]);
    assert_eq!(engine.handle(at(2810), vote_event(precommit(1, 1, 1, None))), vec![]);
    assert_eq!(
        engine.handle(at(2900), vote_event(precommit(2, 1, 1, None))),
        vec![Command::WakeAt { at: at(3900) }]
    );
    assert_eq!(engine.handle(at(3900), Event::Tick), vec![Command::WakeAt { at: at(5900) }]);
    assert_eq!(engine.round(), 2);
    // Round 2: validator 3 proposes w again, claiming a polka in round 1. Not seen yet: wait.
    assert_eq!(
        engine.handle(at(4000), proposal_event(signed_proposal(3, 1, 2, w, Some(1)))),
        vec![]
    );
    // The third prevote for w in round 1 makes the polka, newer than our lock: prevote w.
    assert_eq!(
        engine.handle(at(4010), vote_event(prevote(3, 1, 1, Some(w)))),
        vec![send(prevote(0, 1, 2, Some(w)))]
    );
}

#[test]
fn a_claimed_polka_that_did_not_happen_does_not_unlock() {
    let (v, w) = (value(10), value(20));
    let mut engine = locked_on(v);
    // Round 1's proposer claims a polka for w in round 0, but round 0's polka was for v.
    assert_eq!(
        engine.handle(at(1800), proposal_event(signed_proposal(2, 1, 1, w, Some(0)))),
        vec![]
    );
    // The propose timeout passes: nil.
    assert_eq!(engine.handle(at(3200), Event::Tick), vec![send(prevote(0, 1, 1, None))]);
}

#[test]
fn an_equivocating_validator_is_recorded_and_counted_once_per_value() {
    let v = value(10);
    let mut engine = engine(Some(0), vec![]);
    engine.handle(at(1000), Event::Tick);
    assert_eq!(
        engine.handle(at(1100), proposal_event(signed_proposal(1, 1, 0, v, None))),
        vec![send(prevote(0, 1, 0, Some(v)))]
    );
    assert_eq!(engine.handle(at(1110), vote_event(prevote(1, 1, 0, Some(v)))), vec![]);
    assert_eq!(
        engine.handle(at(1120), vote_event(prevote(3, 1, 0, None))),
        vec![Command::WakeAt { at: at(1620) }]
    );
    // Junk changes nothing: a bad signature, an unknown signer, another height or chain, a
    // proposal from a validator whose turn it is not.
    let mut forged = prevote(2, 1, 0, Some(v));
    forged.signature = prevote(1, 1, 0, Some(v)).signature;
    let outsider = signed_vote(&stranger(), 1, 0, VoteKind::Prevote, Some(v));
    for junk in [
        vote_event(forged),
        vote_event(outsider),
        vote_event(prevote(2, 3, 0, Some(v))),
        vote_event(prevote(2, 0, 0, Some(v))),
        proposal_event(signed_proposal(2, 1, 0, value(30), None)),
    ] {
        assert_eq!(engine.handle(at(1125), junk), vec![]);
    }
    // Validator 3 also prevotes v: its second vote counts for v (once), which makes the polka
    // that the validators who received this vote first have seen.
    assert_eq!(
        engine.handle(at(1130), vote_event(prevote(3, 1, 0, Some(v)))),
        vec![send(precommit(0, 1, 0, Some(v)))]
    );
    assert_eq!(engine.handle(at(1140), vote_event(prevote(3, 1, 0, None))), vec![]);
    assert_eq!(engine.handle(at(1140), vote_event(prevote(3, 1, 0, Some(value(40))))), vec![]);
    let evidence: Vec<_> = engine.evidence().copied().collect();
    assert_eq!(evidence, vec![(prevote(3, 1, 0, None), prevote(3, 1, 0, Some(v)))]);
    // Its precommit for v, sent after a nil one, completes the certificate.
    assert_eq!(engine.handle(at(1150), vote_event(precommit(3, 1, 0, None))), vec![]);
    assert_eq!(
        engine.handle(at(1160), vote_event(precommit(1, 1, 0, Some(v)))),
        vec![Command::WakeAt { at: at(1660) }]
    );
    let commands = engine.handle(at(1170), vote_event(precommit(3, 1, 0, Some(v))));
    let Some(Command::Commit { hash, proof: ConsensusProof::Bft(certificate) }) = commands.first()
    else {
        panic!("expected a commit, got {commands:?}");
    };
    assert_eq!(*hash, v);
    let mut signers: Vec<PublicKey> = vec![public(0), public(1), public(3)];
    signers.sort();
    let certified: Vec<PublicKey> = certificate.signatures.iter().map(|s| s.validator).collect();
    assert_eq!(certified, signers);
}

/// Regression (simulation seed 1): validator 3 prevoted nil to us and v to the others, who
/// locked on v in round 0. Had only its first vote counted, we could never see the polka for
/// v, would never prevote v again, and the locked validators would never prevote anything
/// else: the height stalled for good.
#[test]
fn an_equivocators_other_prevote_lets_us_follow_the_lock_of_the_others() {
    let v = value(10);
    let mut engine = engine(Some(0), vec![]);
    engine.handle(at(1000), Event::Tick);
    // Round 0: the proposal does not reach us in time.
    assert_eq!(engine.handle(at(7000), Event::Tick), vec![send(prevote(0, 1, 0, None))]);
    assert_eq!(engine.handle(at(7010), vote_event(prevote(3, 1, 0, None))), vec![]);
    assert_eq!(
        engine.handle(at(7020), vote_event(prevote(1, 1, 0, Some(v)))),
        vec![Command::WakeAt { at: at(7520) }]
    );
    assert_eq!(engine.handle(at(7030), vote_event(prevote(2, 1, 0, Some(v)))), vec![]);
    assert_eq!(engine.handle(at(7040), vote_event(prevote(3, 1, 0, Some(v)))), vec![]);
    assert_eq!(engine.handle(at(7520), Event::Tick), vec![send(precommit(0, 1, 0, None))]);
    assert_eq!(engine.handle(at(7530), vote_event(precommit(1, 1, 0, Some(v)))), vec![]);
    assert_eq!(
        engine.handle(at(7540), vote_event(precommit(3, 1, 0, None))),
        vec![Command::WakeAt { at: at(8040) }]
    );
    assert_eq!(engine.handle(at(8040), Event::Tick), vec![Command::WakeAt { at: at(9540) }]);
    assert_eq!(engine.round(), 1);
    // Round 1: validator 2, locked on v, proposes it again with its round-0 polka.
    assert_eq!(
        engine.handle(at(8100), proposal_event(signed_proposal(2, 1, 1, v, Some(0)))),
        vec![send(prevote(0, 1, 1, Some(v)))]
    );
}

#[test]
fn a_restarted_validator_repeats_itself_and_keeps_its_lock() {
    let (v, w) = (value(10), value(20));
    let restored = vec![
        Message::Vote(prevote(0, 1, 0, Some(v))),
        Message::Vote(precommit(0, 1, 0, Some(v))),
        // Not ours, or not this height: ignored.
        Message::Vote(precommit(1, 1, 0, Some(w))),
        Message::Vote(precommit(0, 2, 5, Some(w))),
    ];
    let mut engine = engine(Some(0), restored);
    assert_eq!(engine.round(), 0);
    assert_eq!(
        engine.handle(at(1000), Event::Tick),
        vec![send(prevote(0, 1, 0, Some(v))), send(precommit(0, 1, 0, Some(v)))]
    );
    // The proposal and a nil polka for round 0 arrive: it has already voted, signs nothing new.
    assert_eq!(engine.handle(at(1100), proposal_event(signed_proposal(1, 1, 0, w, None))), vec![]);
    for index in 1..4 {
        assert_eq!(engine.handle(at(1110), vote_event(prevote(index, 1, 0, None))), vec![]);
    }
    assert_eq!(engine.handle(at(1120), vote_event(precommit(1, 1, 0, None))), vec![]);
    assert_eq!(
        engine.handle(at(1200), vote_event(precommit(2, 1, 0, None))),
        vec![Command::WakeAt { at: at(1700) }]
    );
    assert_eq!(engine.handle(at(1700), Event::Tick), vec![Command::WakeAt { at: at(3200) }]);
    // Still locked on v from before the restart.
    assert_eq!(
        engine.handle(at(1800), proposal_event(signed_proposal(2, 1, 1, w, None))),
        vec![send(prevote(0, 1, 1, None))]
    );

    // A validator that had reached round 3 resumes there, and votes nothing new in it.
    let later = vec![Message::Vote(prevote(0, 1, 3, None))];
    let mut engine =
        TendermintEngine::new(&config(), Some(key(0)), &head(), later, Timeouts::default());
    assert_eq!(engine.round(), 3);
    assert_eq!(engine.handle(at(1000), Event::Tick), vec![send(prevote(0, 1, 3, None))]);
    assert_eq!(
        engine.handle(at(1100), proposal_event(signed_proposal(0, 1, 3, w, None))),
        vec![],
        "the proposer of round 3 is validator 0 itself, and nobody else can sign for it"
    );
}

#[test]
fn a_full_node_follows_without_signing() {
    let v = value(10);
    for key in [None, Some(stranger())] {
        let mut engine =
            TendermintEngine::new(&config(), key, &head(), vec![], Timeouts::default());
        assert!(!engine.is_validator());
        let mut commands = vec![];
        commands.extend(engine.handle(at(1000), Event::PendingChanged { ready: 5 }));
        commands.extend(engine.handle(at(99_000), Event::Tick));
        commands.extend(engine.handle(at(99_000), Event::BlockBuilt { header: block(1, 5, 0) }));
        // It decides from the others' votes (here of round 3, which the f+1 rule takes it to),
        // even without having seen the proposal.
        for index in 0..3 {
            commands.extend(engine.handle(at(99_100), vote_event(prevote(index, 1, 3, Some(v)))));
        }
        for index in 0..2 {
            let vote = precommit(index, 1, 3, Some(v));
            commands.extend(engine.handle(at(99_100), vote_event(vote)));
        }
        assert!(commands.iter().all(|command| matches!(command, Command::WakeAt { .. })));
        assert_eq!(engine.round(), 3);
        let commands = engine.handle(at(99_200), vote_event(precommit(2, 1, 3, Some(v))));
        let [Command::Commit { hash, proof: ConsensusProof::Bft(certificate) }] =
            commands.as_slice()
        else {
            panic!("{commands:?}")
        };
        assert_eq!((*hash, certificate.round, certificate.signatures.len()), (v, 3, 3));
    }
}

#[test]
fn messages_for_the_next_height_wait_for_it() {
    let x = value(40);
    let mut engine = engine(Some(0), vec![]);
    engine.handle(at(1000), Event::Tick);
    let early = [
        proposal_event(signed_proposal(2, 2, 0, x, None)),
        vote_event(prevote(1, 2, 0, Some(x))),
        vote_event(prevote(2, 2, 0, Some(x))),
        vote_event(prevote(3, 2, 0, Some(x))),
        // Too far ahead: dropped.
        vote_event(precommit(1, 3, 0, Some(x))),
        vote_event(precommit(2, 2, NEXT_HEIGHT_ROUNDS, Some(x))),
    ];
    for event in early {
        assert_eq!(engine.handle(at(1100), event), vec![]);
    }
    assert_eq!(engine.next_height.len(), 4);
    let committed = sealed(&block(1, 1500, 1), &ConsensusProof::Genesis);
    assert_eq!(
        engine.handle(at(1500), Event::Committed { header: committed }),
        vec![send(prevote(0, 2, 0, Some(x))), send(precommit(0, 2, 0, Some(x)))]
    );
    assert!(engine.next_height.is_empty());
    assert_eq!(engine.height(), Height(2));
}

#[test]
fn a_node_catching_up_signs_nothing() {
    // Validator 1 proposes at height 1, round 0.
    let mut engine = engine(Some(1), vec![]);
    assert_eq!(
        engine.handle(at(1000), Event::Syncing { behind: true }),
        vec![Command::WakeAt { at: at(7000) }]
    );
    assert_eq!(engine.handle(at(6000), Event::Tick), vec![]);
    assert_eq!(
        engine.handle(at(6500), Event::Syncing { behind: false }),
        vec![Command::BuildBlock { height: Height(1), timestamp: at(6500) }]
    );

    let mut engine = engine_at_zero_syncing();
    assert_eq!(engine.handle(at(7000), Event::Tick), vec![]);
    assert_eq!(engine.handle(at(7010), vote_event(prevote(1, 1, 0, None))), vec![]);
    assert_eq!(engine.handle(at(7010), vote_event(prevote(2, 1, 0, None))), vec![]);
    assert_eq!(engine.handle(at(7010), vote_event(prevote(3, 1, 0, None))), vec![]);
}

fn engine_at_zero_syncing() -> TendermintEngine {
    let mut engine = engine(Some(0), vec![]);
    assert_eq!(
        engine.handle(at(1000), Event::Syncing { behind: true }),
        vec![Command::WakeAt { at: at(7000) }]
    );
    engine
}

#[test]
fn more_than_a_third_in_a_later_round_pulls_us_there() {
    let mut engine = engine(Some(0), vec![]);
    engine.handle(at(1000), Event::Tick);
    assert_eq!(engine.handle(at(2000), vote_event(prevote(1, 1, 100, None))), vec![]);
    assert_eq!(engine.round(), 0);
    // Round 100 is beyond the rounds kept in full; the f+1 rule still sees it.
    let commands = engine.handle(at(2000), vote_event(precommit(2, 1, 100, None)));
    assert_eq!(engine.round(), 100);
    let propose_timeout = 1000 + 100 * 500;
    assert_eq!(commands, vec![Command::WakeAt { at: at(2000 + propose_timeout) }]);
}

#[test]
fn proposers_rotate_in_proportion_to_power() {
    let weighted = config_with(&[1, 2, 3, 4]).validators;
    let mut turns = [0u32; 4];
    for height in 1..=1000 {
        let chosen = proposer(&weighted, Height(height), 0).unwrap();
        let index = weighted.iter().position(|validator| validator.key == chosen.key).unwrap();
        turns[index] += 1;
    }
    assert_eq!(turns, [100, 200, 300, 400]);

    // Equal powers (of any size): a round robin, never the same proposer twice in a row.
    for power in [1, 7] {
        let equal = config_with(&[power; 4]).validators;
        for height in 0..50 {
            let in_turn: BTreeMap<PublicKey, u32> = (0..4u32)
                .map(|round| (proposer(&equal, Height(height), round).unwrap().key, round))
                .collect();
            assert_eq!(in_turn.len(), 4);
            for round in 0..20 {
                let this = proposer(&equal, Height(height), round).unwrap();
                let next = proposer(&equal, Height(height), round + 1).unwrap();
                assert_ne!(this.key, next.key);
            }
        }
    }
    let two = config_with(&[3, 3]).validators;
    assert_ne!(
        proposer(&two, Height(9), 0).unwrap().key,
        proposer(&two, Height(9), 1).unwrap().key
    );

    assert!(proposer(&[], Height(1), 0).is_none());
    let huge = config_with(&[u64::MAX, u64::MAX - 1, 3]).validators;
    assert!(proposer(&huge, Height(u64::MAX), u32::MAX).is_some());
}

#[test]
fn a_new_validator_set_takes_over_at_its_height() {
    let new_set: Vec<Validator> = [0, 1, 4]
        .map(|index| Validator { name: format!("v{index}"), key: public(index), power: 1 })
        .to_vec();
    let x = value(50);
    let mut newcomer = engine(Some(4), vec![]);
    let mut leaving = engine(Some(3), vec![]);
    assert!(!newcomer.is_validator());
    for engine in [&mut newcomer, &mut leaving] {
        let told = Event::Validators { from: Height(2), validators: new_set.clone() };
        engine.handle(at(1000), told);
    }
    // Height 1 is still decided by the old set.
    assert!(leaving.is_validator() && !newcomer.is_validator());
    assert_eq!(leaving.validators().len(), 4);
    // Votes for height 2 are kept from the new set only.
    assert_eq!(leaving.handle(at(1100), vote_event(prevote(4, 2, 0, Some(x)))), vec![]);
    assert_eq!(leaving.handle(at(1100), vote_event(prevote(2, 2, 0, Some(x)))), vec![]);
    assert_eq!(leaving.next_height.len(), 1);

    let committed = sealed(&block(1, 1500, 1), &ConsensusProof::Genesis);
    let commands = leaving.handle(at(1500), Event::Committed { header: committed.clone() });
    assert!(!leaving.is_validator());
    assert!(commands.iter().all(|command| matches!(command, Command::WakeAt { .. })));
    assert_eq!(leaving.validators(), new_set.as_slice());

    newcomer.handle(at(1500), Event::Committed { header: committed });
    assert!(newcomer.is_validator());
    // With three equal validators, height 2 round 0 is the third's: the newcomer proposes.
    assert_eq!(newcomer.handle(at(1500), Event::PendingChanged { ready: 1 }).len(), 1);
    let commands = newcomer.handle(at(2500), Event::Tick);
    assert!(
        commands.contains(&Command::BuildBlock { height: Height(2), timestamp: at(2500) }),
        "{commands:?}"
    );
}
