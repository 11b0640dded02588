//! What each engine accepts, asked by the node without running an engine: whether a peer's
//! message is worth relaying (checked on the network task, before the message is queued for
//! the engine) and whether a block's header may follow its parent by this engine's rules (who
//! may propose it). The node's own checks (height, parent, time, transactions, state root)
//! are the same for every engine.

use crate::engine::EngineMessage;
use crate::raft;
use crate::tendermint::{self, Message, proposer};
use primitives::{Address, ChainConfig, ChainId, EngineKind, Header, Height, Validator};

/// What to do with a peer's message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Signed by someone entitled to send it: pass it on.
    Relay,
    /// Worth giving to the node, but not to pass on now: a proof-of-work block, which the node
    /// passes on itself once it has checked it against its chain (its work can be checked
    /// alone, but not whether its target is the one its parent calls for); or a message its
    /// sender has already sent to everyone who needs it, such as a Raft leader's append.
    Deliver,
    /// For a height whose validators this node cannot be sure of (before its head, or too far
    /// ahead): neither passed on nor held against the peer.
    Drop,
    /// Malformed, not signed by anyone entitled to it, or badly signed.
    Invalid,
}

/// The validators a node knows of, by height.
pub trait ValidatorView {
    /// The validators of `height`, as far as this node knows (the set of the next height, or a
    /// later one already installed).
    fn at(&self, height: Height) -> &[Validator];
    /// Whether [`ValidatorView::at`] is exact for `height`.
    fn knows(&self, height: Height) -> bool;
}

/// Why a header may not follow its parent by the engine's rules.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The proposer is not among the validators of the block's height.
    #[error("proposer {0} is not a validator")]
    NotAValidator(Address),
    /// The proof is not of the kind the engine makes.
    #[error("the header carries another kind of proof than this engine makes")]
    WrongProof,
    /// A proof-of-work header's target is not the one the difficulty rule sets after its
    /// parent.
    #[error("target {got}, but the difficulty rule sets {expected} after the parent")]
    WrongTarget {
        /// What the rule sets.
        expected: primitives::Target,
        /// What the header says.
        got: primitives::Target,
    },
    /// A proof-of-work header's proof hash does not meet its target.
    #[error("the proof of work does not meet the header's target")]
    InsufficientWork,
}

/// An engine's rules for messages and headers.
pub trait Rules: Send + Sync {
    /// Whether a peer's message is worth passing on and giving to the engine.
    fn check_message(
        &self,
        chain_id: &ChainId,
        validators: &dyn ValidatorView,
        message: &EngineMessage,
    ) -> Verdict;

    /// Whether `header` may be proposed at its height, `validators` being that height's.
    fn check_header(&self, validators: &[Validator], header: &Header) -> Result<(), HeaderError>;

    /// Whether `header` may follow `parent` by the rules that depend on the parent (for proof
    /// of work: the target the difficulty rule sets). Nothing, for engines without such rules.
    fn check_successor(
        &self,
        _config: &ChainConfig,
        _parent: &Header,
        _header: &Header,
    ) -> Result<(), HeaderError> {
        Ok(())
    }

    /// How many of the newest blocks, ending with the parent, a block's timestamp is checked
    /// against: it must be later than the median of their timestamps. 1 (later than the
    /// parent's) unless the engine says otherwise; the node keeps at least this many blocks
    /// of its chain.
    fn time_window(&self) -> usize {
        1
    }

    /// How many of the newest blocks a branch may replace: 0 for engines whose blocks are
    /// final.
    fn reorg_depth(&self, _config: &ChainConfig) -> u64 {
        0
    }
}

/// The rules of engine `kind`.
pub fn rules(kind: EngineKind) -> &'static dyn Rules {
    match kind {
        EngineKind::Solo => &SoloRules,
        EngineKind::Bft => &BftRules,
        // Raft (issue 14): every message is signed by a validator of the height it is about.
        EngineKind::Raft => &RaftRules,
        EngineKind::Pow(_) => &crate::pow::PowRules,
    }
}

fn proposer_is_validator(validators: &[Validator], header: &Header) -> Result<(), HeaderError> {
    if validators.iter().any(|validator| Address(validator.key) == header.proposer) {
        Ok(())
    } else {
        Err(HeaderError::NotAValidator(header.proposer))
    }
}

/// A single validator sends no messages.
struct SoloRules;

impl Rules for SoloRules {
    fn check_message(&self, _: &ChainId, _: &dyn ValidatorView, _: &EngineMessage) -> Verdict {
        Verdict::Invalid
    }

    fn check_header(&self, validators: &[Validator], header: &Header) -> Result<(), HeaderError> {
        proposer_is_validator(validators, header)
    }
}

/// Tendermint: a proposal must be signed by its round's proposer, a vote by a validator of
/// its height.
struct BftRules;

impl Rules for BftRules {
    fn check_message(
        &self,
        chain_id: &ChainId,
        validators: &dyn ValidatorView,
        message: &EngineMessage,
    ) -> Verdict {
        let Some(message) = tendermint::decode(message) else { return Verdict::Invalid };
        let signer = message.signer();
        let height = message.height();
        let set = validators.at(height);
        let entitled = match &message {
            Message::Proposal(signed) => proposer(set, height, signed.proposal.round)
                .is_some_and(|expected| expected.key == signer),
            Message::Vote(_) => set.iter().any(|validator| validator.key == signer),
        };
        signed_by_entitled(entitled, validators, height, &signer, message.signed(chain_id))
    }

    fn check_header(&self, validators: &[Validator], header: &Header) -> Result<(), HeaderError> {
        proposer_is_validator(validators, header)
    }
}

/// The verdict on a message whose sender is (or is not) `entitled` to send it at `height`, with
/// its signature over `signed`: relay it if the signature checks out; a sender who is not
/// entitled is invalid only where the node knows the height's validators, else dropped.
fn signed_by_entitled(
    entitled: bool,
    validators: &dyn ValidatorView,
    height: Height,
    signer: &primitives::PublicKey,
    (hash, signature): (primitives::Hash, primitives::Signature),
) -> Verdict {
    if !entitled {
        return if validators.knows(height) { Verdict::Invalid } else { Verdict::Drop };
    }
    if signer.verify(hash.as_bytes(), &signature).is_ok() {
        Verdict::Relay
    } else {
        Verdict::Invalid
    }
}

/// Raft: every message must be signed by a validator of the height it is about (the one a
/// candidate campaigns for, an entry's, the one after a leader's head). Who leads a term is
/// the engine's business: the network cannot know it.
///
/// Two kinds are delivered but not passed on. A leader sends its append, block and all, to
/// every peer itself, and only a follower connected to the leader can acknowledge it, so a
/// relayed copy would only repeat the block (megabytes under load) to nodes that have it. A
/// reply to a heartbeat is for the leader alone, which it reaches directly or not at all.
struct RaftRules;

impl Rules for RaftRules {
    fn check_message(
        &self,
        chain_id: &ChainId,
        validators: &dyn ValidatorView,
        message: &EngineMessage,
    ) -> Verdict {
        let Some(message) = raft::decode(message) else { return Verdict::Invalid };
        let signer = message.signer();
        let height = message.height();
        let entitled = validators.at(height).iter().any(|validator| validator.key == signer);
        match signed_by_entitled(entitled, validators, height, &signer, message.signed(chain_id)) {
            Verdict::Relay
                if matches!(message, raft::Message::Append(_) | raft::Message::Reply(_)) =>
            {
                Verdict::Deliver
            }
            verdict => verdict,
        }
    }

    fn check_header(&self, validators: &[Validator], header: &Header) -> Result<(), HeaderError> {
        proposer_is_validator(validators, header)
    }
}
