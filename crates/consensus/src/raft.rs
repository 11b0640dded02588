//! A Raft engine: an elected leader proposes every block, and a block is committed once
//! validators holding more than half of the voting power have it durably.
//!
//! The algorithm is Raft ("In Search of an Understandable Consensus Algorithm", Ongaro and
//! Ousterhout, 2014, and Ongaro's thesis for pre-vote and check-quorum) with the block height
//! as the log index and these choices, all explained in `docs/design/consensus.md`:
//!
//! - **One entry in flight.** The log is the committed chain plus at most one entry after it
//!   (`pending`): the leader appends block `h + 1` only once `h` is committed. Votes compare
//!   [`LogPosition`]s (committed head first, then the term of the pending entry).
//! - **A new leader commits what it inherited first**: it appends its pending entry again in
//!   its own term (same block, new term) and commits it like a new one; without one it
//!   proposes a block at once.
//! - **Durability.** The term and vote are kept with [`Command::SaveState`], which the node
//!   writes before any later command leaves it. A follower makes an entry durable by
//!   broadcasting the leader's append it accepts, with the block: the node logs it (block
//!   included) before sending anything else, and the network has already seen that exact
//!   message, so nothing travels twice. Only then does it acknowledge.
//! - **Commit proof.** The leader's signed append and the acknowledgements of a majority are
//!   a [`RaftCertificate`], the block's [`ConsensusProof::Raft`]. Every node counts the
//!   acknowledgements it sees (the network passes every message on), so followers commit as
//!   soon as the leader does; a follower that missed them commits from the certificate in the
//!   next heartbeat, and one further behind catches up through the node's block sync.
//! - **Pre-vote and check-quorum.** A node asks whether it could win before it enters a new
//!   term; a validator that heard from its leader within the election timeout refuses (the
//!   leader lease), so a node rejoining after a partition does not depose a healthy leader;
//!   a leader that has not heard from a majority within an election timeout steps down.
//! - **Validator sets.** The validators of a height are fixed at least two heights before it
//!   by a committed block ([`Event::Validators`]); each height is decided by its own set.
//!   Votes for a candidate whose next height is `h` are counted among the validators of `h`,
//!   and a leader proposes at a height only while the validators that elected it are a
//!   majority of that height's set (otherwise it steps down and that set elects a leader).
//!
//! Election timeouts are randomised without randomness: each is the base timeout plus a part
//! of it drawn from a hash of the node's key, its term and a counter, so runs are
//! reproducible and nodes differ.

mod message;

pub use message::{
    Ballot, Campaign, Commit, Heartbeat, LogPosition, Message, Reply, Signed, decode, encode,
};

use crate::engine::{BlockCheck, Command, Engine, EngineMessage, EngineStatus, Event, Role};
use crate::power::{more_than_half, power_of, total_power};
use crate::proof::raft_signatures;
use crate::tendermint::SignatureCheck;
use message::sign;
use primitives::{
    Address, BlockHash, ChainConfig, ChainId, ChainParams, CommitSignature, ConsensusProof, Hash,
    Header, Height, PublicKey, RaftCertificate, RaftEntry, SecretKey, Signature, Term, TimestampMs,
    Validator,
};
use std::collections::{BTreeMap, BTreeSet};

/// How long a Raft node waits (wall time, converted into chain time by [`RaftTimeouts::scaled`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RaftTimeouts {
    /// The election timeout: a follower that hears nothing from a leader for a random time
    /// between this and twice this asks for votes; a leader that has not heard from a
    /// majority for this long steps down; a validator that heard from its leader within this
    /// refuses to vote for anyone else.
    pub election_ms: u64,
    /// How often the leader sends heartbeats.
    pub heartbeat_ms: u64,
}

impl Default for RaftTimeouts {
    fn default() -> RaftTimeouts {
        RaftTimeouts { election_ms: 1000, heartbeat_ms: 200 }
    }
}

impl RaftTimeouts {
    /// The same wall durations in the chain time of `time`.
    pub fn scaled(self, time: &primitives::TimeScale) -> RaftTimeouts {
        RaftTimeouts {
            election_ms: time.chain_span(self.election_ms).max(1),
            heartbeat_ms: time.chain_span(self.heartbeat_ms).max(1),
        }
    }
}

/// A leader whose entry has no majority of acknowledgements after this many election
/// timeouts steps down (its followers may be unable to take the block), so that another can
/// try.
const STALLED_ENTRY_TIMEOUTS: u64 = 5;
/// Most distinct entries whose acknowledgements are kept (all for the height after the head).
const MAX_ACKED_ENTRIES: usize = 8;
/// Most validator sets waiting for their height (a node tells of at most two at a time).
const MAX_UPCOMING_SETS: usize = 8;

/// The state kept with [`Command::SaveState`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
struct Durable {
    term: Term,
    voted_for: Option<PublicKey>,
}

/// The entry after the head this node holds, with the leader's signed append.
#[derive(Clone, Debug)]
struct Pending {
    entry: RaftEntry,
    leader: PublicKey,
    leader_signature: Signature,
}

/// What a leader keeps.
#[derive(Clone, Debug)]
struct Leadership {
    /// Who voted for it (itself included).
    voters: BTreeSet<PublicKey>,
    /// When each follower was last heard (acknowledgements, replies) in this term.
    heard: BTreeMap<PublicKey, TimestampMs>,
    next_heartbeat: TimestampMs,
    /// When to check that a majority was heard within the last election timeout.
    quorum_check: TimestampMs,
    /// A block was asked for with [`Command::BuildBlock`] and has not come yet.
    building: bool,
    /// No block of this term has been committed yet: the first one is proposed at once.
    fresh: bool,
    /// When the entry of this term at the height after the head was appended, and when it was
    /// last sent again to followers that had not acknowledged it.
    appended_at: Option<TimestampMs>,
    resent_at: Option<TimestampMs>,
}

#[derive(Clone, Debug)]
enum State {
    Follower,
    /// Sounding out whether it could win the next term (pre-vote): who said yes.
    PreCandidate {
        grants: BTreeSet<PublicKey>,
    },
    /// Asking for votes in its term: who voted for it.
    Candidate {
        grants: BTreeSet<PublicKey>,
    },
    Leader(Leadership),
}

/// The Raft engine of one node (a validator, or a full node that only follows).
#[derive(Debug)]
pub struct RaftEngine {
    chain_id: ChainId,
    params: ChainParams,
    timeouts: RaftTimeouts,
    key: Option<SecretKey>,
    /// The validators of the height after the head.
    validators: Vec<Validator>,
    /// Sets that take over at later heights, by first height.
    upcoming: BTreeMap<Height, Vec<Validator>>,
    /// The last committed block, proof included.
    head: Header,
    term: Term,
    voted_for: Option<PublicKey>,
    state: State,
    /// The leader of the current term, if known.
    leader: Option<PublicKey>,
    /// When this node last heard from the current term's leader.
    leader_contact: Option<TimestampMs>,
    /// When a follower or candidate starts an election; set at the first event.
    election_at: Option<TimestampMs>,
    /// Elections timed so far (for the randomised timeouts).
    timers_drawn: u64,
    pending: Option<Pending>,
    /// Acknowledgements seen for entries at the height after the head.
    acks: BTreeMap<RaftEntry, BTreeMap<PublicKey, Signature>>,
    /// [`Command::Commit`] was emitted for this block; waiting for [`Event::Committed`].
    committing: Option<BlockHash>,
    ready: usize,
    syncing: bool,
    /// The wake-up last asked for.
    wake: Option<TimestampMs>,
    /// The term and vote changed and must be kept before any message leaves.
    unsaved: bool,
    signatures: SignatureCheck,
    /// The commands of the event being handled.
    out: Vec<Command>,
}

impl RaftEngine {
    /// An engine resuming after `head`, with `config.validators` those of the height after it.
    /// `key` is this node's key: it takes part while the key belongs to a validator. `state` is
    /// what it last kept ([`Command::SaveState`]) and `restored` the messages it logged for the
    /// height after `head`, read back after a restart.
    pub fn new(
        config: &ChainConfig,
        key: Option<SecretKey>,
        head: &Header,
        state: Option<&[u8]>,
        restored: Vec<Message>,
        timeouts: RaftTimeouts,
    ) -> RaftEngine {
        let durable = state
            .and_then(|bytes| primitives::decode::<Durable>(bytes).ok())
            .unwrap_or(Durable { term: Term(0), voted_for: None });
        let mut engine = RaftEngine {
            chain_id: config.chain_id.clone(),
            params: config.params.clone(),
            timeouts,
            key,
            validators: config.validators.clone(),
            upcoming: BTreeMap::new(),
            head: head.clone(),
            term: durable.term,
            voted_for: durable.voted_for,
            state: State::Follower,
            leader: None,
            leader_contact: None,
            election_at: None,
            timers_drawn: 0,
            pending: None,
            acks: BTreeMap::new(),
            committing: None,
            ready: 0,
            syncing: false,
            wake: None,
            unsaved: false,
            signatures: SignatureCheck::default(),
            out: Vec::new(),
        };
        engine.restore(restored);
        engine.learn_term(head);
        engine
    }

    /// A committed block's certificate names the term its leader led: this node's term is
    /// never lower. A node that missed that election (it was down, or it synced the block)
    /// must not campaign in a term in which another node led; after a membership change the
    /// two may even need no common voter.
    /// Returns whether the term went up.
    fn learn_term(&mut self, header: &Header) -> bool {
        let ConsensusProof::Raft(certificate) = &header.proof else { return false };
        let later = self.take_term(certificate.term);
        if later {
            self.state = State::Follower;
        }
        later
    }

    /// The same engine, checking signatures with `check` (see [`SignatureCheck`]).
    pub fn with_signature_check(mut self, check: SignatureCheck) -> RaftEngine {
        self.signatures = check;
        self
    }

    /// The current term.
    pub fn term(&self) -> Term {
        self.term
    }

    /// Whether this node leads.
    pub fn is_leader(&self) -> bool {
        matches!(self.state, State::Leader(_))
    }

    /// Where this node's log ends.
    pub fn position(&self) -> LogPosition {
        LogPosition {
            head: self.head.height,
            pending: self.pending.as_ref().map(|pending| pending.entry.term),
        }
    }

    /// The entry after the head this node holds, if any.
    pub fn pending(&self) -> Option<RaftEntry> {
        self.pending.as_ref().map(|pending| pending.entry)
    }

    /// Takes back the appends logged before a restart: the one of the highest term for the
    /// height after the head is the pending entry. A term is never lower than one it logged.
    fn restore(&mut self, restored: Vec<Message>) {
        let next = self.next_height();
        for message in restored {
            let Message::Append(signed) = &message else { continue };
            let entry = signed.body;
            let newer = self.pending.as_ref().is_none_or(|pending| entry.term > pending.entry.term);
            if entry.height == next && newer && self.signature_holds(&message) {
                self.pending = Some(Pending {
                    entry,
                    leader: signed.signer,
                    leader_signature: signed.signature,
                });
            }
        }
        if let Some(pending) = &self.pending
            && pending.entry.term > self.term
        {
            self.term = pending.entry.term;
            self.voted_for = None;
            self.unsaved = true;
        }
    }

    // ---- Who is who ----------------------------------------------------------------------

    fn next_height(&self) -> Height {
        self.head.height.next().unwrap_or(self.head.height)
    }

    /// The validators of `height` (the one after the head or a later one).
    fn validators_at(&self, height: Height) -> &[Validator] {
        self.upcoming.range(..=height).next_back().map_or(&self.validators, |(_, set)| set)
    }

    fn our_key(&self) -> Option<PublicKey> {
        self.key.as_ref().map(SecretKey::public_key)
    }

    /// Our key, if it is a validator's at `height`.
    fn key_at(&self, height: Height) -> Option<&SecretKey> {
        let key = self.key.as_ref()?;
        power_of(self.validators_at(height), &key.public_key()).map(|_| key)
    }

    /// Whether we take part in deciding the height after the head (sign, vote, campaign).
    fn participates(&self) -> bool {
        !self.syncing && self.key_at(self.next_height()).is_some()
    }

    /// Whether `members` hold more than half of the voting power of `height`.
    fn is_majority(&self, height: Height, members: &BTreeSet<PublicKey>) -> bool {
        let validators = self.validators_at(height);
        let power = members
            .iter()
            .filter_map(|member| power_of(validators, member))
            .fold(0u128, |sum, power| sum.saturating_add(u128::from(power)));
        more_than_half(power, total_power(validators))
    }

    fn signature_holds(&self, message: &Message) -> bool {
        let (hash, signature) = message.signed(&self.chain_id);
        self.signatures.holds(&message.signer(), &hash, &signature)
    }

    /// Whether a message is signed, by a validator of the height it is about.
    fn authentic(&self, message: &Message) -> bool {
        power_of(self.validators_at(message.height()), &message.signer()).is_some()
            && self.signature_holds(message)
    }

    /// A randomised election timeout: between one and two base timeouts.
    fn election_timeout(&mut self) -> u64 {
        let base = self.timeouts.election_ms.max(1);
        self.timers_drawn = self.timers_drawn.wrapping_add(1);
        let key = self.our_key().map_or([0; 32], |key| key.0);
        let draw = Hash::digest(
            b"joule/raft/election-timeout",
            &[&key, &self.term.0.to_le_bytes(), &self.timers_drawn.to_le_bytes()],
        );
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&draw.0[..8]);
        base.saturating_add(u64::from_le_bytes(bytes) % base)
    }

    fn reset_election_timer(&mut self, now: TimestampMs) {
        let timeout = self.election_timeout();
        self.election_at = Some(later(now, timeout));
    }

    /// Whether this node heard from a leader recently enough to refuse other candidates.
    fn in_lease(&self, now: TimestampMs) -> bool {
        match self.state {
            State::Leader(_) => true,
            _ => {
                self.leader.is_some()
                    && self
                        .leader_contact
                        .is_some_and(|at| now.0 < at.0.saturating_add(self.timeouts.election_ms))
            }
        }
    }

    // ---- Terms and output ----------------------------------------------------------------

    /// Moves to a later term as a follower, with no vote cast in it yet.
    fn enter_term(&mut self, term: Term, now: TimestampMs) {
        if self.take_term(term) {
            self.become_follower(now);
        }
    }

    /// Moves to `term` if it is later, with no vote and no known leader yet (to be saved);
    /// returns whether it was.
    fn take_term(&mut self, term: Term) -> bool {
        if term <= self.term {
            return false;
        }
        self.term = term;
        self.voted_for = None;
        self.unsaved = true;
        self.leader = None;
        self.leader_contact = None;
        true
    }

    fn become_follower(&mut self, now: TimestampMs) {
        if !matches!(self.state, State::Follower) {
            self.state = State::Follower;
            self.reset_election_timer(now);
        }
    }

    /// Keeps the term and vote durably, if they changed, before anything else goes out.
    fn save_if_changed(&mut self) {
        if self.unsaved {
            self.unsaved = false;
            let durable = Durable { term: self.term, voted_for: self.voted_for };
            self.out.push(Command::SaveState(primitives::encode(&durable)));
        }
    }

    /// Sends `message` to validator `to` (after keeping the term and vote).
    fn send(&mut self, to: PublicKey, message: &Message) {
        self.save_if_changed();
        self.out.push(Command::Send { to, message: encode(message), block: message.block() });
    }

    /// Sends `message` to every validator of the height after the head but us.
    fn send_to_validators(&mut self, message: &Message) {
        let us = self.our_key();
        let others: Vec<PublicKey> = self
            .validators_at(self.next_height())
            .iter()
            .map(|validator| validator.key)
            .filter(|key| Some(*key) != us)
            .collect();
        for to in others {
            self.send(to, message);
        }
    }

    /// Logs `message` (with its block) and sends it to every peer.
    fn broadcast(&mut self, message: EngineMessage, block: Option<BlockHash>) {
        self.save_if_changed();
        self.out.push(Command::Broadcast { message, block });
    }

    fn signed_by_us(
        &self,
        height: Height,
        sign_with: impl FnOnce(&ChainId, &SecretKey) -> Message,
    ) -> Option<Message> {
        let key = self.key_at(height)?;
        Some(sign_with(&self.chain_id, key))
    }

    // ---- Incoming messages -----------------------------------------------------------------

    fn on_message(&mut self, now: TimestampMs, bytes: &EngineMessage, check: Option<BlockCheck>) {
        let Some(message) = decode(bytes) else { return };
        if Some(message.signer()) == self.our_key() || !self.authentic(&message) {
            return;
        }
        match message {
            Message::Campaign(signed) => self.on_campaign(now, signed),
            Message::Ballot(signed) => self.on_ballot(now, signed),
            Message::Append(signed) => self.on_append(now, bytes, signed, check),
            Message::Ack(signed) => self.on_ack(now, signed),
            Message::Heartbeat(signed) => self.on_heartbeat(now, signed),
            Message::Reply(signed) => self.on_reply(now, signed),
        }
    }

    /// A message from the leader of `term`: a later term makes us its follower; our own term
    /// makes us follow it (a candidate gives up). Returns false for a stale term, which the
    /// sender is told of.
    fn heard_leader(
        &mut self,
        now: TimestampMs,
        leader: PublicKey,
        term: Term,
        height: Height,
        sent_at: TimestampMs,
    ) -> bool {
        if term < self.term {
            let reply = Reply { term: self.term, leader, height, sent_at };
            if let Some(message) = self.signed_by_us(self.next_height(), |chain, key| {
                sign(chain, key, reply, Message::Reply)
            }) {
                self.send(leader, &message);
            }
            return false;
        }
        self.enter_term(term, now);
        if self.is_leader() || self.leader.is_some_and(|known| known != leader) {
            // Two leaders in one term cannot both be right: keep to the first one heard.
            return false;
        }
        self.become_follower(now);
        self.leader = Some(leader);
        self.leader_contact = Some(now);
        self.reset_election_timer(now);
        true
    }

    fn on_append(
        &mut self,
        now: TimestampMs,
        bytes: &EngineMessage,
        signed: Signed<RaftEntry>,
        check: Option<BlockCheck>,
    ) {
        let entry = signed.body;
        if !self.heard_leader(now, signed.signer, entry.term, entry.height, TimestampMs(0)) {
            return;
        }
        let valid = check.is_some_and(|check| check.hash == entry.block && check.valid);
        if entry.height != self.next_height() || !valid || self.committing.is_some() {
            return;
        }
        let validator = self.key_at(entry.height).is_some();
        if validator && self.syncing {
            return;
        }
        let known = self.pending.as_ref().is_some_and(|pending| pending.entry == entry);
        if !known {
            self.pending =
                Some(Pending { entry, leader: signed.signer, leader_signature: signed.signature });
            if validator {
                // Durable first: the node logs this very append with its block. It sends it
                // nowhere: the leader sent it to every peer.
                self.save_if_changed();
                self.out.push(Command::Log { message: bytes.clone(), block: Some(entry.block) });
            }
        }
        if validator
            && let Some(ack) =
                self.signed_by_us(entry.height, |chain, key| sign(chain, key, entry, Message::Ack))
        {
            self.send(signed.signer, &ack);
        }
        self.try_commit();
    }

    fn on_ack(&mut self, now: TimestampMs, signed: Signed<RaftEntry>) {
        let entry = signed.body;
        if let State::Leader(leadership) = &mut self.state
            && entry.term == self.term
        {
            leadership.heard.insert(signed.signer, now);
        }
        // Also those of the height after: they come while this node writes the block before.
        let next = self.next_height();
        if entry.height != next && Some(entry.height) != next.next() {
            return;
        }
        if !self.acks.contains_key(&entry) && self.acks.len() >= MAX_ACKED_ENTRIES {
            return;
        }
        self.acks.entry(entry).or_default().insert(signed.signer, signed.signature);
        self.try_commit();
    }

    fn on_heartbeat(&mut self, now: TimestampMs, signed: Signed<Heartbeat>) {
        let heartbeat = signed.body;
        let leader = signed.signer;
        if !self.heard_leader(now, leader, heartbeat.term, heartbeat.height, heartbeat.sent_at) {
            return;
        }
        if self.participates() {
            let reply = Reply {
                term: self.term,
                leader,
                height: heartbeat.height,
                sent_at: heartbeat.sent_at,
            };
            if let Some(message) = self.signed_by_us(self.next_height(), |chain, key| {
                sign(chain, key, reply, Message::Reply)
            }) {
                self.send(leader, &message);
            }
        }
        if let Some(commit) = heartbeat.commit {
            self.commit_certified(commit);
        }
    }

    fn on_reply(&mut self, now: TimestampMs, signed: Signed<Reply>) {
        let reply = signed.body;
        if Some(reply.leader) != self.our_key() {
            return;
        }
        if reply.term > self.term {
            self.enter_term(reply.term, now);
            return;
        }
        if let State::Leader(leadership) = &mut self.state
            && reply.term == self.term
        {
            leadership.heard.insert(signed.signer, now);
        }
    }

    fn on_campaign(&mut self, now: TimestampMs, signed: Signed<Campaign>) {
        let campaign = signed.body;
        let candidate = signed.signer;
        let height = campaign.position.head.next().unwrap_or(campaign.position.head);
        // Only the validators of the height the candidate campaigns for have a say.
        if self.syncing || self.key_at(height).is_none() {
            return;
        }
        let up_to_date = campaign.position >= self.position();
        let granted = if campaign.pre {
            if self.in_lease(now) {
                return;
            }
            campaign.term > self.term && up_to_date
        } else {
            if campaign.term > self.term {
                if self.in_lease(now) {
                    return;
                }
                self.enter_term(campaign.term, now);
            }
            let free = self.voted_for.is_none_or(|voted| voted == candidate);
            let granted = campaign.term == self.term && free && up_to_date && !self.is_leader();
            if granted {
                // Kept before the ballot leaves (unless it repeats a vote already kept).
                if self.voted_for != Some(candidate) {
                    self.unsaved = true;
                }
                self.voted_for = Some(candidate);
                self.reset_election_timer(now);
            }
            granted
        };
        let term = if granted { campaign.term } else { self.term };
        let ballot = Ballot { term, pre: campaign.pre, candidate, height, granted };
        if let Some(message) =
            self.signed_by_us(height, |chain, key| sign(chain, key, ballot, Message::Ballot))
        {
            self.send(candidate, &message);
        }
    }

    fn on_ballot(&mut self, now: TimestampMs, signed: Signed<Ballot>) {
        let ballot = signed.body;
        if Some(ballot.candidate) != self.our_key() || ballot.height != self.next_height() {
            return;
        }
        if ballot.term > self.term && !(ballot.pre && ballot.granted) {
            self.enter_term(ballot.term, now);
            return;
        }
        let next_term = self.term.next().unwrap_or(self.term);
        let height = self.next_height();
        let won = match &mut self.state {
            State::PreCandidate { grants }
                if ballot.pre && ballot.granted && ballot.term == next_term =>
            {
                grants.insert(signed.signer);
                Some(grants.clone())
            }
            State::Candidate { grants }
                if !ballot.pre && ballot.granted && ballot.term == self.term =>
            {
                grants.insert(signed.signer);
                Some(grants.clone())
            }
            _ => None,
        };
        if let Some(grants) = won
            && self.is_majority(height, &grants)
        {
            match self.state {
                State::PreCandidate { .. } => self.campaign(now),
                _ => self.lead(now, grants),
            }
        }
    }

    // ---- Elections ---------------------------------------------------------------------------

    /// The election timeout passed: sound out the validators for the next term (pre-vote).
    fn pre_campaign(&mut self, now: TimestampMs) {
        let Some(us) = self.our_key() else { return };
        self.state = State::PreCandidate { grants: BTreeSet::from([us]) };
        self.leader = None;
        self.reset_election_timer(now);
        let term = self.term.next().unwrap_or(self.term);
        let campaign = Campaign { term, pre: true, position: self.position() };
        let height = self.next_height();
        if let Some(message) =
            self.signed_by_us(height, |chain, key| sign(chain, key, campaign, Message::Campaign))
        {
            self.send_to_validators(&message);
        }
        if self.is_majority(height, &BTreeSet::from([us])) {
            self.campaign(now);
        }
    }

    /// A majority would vote for us: enter the next term and ask for their votes.
    fn campaign(&mut self, now: TimestampMs) {
        let Some(us) = self.our_key() else { return };
        let Some(term) = self.term.next() else { return };
        self.term = term;
        self.voted_for = Some(us);
        self.unsaved = true;
        self.leader = None;
        self.leader_contact = None;
        self.state = State::Candidate { grants: BTreeSet::from([us]) };
        self.reset_election_timer(now);
        let campaign = Campaign { term, pre: false, position: self.position() };
        let height = self.next_height();
        if let Some(message) =
            self.signed_by_us(height, |chain, key| sign(chain, key, campaign, Message::Campaign))
        {
            self.send_to_validators(&message);
        }
        if self.is_majority(height, &BTreeSet::from([us])) {
            self.lead(now, BTreeSet::from([us]));
        }
        self.save_if_changed();
    }

    /// Elected by `voters`.
    fn lead(&mut self, now: TimestampMs, voters: BTreeSet<PublicKey>) {
        self.state = State::Leader(Leadership {
            voters,
            heard: BTreeMap::new(),
            next_heartbeat: now,
            quorum_check: later(now, self.timeouts.election_ms),
            building: false,
            fresh: true,
            appended_at: None,
            resent_at: None,
        });
        self.leader = self.our_key();
        self.leader_contact = Some(now);
        self.election_at = None;
    }

    fn step_down(&mut self, now: TimestampMs) {
        if self.is_leader() {
            self.state = State::Follower;
            self.leader = None;
            self.leader_contact = None;
            self.reset_election_timer(now);
        }
    }

    // ---- The leader --------------------------------------------------------------------------

    fn leadership(&mut self) -> Option<&mut Leadership> {
        match &mut self.state {
            State::Leader(leadership) => Some(leadership),
            _ => None,
        }
    }

    /// The leader's duties at `now`: heartbeats, the quorum check, the next block.
    fn lead_on(&mut self, now: TimestampMs) {
        let election_ms = self.timeouts.election_ms;
        let height = self.next_height();
        let Some(leadership) = self.leadership() else { return };
        if leadership.quorum_check <= now {
            let since = TimestampMs(now.0.saturating_sub(election_ms));
            let mut active: BTreeSet<PublicKey> = leadership
                .heard
                .iter()
                .filter(|(_, at)| **at >= since)
                .map(|(key, _)| *key)
                .collect();
            active.extend(self.our_key());
            if !self.is_majority(height, &active) {
                self.step_down(now);
                return;
            }
            if let Some(leadership) = self.leadership() {
                leadership.quorum_check = later(now, election_ms);
            }
        }
        let stalled =
            self.leadership().and_then(|leadership| leadership.appended_at).is_some_and(|at| {
                now.0 >= at.0.saturating_add(election_ms.saturating_mul(STALLED_ENTRY_TIMEOUTS))
            });
        if stalled && self.committing.is_none() {
            self.step_down(now);
            return;
        }
        if self.leadership().is_some_and(|leadership| leadership.next_heartbeat <= now) {
            self.heartbeat(now);
        }
        self.propose_when_due(now);
    }

    /// Sends a heartbeat to every validator, and the pending entry again to those that have
    /// not acknowledged it for an election timeout.
    fn heartbeat(&mut self, now: TimestampMs) {
        let commit = match &self.head.proof {
            ConsensusProof::Raft(certificate) => Some(Commit {
                height: self.head.height,
                block: self.head.hash(),
                certificate: certificate.clone(),
            }),
            _ => None,
        };
        let heartbeat =
            Heartbeat { term: self.term, height: self.next_height(), sent_at: now, commit };
        let heartbeat_ms = self.timeouts.heartbeat_ms;
        let election_ms = self.timeouts.election_ms;
        if let Some(leadership) = self.leadership() {
            leadership.next_heartbeat = later(now, heartbeat_ms);
        }
        if let Some(message) = self.signed_by_us(self.next_height(), |chain, key| {
            sign(chain, key, heartbeat, Message::Heartbeat)
        }) {
            self.send_to_validators(&message);
        }
        let Some(pending) = self.pending.clone() else { return };
        let term = self.term;
        let Some(leadership) = self.leadership() else { return };
        let due = leadership
            .resent_at
            .or(leadership.appended_at)
            .is_some_and(|at| now.0 >= at.0.saturating_add(election_ms));
        if pending.entry.term != term || !due {
            return;
        }
        leadership.resent_at = Some(now);
        let acked: BTreeSet<PublicKey> = self
            .acks
            .get(&pending.entry)
            .map(|acks| acks.keys().copied().collect())
            .unwrap_or_default();
        let append = Message::Append(Signed {
            body: pending.entry,
            signer: pending.leader,
            signature: pending.leader_signature,
        });
        let us = self.our_key();
        let laggards: Vec<PublicKey> = self
            .validators_at(pending.entry.height)
            .iter()
            .map(|validator| validator.key)
            .filter(|key| Some(*key) != us && !acked.contains(key))
            .collect();
        for to in laggards {
            self.send(to, &append);
        }
    }

    /// The leader proposes at the height after the head: again the entry it inherited, or a
    /// new block (at once for the first of its term, else one interval after the head).
    fn propose_when_due(&mut self, now: TimestampMs) {
        let height = self.next_height();
        let ours = self.pending.as_ref().is_some_and(|pending| pending.entry.term == self.term);
        let Some(leadership) = self.leadership() else { return };
        if leadership.building || ours {
            return;
        }
        let voters = leadership.voters.clone();
        let fresh = leadership.fresh;
        if self.committing.is_some() || self.syncing {
            return;
        }
        // The validators that elected us must be a majority of this height's set, and we one
        // of them; otherwise this height's validators elect their own leader.
        if self.key_at(height).is_none() || !self.is_majority(height, &voters) {
            self.step_down(now);
            return;
        }
        if let Some(inherited) = self.pending.clone() {
            self.append(now, inherited.entry.block);
            return;
        }
        if !fresh && now < self.proposal_due() {
            return;
        }
        if let Some(leadership) = self.leadership() {
            leadership.building = true;
        }
        let timestamp = TimestampMs(now.0.max(self.head.timestamp.0.saturating_add(1)));
        self.out.push(Command::BuildBlock { height, timestamp });
    }

    /// When the next new block is due: one block interval after the head when transactions
    /// wait, one empty-block interval when none do.
    fn proposal_due(&self) -> TimestampMs {
        let wait = if self.ready > 0 {
            self.params.block_interval_ms
        } else {
            self.params.empty_block_interval_ms
        };
        later(self.head.timestamp, wait)
    }

    /// Appends `block` at the height after the head in our term: signs, logs and sends it.
    fn append(&mut self, now: TimestampMs, block: BlockHash) {
        let height = self.next_height();
        let entry = RaftEntry { term: self.term, height, block };
        let Some(message) =
            self.signed_by_us(height, |chain, key| sign(chain, key, entry, Message::Append))
        else {
            return;
        };
        let Message::Append(signed) = &message else { return };
        self.pending =
            Some(Pending { entry, leader: signed.signer, leader_signature: signed.signature });
        if let Some(leadership) = self.leadership() {
            leadership.appended_at = Some(now);
            leadership.resent_at = None;
        }
        self.broadcast(encode(&message), Some(block));
        self.try_commit();
    }

    fn on_block_built(&mut self, now: TimestampMs, header: &Header) {
        let ours = self.our_key().is_some_and(|key| header.proposer == Address(key));
        let height = self.next_height();
        let Some(leadership) = self.leadership() else { return };
        if !leadership.building || header.height != height || !ours {
            return;
        }
        leadership.building = false;
        self.append(now, header.hash());
    }

    // ---- Committing --------------------------------------------------------------------------

    /// Commits the pending entry once its leader and acknowledging followers are a majority.
    fn try_commit(&mut self) {
        let Some(pending) = self.pending.clone() else { return };
        if self.committing.is_some() || pending.entry.height != self.next_height() {
            return;
        }
        let validators = self.validators_at(pending.entry.height);
        let acks: Vec<CommitSignature> = self
            .acks
            .get(&pending.entry)
            .into_iter()
            .flatten()
            .filter(|(validator, _)| {
                **validator != pending.leader && power_of(validators, validator).is_some()
            })
            .map(|(validator, signature)| CommitSignature {
                validator: *validator,
                signature: *signature,
            })
            .collect();
        let mut signers: BTreeSet<PublicKey> = acks.iter().map(|ack| ack.validator).collect();
        signers.insert(pending.leader);
        if !self.is_majority(pending.entry.height, &signers) {
            return;
        }
        let certificate = RaftCertificate {
            term: pending.entry.term,
            leader: pending.leader,
            leader_signature: pending.leader_signature,
            acks,
        };
        self.committing = Some(pending.entry.block);
        self.out.push(Command::Commit {
            hash: pending.entry.block,
            proof: ConsensusProof::Raft(certificate),
        });
    }

    /// A leader passed on the certificate of a block: commit it if it is the next one and the
    /// certificate holds (the node fetches the block if it does not have it).
    fn commit_certified(&mut self, commit: Commit) {
        if self.committing.is_some() || commit.height != self.next_height() {
            return;
        }
        let Ok(signatures) = raft_signatures(
            &self.chain_id,
            self.validators_at(commit.height),
            commit.height,
            commit.block,
            &commit.certificate,
        ) else {
            return;
        };
        if !signatures
            .iter()
            .all(|(key, hash, signature)| self.signatures.holds(key, hash, signature))
        {
            return;
        }
        self.committing = Some(commit.block);
        self.out.push(Command::Commit {
            hash: commit.block,
            proof: ConsensusProof::Raft(commit.certificate),
        });
    }

    fn on_committed(&mut self, now: TimestampMs, header: &Header) {
        if header.height <= self.head.height {
            return;
        }
        self.head = header.clone();
        if self.learn_term(header) {
            self.reset_election_timer(now);
        }
        let next = self.next_height();
        let later_sets = self.upcoming.split_off(&Height(next.0.saturating_add(1)));
        let due = std::mem::replace(&mut self.upcoming, later_sets);
        if let Some((_, validators)) = due.into_iter().next_back() {
            self.validators = validators;
        }
        if self.pending.as_ref().is_some_and(|pending| pending.entry.height <= header.height) {
            self.pending = None;
        }
        self.acks.retain(|entry, _| entry.height > header.height);
        self.committing = None;
        if let Some(leadership) = self.leadership() {
            leadership.building = false;
            leadership.fresh = false;
            leadership.appended_at = None;
            leadership.resent_at = None;
            // Followers that missed the acknowledgements commit from the new certificate.
            leadership.next_heartbeat = now;
        }
    }

    // ---- Time --------------------------------------------------------------------------------

    /// What is due at `now`: an election, or the leader's duties.
    fn on_time(&mut self, now: TimestampMs) {
        if !self.is_leader() {
            match self.election_at {
                None => self.reset_election_timer(now),
                Some(at) if at <= now => {
                    if self.participates() {
                        self.pre_campaign(now);
                    } else {
                        self.reset_election_timer(now);
                    }
                }
                Some(_) => {}
            }
        }
        // Also right after winning: the first heartbeats and proposal go out at once.
        if self.is_leader() {
            self.lead_on(now);
        }
    }

    /// Asks to be woken at the earliest deadline, if that is a new request.
    fn wake_command(&mut self, now: TimestampMs) -> Option<Command> {
        let earliest = match &self.state {
            State::Leader(leadership) => {
                let proposing = !leadership.building
                    && self.committing.is_none()
                    && self.pending.as_ref().is_none_or(|pending| pending.entry.term != self.term);
                let stall = leadership.appended_at.map(|at| {
                    later(at, self.timeouts.election_ms.saturating_mul(STALLED_ENTRY_TIMEOUTS))
                });
                [
                    Some(leadership.next_heartbeat),
                    Some(leadership.quorum_check),
                    proposing.then(|| self.proposal_due()),
                    stall,
                ]
                .into_iter()
                .flatten()
                .filter(|at| *at > now)
                .min()
            }
            _ => self.election_at.filter(|at| *at > now),
        }?;
        if self.wake == Some(earliest) {
            return None;
        }
        self.wake = Some(earliest);
        Some(Command::WakeAt { at: earliest })
    }
}

fn later(time: TimestampMs, ms: u64) -> TimestampMs {
    TimestampMs(time.0.saturating_add(ms))
}

impl Engine for RaftEngine {
    fn handle(&mut self, now: TimestampMs, event: Event) -> Vec<Command> {
        // A block asked for is answered at once, before any other event: if another event
        // comes first, the node could not build it; try again when it is next due.
        if !matches!(event, Event::BlockBuilt { .. })
            && let Some(leadership) = self.leadership()
        {
            leadership.building = false;
        }
        match event {
            Event::Tick => {
                if self.wake.is_some_and(|at| at <= now) {
                    self.wake = None;
                }
            }
            Event::PendingChanged { ready } => self.ready = ready,
            Event::BlockBuilt { header } => self.on_block_built(now, &header),
            Event::Committed { header } => self.on_committed(now, &header),
            Event::Message { message, block } => self.on_message(now, &message, block),
            Event::Syncing { behind } => {
                self.syncing = behind;
                if behind {
                    self.step_down(now);
                }
            }
            Event::Validators { from, validators } => {
                if from <= self.next_height() {
                    self.validators = validators;
                } else if self.upcoming.len() < MAX_UPCOMING_SETS {
                    self.upcoming.insert(from, validators);
                }
            }
            // Final blocks from the elected leader: no forks, no mining.
            Event::Stored { .. }
            | Event::Invalid { .. }
            | Event::Mining { .. }
            | Event::Mined { .. } => {}
        }
        self.on_time(now);
        self.save_if_changed();
        let mut commands = std::mem::take(&mut self.out);
        commands.extend(self.wake_command(now));
        commands
    }

    fn status(&self) -> EngineStatus {
        let role = match self.state {
            State::Leader(_) => Role::Leader,
            State::Follower => Role::Follower,
            State::PreCandidate { .. } | State::Candidate { .. } => Role::Candidate,
        };
        EngineStatus { role: Some(role), term: Some(self.term.0), leader: self.leader }
    }
}

#[cfg(test)]
mod tests;
