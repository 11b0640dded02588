//! A Tendermint-style BFT engine.
//!
//! The algorithm is the one of "The latest gossip on BFT consensus" (Buchman, Kwon, Milosevic,
//! 2018): each height runs rounds of propose, prevote and precommit; a validator locks on a
//! block when it precommits it and prevotes another block only when a newer polka (more than
//! two thirds of prevotes in a later round) justifies it; a block is decided when validators
//! with more than two thirds of the voting power precommit it in one round. "2f+1" is "more
//! than two thirds of the total voting power" and "f+1" "more than one third", weighted by
//! [`Validator::power`]. Values are block hashes; the node executes blocks and tells the
//! engine whether a proposed one is valid.
//!
//! The engine is a pure state machine ([`Engine::handle`]): timeouts are deadlines it asks to
//! be woken at ([`Command::WakeAt`], always the earliest pending one) and works out from `now`
//! when woken. Every message it signs goes out as [`Command::Broadcast`], which the node logs
//! durably first; after a restart the engine is given those messages back and never signs a
//! different one for the same height, round and step.
//!
//! Memory is bounded whatever peers send: per height it keeps the messages of the rounds from
//! [`ROUNDS_KEPT_BEHIND`] below the current round to [`ROUNDS_KEPT_AHEAD`] above it (one
//! proposal per round, one vote per validator, round and kind); of rounds further ahead only
//! each validator's highest round, which is all the "f+1" rule needs; and of the next height
//! the first [`NEXT_HEIGHT_ROUNDS`] rounds, to replay once it starts.
//!
//! Differences from the paper, all forced by the node around it: a decision waits for
//! [`Event::Committed`] before the next height starts; a decision is also taken from more than
//! two thirds of precommits without the proposal (the node fetches the block); the "f+1" rule
//! skips to the highest round `R` such that validators with more than a third of the power have
//! sent a message in round `R` or later (the paper counts messages of round `R` exactly).

use crate::engine::{BlockCheck, Command, Engine, EngineMessage, Event};
use crate::power::{more_than_one_third, more_than_two_thirds, total_power};
use primitives::{
    Address, BlockHash, ChainConfig, ChainId, ChainParams, CommitCertificate, CommitSignature,
    ConsensusProof, Hash, Header, Height, Proposal, PublicKey, SecretKey, Signature,
    SignedProposal, SignedVote, TimestampMs, Validator, Vote, VoteKind,
};
use std::collections::BTreeMap;

/// A message validators exchange while deciding a block; on the network it is an
/// [`EngineMessage`] ([`encode`], [`decode`]).
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, Debug, borsh::BorshSerialize, borsh::BorshDeserialize,
)]
pub enum Message {
    /// A proposer's signed proposal. On the network it travels with the block itself.
    Proposal(SignedProposal),
    /// A validator's signed prevote or precommit.
    Vote(SignedVote),
}

impl Message {
    /// The height the message is about.
    pub fn height(&self) -> Height {
        match self {
            Message::Proposal(signed) => signed.proposal.height,
            Message::Vote(signed) => signed.vote.height,
        }
    }

    /// The round the message is about.
    pub fn round(&self) -> u32 {
        match self {
            Message::Proposal(signed) => signed.proposal.round,
            Message::Vote(signed) => signed.vote.round,
        }
    }

    /// Who signed it: the proposer or the voting validator.
    pub fn signer(&self) -> PublicKey {
        match self {
            Message::Proposal(signed) => signed.proposer,
            Message::Vote(signed) => signed.validator,
        }
    }

    /// What its signature must cover on chain `chain_id`, and the signature.
    pub fn signed(&self, chain_id: &ChainId) -> (Hash, Signature) {
        match self {
            Message::Proposal(signed) => (signed.proposal.signing_hash(chain_id), signed.signature),
            Message::Vote(signed) => (signed.vote.signing_hash(chain_id), signed.signature),
        }
    }

    /// The block a proposal names (it travels with it).
    pub fn block(&self) -> Option<BlockHash> {
        match self {
            Message::Proposal(signed) => Some(signed.proposal.block),
            Message::Vote(_) => None,
        }
    }
}

/// `message` as it travels.
pub fn encode(message: &Message) -> EngineMessage {
    EngineMessage(primitives::encode(message))
}

/// The Tendermint message in `message`, if it is one (canonically encoded).
pub fn decode(message: &EngineMessage) -> Option<Message> {
    primitives::decode(&message.0).ok()
}

/// The command that sends `message` (with its block, for a proposal) after logging it.
pub fn broadcast(message: &Message) -> Command {
    Command::Broadcast { message: encode(message), block: message.block() }
}

/// Rounds below the current one whose messages are kept (for the "polka in an earlier round"
/// rule and late precommits).
pub const ROUNDS_KEPT_BEHIND: u32 = 16;
/// Rounds above the current one whose messages are kept in full.
pub const ROUNDS_KEPT_AHEAD: u32 = 4;
/// Rounds of the next height whose messages are buffered until it starts.
pub const NEXT_HEIGHT_ROUNDS: u32 = 2;
/// Most rules one [`Engine::handle`] call fires; the rules can never need this many
/// (each one changes the state monotonically), it only guarantees termination.
const MAX_RULES_PER_EVENT: usize = 256;

/// How long the engine waits at each step before giving up on a round. Round `r` waits
/// `base + r * delta`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Waiting for a proposal, beyond the moment the proposer is due to propose.
    pub propose_ms: u64,
    /// Added per round to the propose timeout.
    pub propose_delta_ms: u64,
    /// Waiting for more votes once votes from more than two thirds have arrived but disagree.
    pub vote_ms: u64,
    /// Added per round to the vote timeouts.
    pub vote_delta_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts { propose_ms: 1000, propose_delta_ms: 500, vote_ms: 500, vote_delta_ms: 500 }
    }
}

impl Timeouts {
    /// The same wall durations in the chain time of `time`.
    pub fn scaled(self, time: &primitives::TimeScale) -> Timeouts {
        Timeouts {
            propose_ms: time.chain_span(self.propose_ms),
            propose_delta_ms: time.chain_span(self.propose_delta_ms),
            vote_ms: time.chain_span(self.vote_ms),
            vote_delta_ms: time.chain_span(self.vote_delta_ms),
        }
    }

    fn propose(&self, round: u32) -> u64 {
        grow(self.propose_ms, self.propose_delta_ms, round)
    }

    fn vote(&self, round: u32) -> u64 {
        grow(self.vote_ms, self.vote_delta_ms, round)
    }
}

/// `base + round * delta`, at least 1 ms so that a round's timeouts never expire at its start.
fn grow(base: u64, delta: u64, round: u32) -> u64 {
    base.saturating_add(delta.saturating_mul(u64::from(round))).max(1)
}

fn later(time: TimestampMs, ms: u64) -> TimestampMs {
    TimestampMs(time.0.saturating_add(ms))
}

/// The steps of a round.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Step {
    Propose,
    Prevote,
    Precommit,
}

/// What a validator signs at most once per height and round.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Slot {
    Proposal,
    Prevote,
    Precommit,
}

impl Slot {
    fn of_vote(kind: VoteKind) -> Slot {
        match kind {
            VoteKind::Prevote => Slot::Prevote,
            VoteKind::Precommit => Slot::Precommit,
        }
    }

    fn of(message: &Message) -> Slot {
        match message {
            Message::Proposal(_) => Slot::Proposal,
            Message::Vote(signed) => Slot::of_vote(signed.vote.kind),
        }
    }
}

/// The votes of one kind in one round: the first vote of each validator, the first conflicting
/// one of an equivocating validator, and the power behind each value.
///
/// An equivocator's conflicting vote counts for its value (as in the paper, where a quorum is
/// any 2f+1 messages from distinct validators for a value): otherwise a node that happened to
/// receive an equivocator's other vote first could never see a polka that the rest of the
/// network formed with it, and validators locked on that polka would wait for it forever.
/// Counting both votes cannot make two values reach a quorum in one round unless an honest
/// validator also voted twice. `power` (votes for anything) counts each validator once.
#[derive(Debug, Default)]
struct VoteSet {
    votes: BTreeMap<PublicKey, SignedVote>,
    conflicting: BTreeMap<PublicKey, SignedVote>,
    power_for: BTreeMap<Option<BlockHash>, u128>,
    power: u128,
}

impl VoteSet {
    fn insert(&mut self, signed: SignedVote, power: u64) {
        if self.votes.contains_key(&signed.validator) {
            return;
        }
        self.votes.insert(signed.validator, signed);
        let for_value = self.power_for.entry(signed.vote.block).or_default();
        *for_value = for_value.saturating_add(u128::from(power));
        self.power = self.power.saturating_add(u128::from(power));
    }

    /// Counts a validator's vote for another value than its first one (at most one per
    /// validator, which bounds memory).
    fn insert_conflicting(&mut self, signed: SignedVote, power: u64) {
        let differs = self
            .votes
            .get(&signed.validator)
            .is_some_and(|first| first.vote.block != signed.vote.block);
        if !differs || self.conflicting.contains_key(&signed.validator) {
            return;
        }
        self.conflicting.insert(signed.validator, signed);
        let for_value = self.power_for.entry(signed.vote.block).or_default();
        *for_value = for_value.saturating_add(u128::from(power));
    }

    /// Whether `validator`'s conflicting vote is counted already.
    fn has_conflicting(&self, validator: &PublicKey) -> bool {
        self.conflicting.contains_key(validator)
    }

    /// The votes for `block`, sorted by validator key (at most one per validator: its first
    /// and its conflicting vote are for different values).
    fn votes_for(&self, block: Option<BlockHash>) -> Vec<SignedVote> {
        let mut votes: Vec<SignedVote> = self
            .votes
            .values()
            .chain(self.conflicting.values())
            .filter(|signed| signed.vote.block == block)
            .copied()
            .collect();
        votes.sort_by_key(|signed| signed.validator);
        votes
    }

    fn power_for(&self, block: Option<BlockHash>) -> u128 {
        self.power_for.get(&block).copied().unwrap_or(0)
    }
}

/// Deadlines of the current round (Tendermint's scheduled `OnTimeout*`).
#[derive(Debug, Default, Clone, Copy)]
struct Timers {
    propose: Option<TimestampMs>,
    prevote: Option<TimestampMs>,
    precommit: Option<TimestampMs>,
}

/// The "for the first time" conditions of the current round.
#[derive(Debug, Default, Clone, Copy)]
struct RoundFlags {
    prevote_timer_set: bool,
    precommit_timer_set: bool,
    polka_seen: bool,
}

/// Everything the engine knows about the height being decided.
#[derive(Debug)]
struct HeightState {
    height: Height,
    round: u32,
    step: Step,
    /// Tendermint's lockedValue and lockedRound.
    locked: Option<(BlockHash, u32)>,
    /// Tendermint's validValue and validRound.
    valid: Option<(BlockHash, u32)>,
    /// The first proposal from each round's proposer, with the node's verdict on its block.
    proposals: BTreeMap<u32, (SignedProposal, bool)>,
    votes: BTreeMap<(u32, VoteKind), VoteSet>,
    /// The highest round each validator has sent a message for (for the "f+1" rule).
    latest_round: BTreeMap<PublicKey, u32>,
    /// What this validator has signed at this height (including restored messages).
    own: BTreeMap<(u32, Slot), Message>,
    /// A validator's first and a conflicting second vote for one round and kind.
    evidence: BTreeMap<PublicKey, (SignedVote, SignedVote)>,
    timers: Timers,
    flags: RoundFlags,
    /// When this validator, the round's proposer, is due to propose.
    propose_at: Option<TimestampMs>,
    /// A block was asked for with [`Command::BuildBlock`] in the current round.
    building: bool,
    /// [`Command::Commit`] was emitted; waiting for [`Event::Committed`].
    decided: bool,
    /// The round has to be started (timers, proposing) at the next event, which brings `now`.
    needs_start: bool,
}

impl HeightState {
    fn new(height: Height) -> HeightState {
        HeightState {
            height,
            round: 0,
            step: Step::Propose,
            locked: None,
            valid: None,
            proposals: BTreeMap::new(),
            votes: BTreeMap::new(),
            latest_round: BTreeMap::new(),
            own: BTreeMap::new(),
            evidence: BTreeMap::new(),
            timers: Timers::default(),
            flags: RoundFlags::default(),
            propose_at: None,
            building: false,
            decided: false,
            needs_start: true,
        }
    }

    fn lowest_kept_round(&self) -> u32 {
        self.round.saturating_sub(ROUNDS_KEPT_BEHIND)
    }

    /// Whether messages of `round` are kept in full.
    fn keeps(&self, round: u32) -> bool {
        round >= self.lowest_kept_round() && round <= self.round.saturating_add(ROUNDS_KEPT_AHEAD)
    }

    fn prune(&mut self) {
        let lowest = self.lowest_kept_round();
        self.proposals.retain(|round, _| *round >= lowest);
        self.votes.retain(|(round, _), _| *round >= lowest);
        self.own.retain(|(round, _), _| *round >= lowest);
    }

    fn vote_set(&self, round: u32, kind: VoteKind) -> Option<&VoteSet> {
        self.votes.get(&(round, kind))
    }

    fn saw_round(&mut self, validator: PublicKey, round: u32) {
        let latest = self.latest_round.entry(validator).or_insert(round);
        *latest = (*latest).max(round);
    }

    /// The node's verdict on block `hash`, if a proposal named it.
    fn verdict(&self, hash: BlockHash) -> Option<bool> {
        self.proposals
            .values()
            .find(|(signed, _)| signed.proposal.block == hash)
            .map(|(_, valid)| *valid)
    }

    /// The step this validator has already reached in `round` by signing (after a restart).
    fn signed_step(&self, round: u32) -> Step {
        if self.own.contains_key(&(round, Slot::Precommit)) {
            Step::Precommit
        } else if self.own.contains_key(&(round, Slot::Prevote)) {
            Step::Prevote
        } else {
            Step::Propose
        }
    }
}

/// Most validator sets waiting for their height (a node tells of at most two at a time).
const MAX_UPCOMING_SETS: usize = 8;

/// A message of the next height, kept until it starts.
#[derive(Debug, Clone, Copy)]
enum Buffered {
    Proposal(SignedProposal, bool),
    Vote(SignedVote),
}

/// The BFT engine of one validator (or of a full node, which only follows).
#[derive(Debug)]
pub struct TendermintEngine {
    chain_id: ChainId,
    params: ChainParams,
    validators: Vec<Validator>,
    power: BTreeMap<PublicKey, u64>,
    total_power: u128,
    /// Sets that take over at later heights ([`Event::Validators`]), by first height.
    upcoming: BTreeMap<Height, Vec<Validator>>,
    timeouts: Timeouts,
    /// Our key. It signs while it is a validator's.
    key: Option<SecretKey>,
    head_timestamp: TimestampMs,
    ready: usize,
    syncing: bool,
    state: HeightState,
    /// Messages for `state.height + 1`, by round, slot and signer (the first of each).
    next_height: BTreeMap<(u32, Slot, PublicKey), Buffered>,
    /// The wake-up last asked for.
    wake: Option<TimestampMs>,
    signatures: SignatureCheck,
}

/// How the engine checks a signature over a message hash. The default verifies every time; a
/// simulation of many engines in one process shares a memo, so that each distinct (key,
/// message, signature) is verified once instead of once per engine.
#[derive(Clone)]
pub struct SignatureCheck(std::sync::Arc<CheckFn>);

/// The function behind a [`SignatureCheck`].
type CheckFn = dyn Fn(&PublicKey, &Hash, &Signature) -> bool + Send + Sync;

impl SignatureCheck {
    /// A check made by `check`.
    pub fn new(
        check: impl Fn(&PublicKey, &Hash, &Signature) -> bool + Send + Sync + 'static,
    ) -> Self {
        SignatureCheck(std::sync::Arc::new(check))
    }

    pub(crate) fn holds(&self, key: &PublicKey, message: &Hash, signature: &Signature) -> bool {
        (self.0)(key, message, signature)
    }
}

impl Default for SignatureCheck {
    fn default() -> SignatureCheck {
        SignatureCheck::new(|key, message, signature| {
            key.verify(message.as_bytes(), signature).is_ok()
        })
    }
}

impl std::fmt::Debug for SignatureCheck {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("SignatureCheck")
    }
}

impl TendermintEngine {
    /// An engine resuming after `head`, decided by `config.validators` (the validators of the
    /// height after `head`). `key` is this node's key: it signs only while the key belongs to a
    /// validator. `restored` are the messages this validator signed for the height after `head`
    /// before a restart, read back from its write-ahead log.
    pub fn new(
        config: &ChainConfig,
        key: Option<SecretKey>,
        head: &Header,
        restored: Vec<Message>,
        timeouts: Timeouts,
    ) -> TendermintEngine {
        let height = head.height.next().unwrap_or(head.height);
        let mut engine = TendermintEngine {
            chain_id: config.chain_id.clone(),
            params: config.params.clone(),
            validators: Vec::new(),
            power: BTreeMap::new(),
            total_power: 0,
            upcoming: BTreeMap::new(),
            timeouts,
            key,
            head_timestamp: head.timestamp,
            ready: 0,
            syncing: false,
            state: HeightState::new(height),
            next_height: BTreeMap::new(),
            wake: None,
            signatures: SignatureCheck::default(),
        };
        engine.install(config.validators.clone());
        engine.restore(restored);
        engine
    }

    /// Makes `validators` the set of the current height.
    fn install(&mut self, validators: Vec<Validator>) {
        let mut power = BTreeMap::new();
        for validator in &validators {
            power.entry(validator.key).or_insert(validator.power);
        }
        self.total_power = total_power(&validators);
        self.power = power;
        self.validators = validators;
    }

    /// The validators of `height` (the current height or a later one).
    fn validators_at(&self, height: Height) -> &[Validator] {
        self.upcoming.range(..=height).next_back().map_or(&self.validators, |(_, set)| set)
    }

    /// Whether this engine signs messages (its key is a validator's at the current height).
    pub fn is_validator(&self) -> bool {
        self.our_key().is_some()
    }

    /// The validators of the current height.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// The height being decided.
    pub fn height(&self) -> Height {
        self.state.height
    }

    /// The current round.
    pub fn round(&self) -> u32 {
        self.state.round
    }

    /// Equivocations seen at the current height: a validator's first vote and a different
    /// second one for the same round and kind (only the first one counted).
    pub fn evidence(&self) -> impl Iterator<Item = &(SignedVote, SignedVote)> {
        self.state.evidence.values()
    }

    /// Takes back the messages signed before a restart: they count as our own, the round
    /// resumes at the highest one among them, and the latest precommit for a block is the lock.
    fn restore(&mut self, restored: Vec<Message>) {
        let Some(our_key) = self.our_key() else { return };
        for message in restored {
            let slot = (message.round(), Slot::of(&message));
            if message.height() != self.state.height
                || message.signer() != our_key
                || self.state.own.contains_key(&slot)
                || !self.signature_holds(&message)
            {
                continue;
            }
            self.state.own.insert(slot, message);
        }
        // The lock is taken before pruning old rounds: it must survive them.
        let lock = self.state.own.values().rev().find_map(|message| match message {
            Message::Vote(signed) if signed.vote.kind == VoteKind::Precommit => {
                signed.vote.block.map(|block| (block, signed.vote.round))
            }
            _ => None,
        });
        self.state.locked = lock;
        self.state.valid = lock;
        self.state.round = self.state.own.keys().map(|(round, _)| *round).max().unwrap_or(0);
        self.state.prune();
        let own: Vec<Message> = self.state.own.values().copied().collect();
        for message in own {
            match message {
                Message::Proposal(signed) => self.accept_proposal(signed, true),
                Message::Vote(signed) => self.accept_vote(signed),
            }
        }
    }

    fn our_key(&self) -> Option<PublicKey> {
        self.signing_key().map(SecretKey::public_key)
    }

    /// Our key, while it is a validator's.
    fn signing_key(&self) -> Option<&SecretKey> {
        self.key.as_ref().filter(|key| self.power.contains_key(&key.public_key()))
    }

    /// Whether we may sign and send messages now.
    fn can_sign(&self) -> bool {
        self.our_key().is_some() && !self.syncing
    }

    fn is_proposer(&self, round: u32) -> bool {
        let Some(our_key) = self.our_key() else { return false };
        proposer(&self.validators, self.state.height, round)
            .is_some_and(|validator| validator.key == our_key)
    }

    /// When the proposer of round 0 proposes: one block interval after the head when
    /// transactions wait, one empty-block interval when none do.
    fn round_zero_due(&self) -> TimestampMs {
        let wait = if self.ready > 0 {
            self.params.block_interval_ms
        } else {
            self.params.empty_block_interval_ms
        };
        later(self.head_timestamp, wait)
    }

    fn signature_holds(&self, message: &Message) -> bool {
        let (hash, signature) = message.signed(&self.chain_id);
        self.signatures.holds(&message.signer(), &hash, &signature)
    }

    /// The same engine, checking signatures with `check` (see [`SignatureCheck`]).
    pub fn with_signature_check(mut self, check: SignatureCheck) -> TendermintEngine {
        self.signatures = check;
        self
    }

    // ---- Incoming messages -------------------------------------------------------------------

    /// A peer's message: a proposal counts only with the check of the block it names.
    fn on_message(&mut self, message: &EngineMessage, block: Option<BlockCheck>) {
        match decode(message) {
            Some(Message::Proposal(signed)) => {
                if let Some(check) = block.filter(|check| check.hash == signed.proposal.block) {
                    self.on_proposal(signed, check.valid);
                }
            }
            Some(Message::Vote(signed)) => self.on_vote(signed),
            None => {}
        }
    }

    fn on_proposal(&mut self, signed: SignedProposal, valid: bool) {
        let proposal = signed.proposal;
        let is_proposer =
            proposer(self.validators_at(proposal.height), proposal.height, proposal.round)
                .is_some_and(|validator| validator.key == signed.proposer);
        if !is_proposer {
            return;
        }
        if proposal.height == self.state.height {
            let known = if self.state.keeps(proposal.round) {
                self.state.proposals.contains_key(&proposal.round)
            } else {
                self.state.latest_round.get(&signed.proposer) >= Some(&proposal.round)
            };
            if !known && self.signature_holds(&Message::Proposal(signed)) {
                self.accept_proposal(signed, valid);
            }
        } else if Some(proposal.height) == self.state.height.next() {
            self.buffer(
                proposal.round,
                Slot::Proposal,
                signed.proposer,
                Buffered::Proposal(signed, valid),
            );
        }
    }

    /// Records a proposal whose signature and proposer have been checked.
    fn accept_proposal(&mut self, signed: SignedProposal, valid: bool) {
        let round = signed.proposal.round;
        self.state.saw_round(signed.proposer, round);
        if self.state.keeps(round) {
            self.state.proposals.entry(round).or_insert((signed, valid));
        }
    }

    fn on_vote(&mut self, signed: SignedVote) {
        let vote = signed.vote;
        if !self
            .validators_at(vote.height)
            .iter()
            .any(|validator| validator.key == signed.validator)
        {
            return;
        }
        if vote.height == self.state.height {
            if self.state.keeps(vote.round) {
                let first = self
                    .state
                    .vote_set(vote.round, vote.kind)
                    .and_then(|set| set.votes.get(&signed.validator))
                    .copied();
                let counted = self
                    .state
                    .vote_set(vote.round, vote.kind)
                    .is_some_and(|set| set.has_conflicting(&signed.validator));
                match first {
                    Some(first) if first == signed => {}
                    // One conflicting vote per validator, round and kind is counted; later
                    // ones are not even verified.
                    Some(_) if counted => {}
                    Some(first) => {
                        if self.signature_holds(&Message::Vote(signed)) {
                            self.state.evidence.entry(signed.validator).or_insert((first, signed));
                            self.accept_conflicting_vote(signed);
                        }
                    }
                    None => {
                        if self.signature_holds(&Message::Vote(signed)) {
                            self.accept_vote(signed);
                        }
                    }
                }
            } else if self.state.latest_round.get(&signed.validator) < Some(&vote.round)
                && self.signature_holds(&Message::Vote(signed))
            {
                self.state.saw_round(signed.validator, vote.round);
            }
        } else if Some(vote.height) == self.state.height.next() {
            let slot = Slot::of_vote(vote.kind);
            self.buffer(vote.round, slot, signed.validator, Buffered::Vote(signed));
        }
    }

    /// Counts a vote whose signature and validator have been checked (the first one of its
    /// validator for its round and kind; later ones are ignored).
    fn accept_vote(&mut self, signed: SignedVote) {
        let Some(&power) = self.power.get(&signed.validator) else { return };
        let vote = signed.vote;
        self.state.saw_round(signed.validator, vote.round);
        if self.state.keeps(vote.round) {
            self.state.votes.entry((vote.round, vote.kind)).or_default().insert(signed, power);
        }
    }

    /// Counts an equivocating validator's verified second vote for another value (see
    /// [`VoteSet`]).
    fn accept_conflicting_vote(&mut self, signed: SignedVote) {
        let Some(&power) = self.power.get(&signed.validator) else { return };
        let vote = signed.vote;
        if let Some(set) = self.state.votes.get_mut(&(vote.round, vote.kind)) {
            set.insert_conflicting(signed, power);
        }
    }

    /// Keeps a message of the next height (signer and proposer role already checked).
    fn buffer(&mut self, round: u32, slot: Slot, signer: PublicKey, message: Buffered) {
        if round >= NEXT_HEIGHT_ROUNDS || self.next_height.contains_key(&(round, slot, signer)) {
            return;
        }
        let holds = match message {
            Buffered::Proposal(signed, _) => self.signature_holds(&Message::Proposal(signed)),
            Buffered::Vote(signed) => self.signature_holds(&Message::Vote(signed)),
        };
        if holds {
            self.next_height.insert((round, slot, signer), message);
        }
    }

    // ---- Other events ------------------------------------------------------------------------

    fn on_block_built(&mut self, header: &Header) -> Vec<Command> {
        let state = &self.state;
        let ours = self.our_key().is_some_and(|key| header.proposer == Address(key));
        if !state.building
            || state.decided
            || state.step != Step::Propose
            || header.height != state.height
            || header.timestamp <= self.head_timestamp
            || !ours
            || !self.can_sign()
        {
            return vec![];
        }
        self.state.building = false;
        self.propose(header.hash(), None)
    }

    fn on_committed(&mut self, header: &Header) {
        if header.height < self.state.height {
            return;
        }
        let Some(height) = header.height.next() else { return };
        self.head_timestamp = header.timestamp;
        self.state = HeightState::new(height);
        let later = self.upcoming.split_off(&Height(height.0.saturating_add(1)));
        let due = std::mem::replace(&mut self.upcoming, later);
        if let Some((_, validators)) = due.into_iter().next_back() {
            self.install(validators);
        }
        // The buffer was for the old height + 1: of use only if that is the new height.
        let buffered = std::mem::take(&mut self.next_height);
        for message in buffered.into_values() {
            match message {
                Buffered::Proposal(signed, valid) if signed.proposal.height == height => {
                    self.accept_proposal(signed, valid)
                }
                Buffered::Vote(signed) if signed.vote.height == height => self.accept_vote(signed),
                _ => {}
            }
        }
    }

    // ---- Rounds and rules --------------------------------------------------------------------

    /// Tendermint's `StartRound`.
    fn start_round(&mut self, now: TimestampMs, round: u32) -> Vec<Command> {
        let state = &mut self.state;
        state.round = round;
        state.needs_start = false;
        state.step = state.signed_step(round);
        state.timers = Timers::default();
        state.flags = RoundFlags::default();
        state.building = false;
        state.propose_at = None;
        state.prune();
        let base = if round == 0 {
            now.max(later(self.head_timestamp, self.params.empty_block_interval_ms))
        } else {
            now
        };
        self.state.timers.propose = Some(later(base, self.timeouts.propose(round)));
        let already_proposed = self.state.own.contains_key(&(round, Slot::Proposal));
        if self.is_proposer(round) && !already_proposed {
            self.state.propose_at = Some(if round == 0 { self.round_zero_due() } else { now });
        }
        if !self.can_sign() {
            return vec![];
        }
        // Only after a restart: say again what we said in this round.
        self.state
            .own
            .range((round, Slot::Proposal)..=(round, Slot::Precommit))
            .map(|(_, message)| broadcast(message))
            .collect()
    }

    /// Applies the rules until none fires.
    fn progress(&mut self, now: TimestampMs) -> Vec<Command> {
        let mut commands = vec![];
        for _ in 0..MAX_RULES_PER_EVENT {
            match self.apply_one_rule(now) {
                Some(more) => commands.extend(more),
                None => break,
            }
        }
        commands
    }

    /// Fires the first rule whose condition holds; `None` if none does.
    fn apply_one_rule(&mut self, now: TimestampMs) -> Option<Vec<Command>> {
        if self.state.decided || self.state.needs_start {
            return None;
        }
        self.decide()
            .or_else(|| self.skip_round(now))
            .or_else(|| self.propose_when_due(now))
            .or_else(|| self.prevote_on_proposal())
            .or_else(|| self.precommit_on_polka())
            .or_else(|| self.precommit_nil_on_nil_polka())
            .or_else(|| self.schedule_vote_timers(now))
            .or_else(|| self.expire_timers(now))
    }

    /// Upon a proposal for v (or none seen) and precommits for v from more than two thirds in
    /// some round: commit v with those precommits as its certificate.
    fn decide(&mut self) -> Option<Vec<Command>> {
        let state = &self.state;
        let (round, hash, set) = state.votes.iter().find_map(|((round, kind), set)| {
            if *kind != VoteKind::Precommit {
                return None;
            }
            set.power_for.iter().find_map(|(block, power)| match block {
                // A block the node found invalid is not decided (Tendermint's `valid(v)`); one
                // it has not seen is, and the node fetches it.
                Some(hash)
                    if more_than_two_thirds(*power, self.total_power)
                        && state.verdict(*hash) != Some(false) =>
                {
                    Some((*round, *hash, set))
                }
                _ => None,
            })
        })?;
        let signatures = set
            .votes_for(Some(hash))
            .into_iter()
            .map(|signed| CommitSignature {
                validator: signed.validator,
                signature: signed.signature,
            })
            .collect();
        self.state.decided = true;
        self.state.timers = Timers::default();
        self.state.propose_at = None;
        let proof = ConsensusProof::Bft(CommitCertificate { round, signatures });
        Some(vec![Command::Commit { hash, proof }])
    }

    /// Upon messages from more than a third of the power for rounds above ours: go to the
    /// highest round such validators have reached.
    fn skip_round(&mut self, now: TimestampMs) -> Option<Vec<Command>> {
        let current = self.state.round;
        let mut ahead: Vec<(u32, u64)> = self
            .state
            .latest_round
            .iter()
            .filter(|(_, round)| **round > current)
            .filter_map(|(key, round)| self.power.get(key).map(|power| (*round, *power)))
            .collect();
        ahead.sort_unstable_by_key(|(round, _)| std::cmp::Reverse(*round));
        let mut power: u128 = 0;
        for (round, validator_power) in ahead {
            power = power.saturating_add(u128::from(validator_power));
            if more_than_one_third(power, self.total_power) {
                return Some(self.start_round(now, round));
            }
        }
        None
    }

    /// The proposer, once due: proposes its valid value again, or asks for a new block.
    fn propose_when_due(&mut self, now: TimestampMs) -> Option<Vec<Command>> {
        let state = &self.state;
        let due = state.propose_at.is_some_and(|at| at <= now);
        if !due || state.step != Step::Propose || state.building || !self.can_sign() {
            return None;
        }
        self.state.propose_at = None;
        if self.state.proposals.contains_key(&self.state.round) {
            return Some(vec![]);
        }
        if let Some((hash, valid_round)) = self.state.valid {
            return Some(self.propose(hash, Some(valid_round)));
        }
        self.state.building = true;
        let timestamp = TimestampMs(now.0.max(self.head_timestamp.0.saturating_add(1)));
        Some(vec![Command::BuildBlock { height: self.state.height, timestamp }])
    }

    /// Signs and sends a proposal for the current round, and takes it as received and valid.
    fn propose(&mut self, block: BlockHash, pol_round: Option<u32>) -> Vec<Command> {
        let Some(key) = self.signing_key() else { return vec![] };
        let round = self.state.round;
        if self.state.own.contains_key(&(round, Slot::Proposal)) {
            return vec![];
        }
        let proposal = Proposal { height: self.state.height, round, block, pol_round };
        let signature = key.sign(proposal.signing_hash(&self.chain_id).as_bytes());
        let signed = SignedProposal { proposal, proposer: key.public_key(), signature };
        let message = Message::Proposal(signed);
        self.state.own.insert((round, Slot::Proposal), message);
        self.accept_proposal(signed, true);
        vec![broadcast(&message)]
    }

    /// Upon the round's proposal while in the propose step: prevote it if it is valid and our
    /// lock allows (no lock, the same value, or a polka for it newer than our lock), else nil.
    fn prevote_on_proposal(&mut self) -> Option<Vec<Command>> {
        let state = &self.state;
        if state.step != Step::Propose {
            return None;
        }
        let (signed, valid) = state.proposals.get(&state.round)?;
        let proposal = signed.proposal;
        let value = proposal.block;
        let lock_allows = match proposal.pol_round {
            None => state.locked.is_none_or(|(locked, _)| locked == value),
            Some(pol_round) => {
                let polka = pol_round < state.round
                    && state.vote_set(pol_round, VoteKind::Prevote).is_some_and(|set| {
                        more_than_two_thirds(set.power_for(Some(value)), self.total_power)
                    });
                if !polka {
                    return None;
                }
                state.locked.is_none_or(|(locked, locked_round)| {
                    locked_round <= pol_round || locked == value
                })
            }
        };
        let block = (*valid && lock_allows).then_some(value);
        self.state.step = Step::Prevote;
        Some(self.cast(VoteKind::Prevote, block))
    }

    /// Upon the round's valid proposal and prevotes for it from more than two thirds, the
    /// first time in the prevote step or later: lock on it and precommit it (if still
    /// prevoting), and remember it as the valid value.
    fn precommit_on_polka(&mut self) -> Option<Vec<Command>> {
        let state = &self.state;
        if state.step < Step::Prevote || state.flags.polka_seen {
            return None;
        }
        let (signed, valid) = state.proposals.get(&state.round)?;
        let value = signed.proposal.block;
        let polka = state
            .vote_set(state.round, VoteKind::Prevote)
            .is_some_and(|set| more_than_two_thirds(set.power_for(Some(value)), self.total_power));
        if !*valid || !polka {
            return None;
        }
        let round = state.round;
        self.state.flags.polka_seen = true;
        let mut commands = vec![];
        if self.state.step == Step::Prevote {
            self.state.locked = Some((value, round));
            self.state.step = Step::Precommit;
            commands = self.cast(VoteKind::Precommit, Some(value));
        }
        self.state.valid = Some((value, round));
        Some(commands)
    }

    /// Upon prevotes for nil from more than two thirds while prevoting: precommit nil.
    fn precommit_nil_on_nil_polka(&mut self) -> Option<Vec<Command>> {
        let state = &self.state;
        let nil_polka = state
            .vote_set(state.round, VoteKind::Prevote)
            .is_some_and(|set| more_than_two_thirds(set.power_for(None), self.total_power));
        if state.step != Step::Prevote || !nil_polka {
            return None;
        }
        self.state.step = Step::Precommit;
        Some(self.cast(VoteKind::Precommit, None))
    }

    /// Upon prevotes (while prevoting) or precommits from more than two thirds for anything,
    /// the first time in the round: start the prevote or precommit timeout.
    fn schedule_vote_timers(&mut self, now: TimestampMs) -> Option<Vec<Command>> {
        let round = self.state.round;
        let deadline = later(now, self.timeouts.vote(round));
        let quorum = |kind| {
            self.state
                .vote_set(round, kind)
                .is_some_and(|set| more_than_two_thirds(set.power, self.total_power))
        };
        if self.state.step == Step::Prevote
            && !self.state.flags.prevote_timer_set
            && quorum(VoteKind::Prevote)
        {
            self.state.flags.prevote_timer_set = true;
            self.state.timers.prevote = Some(deadline);
            return Some(vec![]);
        }
        if !self.state.flags.precommit_timer_set && quorum(VoteKind::Precommit) {
            self.state.flags.precommit_timer_set = true;
            self.state.timers.precommit = Some(deadline);
            return Some(vec![]);
        }
        None
    }

    /// `OnTimeoutPropose`, `OnTimeoutPrevote` and `OnTimeoutPrecommit` for deadlines that have
    /// passed.
    fn expire_timers(&mut self, now: TimestampMs) -> Option<Vec<Command>> {
        let expired = |deadline: Option<TimestampMs>| deadline.is_some_and(|at| at <= now);
        let timers = self.state.timers;
        if expired(timers.propose) {
            self.state.timers.propose = None;
            if self.state.step != Step::Propose {
                return Some(vec![]);
            }
            self.state.step = Step::Prevote;
            return Some(self.cast(VoteKind::Prevote, None));
        }
        if expired(timers.prevote) {
            self.state.timers.prevote = None;
            if self.state.step != Step::Prevote {
                return Some(vec![]);
            }
            self.state.step = Step::Precommit;
            return Some(self.cast(VoteKind::Precommit, None));
        }
        if expired(timers.precommit) {
            self.state.timers.precommit = None;
            let next = self.state.round.checked_add(1)?;
            return Some(self.start_round(now, next));
        }
        None
    }

    /// Signs and sends our vote for the current round, or (after a restart) sends again the
    /// vote we already signed for it, whatever `block` is now.
    fn cast(&mut self, kind: VoteKind, block: Option<BlockHash>) -> Vec<Command> {
        if !self.can_sign() {
            return vec![];
        }
        let Some(key) = self.signing_key() else { return vec![] };
        let round = self.state.round;
        if let Some(signed_before) = self.state.own.get(&(round, Slot::of_vote(kind))) {
            return vec![broadcast(signed_before)];
        }
        let vote = Vote { height: self.state.height, round, kind, block };
        let signature = key.sign(vote.signing_hash(&self.chain_id).as_bytes());
        let signed = SignedVote { vote, validator: key.public_key(), signature };
        let message = Message::Vote(signed);
        self.state.own.insert((round, Slot::of_vote(kind)), message);
        self.accept_vote(signed);
        vec![broadcast(&message)]
    }

    /// Asks to be woken at the earliest deadline still pending, if that is a new request.
    fn wake_command(&mut self, now: TimestampMs) -> Option<Command> {
        let state = &self.state;
        if state.decided {
            return None;
        }
        let proposing = state.step == Step::Propose && !state.building && self.can_sign();
        let deadlines = [
            state.propose_at.filter(|_| proposing),
            state.timers.propose.filter(|_| state.step == Step::Propose),
            state.timers.prevote.filter(|_| state.step == Step::Prevote),
            state.timers.precommit,
        ];
        let earliest = deadlines.into_iter().flatten().filter(|at| *at > now).min()?;
        if self.wake == Some(earliest) {
            return None;
        }
        self.wake = Some(earliest);
        Some(Command::WakeAt { at: earliest })
    }
}

impl Engine for TendermintEngine {
    fn handle(&mut self, now: TimestampMs, event: Event) -> Vec<Command> {
        let mut commands = vec![];
        match event {
            Event::Tick => {
                if self.wake.is_some_and(|at| at <= now) {
                    self.wake = None;
                }
            }
            Event::PendingChanged { ready } => {
                self.ready = ready;
                if self.state.round == 0 && self.state.propose_at.is_some() {
                    self.state.propose_at = Some(self.round_zero_due());
                }
            }
            Event::BlockBuilt { header } => commands.extend(self.on_block_built(&header)),
            Event::Committed { header } => self.on_committed(&header),
            Event::Message { message, block } => self.on_message(&message, block),
            Event::Syncing { behind } => self.syncing = behind,
            Event::Validators { from, validators } => {
                if from <= self.state.height {
                    self.install(validators);
                } else if self.upcoming.len() < MAX_UPCOMING_SETS {
                    self.upcoming.insert(from, validators);
                }
            }
            // Final blocks, proposed by the validators in turn: no forks, no mining.
            Event::Stored { .. }
            | Event::Invalid { .. }
            | Event::Mining { .. }
            | Event::Mined { .. } => {}
        }
        if self.state.needs_start {
            let round = self.state.round;
            commands.extend(self.start_round(now, round));
        }
        commands.extend(self.progress(now));
        commands.extend(self.wake_command(now));
        commands
    }
}

/// The validator that proposes at `height` and `round`: a deterministic rotation in which each
/// validator's share of turns is proportional to its voting power.
///
/// With powers divided by their greatest common divisor and `P` their sum, position
/// `p = ((height + round) * k) mod P` for a stride `k` coprime with `P` (the largest one at
/// most `0.618 P`), and the proposer is the validator whose cumulative-power interval contains
/// `p`, in the order given. Over any `P` consecutive values of `height + round` every validator
/// proposes exactly as often as its (reduced) power; with equal powers the rotation is a round
/// robin in which consecutive rounds have different proposers. `None` only for an empty set.
pub fn proposer(validators: &[Validator], height: Height, round: u32) -> Option<&Validator> {
    let first = validators.first()?;
    let divisor = validators.iter().fold(0u128, |divisor, v| gcd(divisor, u128::from(v.power)));
    if divisor == 0 {
        // Nobody has power (a genesis refuses this): take turns by position.
        let turn = u128::from(height.0).saturating_add(u128::from(round));
        let index = usize::try_from(turn % validators.len() as u128).unwrap_or(0);
        return validators.get(index).or(Some(first));
    }
    let total = total_power(validators) / divisor;
    let stride = stride(total);
    let turn = (u128::from(height.0).saturating_add(u128::from(round))) % total;
    let position = mul_mod(turn, stride, total);
    let mut end: u128 = 0;
    for validator in validators {
        end = end.saturating_add(u128::from(validator.power) / divisor);
        if position < end {
            return Some(validator);
        }
    }
    Some(first)
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The largest `k <= total * 0.618` coprime with `total`, at least 1.
fn stride(total: u128) -> u128 {
    let mut k = (total / 1000).saturating_mul(618).saturating_add((total % 1000) * 618 / 1000);
    while k > 1 && gcd(k, total) != 1 {
        k -= 1;
    }
    k.max(1)
}

/// `a * b mod m` for `a, b < m`, without overflow.
fn mul_mod(a: u128, b: u128, m: u128) -> u128 {
    if let Some(product) = a.checked_mul(b) {
        return product % m;
    }
    let (mut result, mut base, mut factor) = (0u128, a % m, b);
    while factor > 0 {
        if factor & 1 == 1 {
            result = add_mod(result, base, m);
        }
        base = add_mod(base, base, m);
        factor >>= 1;
    }
    result
}

/// `a + b mod m` for `a, b < m`, without overflow.
fn add_mod(a: u128, b: u128, m: u128) -> u128 {
    if a >= m - b { a - (m - b) } else { a + b }
}

#[cfg(test)]
mod tests;
