//! What Raft validators say to each other. Every message is signed by its sender; on the
//! network it is an [`EngineMessage`] ([`encode`], [`decode`]).

use crate::engine::EngineMessage;
use borsh::{BorshDeserialize, BorshSerialize};
use primitives::{
    BlockHash, ChainId, EntryRole, Hash, Height, PublicKey, RaftCertificate, RaftEntry, SecretKey,
    Signature, Term, TimestampMs, encode as canonical, hash::domain,
};

/// Where a node's log ends: its committed head and, if it holds one, the term of the entry
/// after it (the log has at most one entry that is not committed yet).
///
/// Positions are ordered by head first, then by that term (no entry comes before any): a
/// voter grants its vote only to a candidate whose position is at least its own. Everything
/// up to the head is committed and the same on every node, so a longer committed chain is
/// simply further on; only the one entry after it can differ, and of those the one from the
/// later term wins, as in Raft.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash, BorshSerialize, BorshDeserialize,
)]
pub struct LogPosition {
    /// The last committed height.
    pub head: Height,
    /// The term of the entry at `head + 1`, if the node holds one.
    pub pending: Option<Term>,
}

/// A (pre-)candidate asks for votes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, BorshSerialize, BorshDeserialize)]
pub struct Campaign {
    /// The term it would lead: for a pre-vote the term after its current one, which it does
    /// not enter until a majority say they would vote for it.
    pub term: Term,
    /// A pre-vote: "would you vote for me?", which changes nobody's term or vote.
    pub pre: bool,
    /// Where its log ends.
    pub position: LogPosition,
}

/// A validator's answer to a [`Campaign`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, BorshSerialize, BorshDeserialize)]
pub struct Ballot {
    /// The campaign's term if granted; the voter's own term if not (so that a candidate behind
    /// it catches up).
    pub term: Term,
    /// An answer to a pre-vote.
    pub pre: bool,
    /// Who asked.
    pub candidate: PublicKey,
    /// The height the candidate campaigns for (the one after its head).
    pub height: Height,
    /// Whether the vote is granted.
    pub granted: bool,
}

/// A committed block and its certificate, as a leader passes it on.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct Commit {
    /// The block's height.
    pub height: Height,
    /// The block.
    pub block: BlockHash,
    /// Its proof.
    pub certificate: RaftCertificate,
}

/// The leader is alive; it also says what it committed last.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct Heartbeat {
    /// The leader's term.
    pub term: Term,
    /// The height after the leader's head (the one it appends next).
    pub height: Height,
    /// The leader's clock when it sent this (which also makes each heartbeat distinct).
    pub sent_at: TimestampMs,
    /// The leader's head with its certificate (none for the genesis block): a follower that
    /// missed the acknowledgements commits from it.
    pub commit: Option<Commit>,
}

/// A follower heard a leader's heartbeat, or tells a leader of a stale term of the newer term.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, BorshSerialize, BorshDeserialize)]
pub struct Reply {
    /// The follower's term.
    pub term: Term,
    /// The leader it answers.
    pub leader: PublicKey,
    /// The height of the heartbeat or append it answers.
    pub height: Height,
    /// When that leader sent it.
    pub sent_at: TimestampMs,
}

/// A message body with its signer and signature.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct Signed<T> {
    /// What is signed.
    pub body: T,
    /// Who signed it.
    pub signer: PublicKey,
    /// The signature over the hash [`Message::signed`] gives for it.
    pub signature: Signature,
}

/// A Raft message.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub enum Message {
    /// A (pre-)candidate asks for votes; sent to every validator.
    Campaign(Signed<Campaign>),
    /// An answer to a campaign; sent to the candidate.
    Ballot(Signed<Ballot>),
    /// The leader appends a block: it travels with the block. The signature is the one the
    /// block's certificate carries.
    Append(Signed<RaftEntry>),
    /// A follower has the block durably; sent to the leader (and passed on by every node, so
    /// followers count acknowledgements too). The signature is the one the certificate
    /// carries.
    Ack(Signed<RaftEntry>),
    /// The leader is alive; sent to every validator.
    Heartbeat(Signed<Heartbeat>),
    /// A follower answers a heartbeat (or a stale leader's append); sent to the leader.
    Reply(Signed<Reply>),
}

impl Message {
    /// Who signed it.
    pub fn signer(&self) -> PublicKey {
        match self {
            Message::Campaign(signed) => signed.signer,
            Message::Ballot(signed) => signed.signer,
            Message::Append(signed) | Message::Ack(signed) => signed.signer,
            Message::Heartbeat(signed) => signed.signer,
            Message::Reply(signed) => signed.signer,
        }
    }

    /// The height whose validators the signer must belong to: the one a campaign is for (the
    /// candidate's head + 1), the entry's, the one after the leader's head for a heartbeat,
    /// and the height of what a ballot or reply answers.
    pub fn height(&self) -> Height {
        match self {
            Message::Campaign(signed) => {
                signed.body.position.head.next().unwrap_or(signed.body.position.head)
            }
            Message::Ballot(signed) => signed.body.height,
            Message::Append(signed) | Message::Ack(signed) => signed.body.height,
            Message::Heartbeat(signed) => signed.body.height,
            Message::Reply(signed) => signed.body.height,
        }
    }

    /// The term it is about.
    pub fn term(&self) -> Term {
        match self {
            Message::Campaign(signed) => signed.body.term,
            Message::Ballot(signed) => signed.body.term,
            Message::Append(signed) | Message::Ack(signed) => signed.body.term,
            Message::Heartbeat(signed) => signed.body.term,
            Message::Reply(signed) => signed.body.term,
        }
    }

    /// What its signature covers on chain `chain_id`, and the signature.
    pub fn signed(&self, chain_id: &ChainId) -> (Hash, Signature) {
        match self {
            Message::Append(signed) => {
                (signed.body.signing_hash(chain_id, EntryRole::Append), signed.signature)
            }
            Message::Ack(signed) => {
                (signed.body.signing_hash(chain_id, EntryRole::Ack), signed.signature)
            }
            Message::Campaign(signed) => {
                (message_hash(chain_id, 0, &signed.body), signed.signature)
            }
            Message::Ballot(signed) => (message_hash(chain_id, 1, &signed.body), signed.signature),
            Message::Heartbeat(signed) => {
                (message_hash(chain_id, 2, &signed.body), signed.signature)
            }
            Message::Reply(signed) => (message_hash(chain_id, 3, &signed.body), signed.signature),
        }
    }

    /// The block an append names (it travels with it).
    pub fn block(&self) -> Option<BlockHash> {
        match self {
            Message::Append(signed) => Some(signed.body.block),
            _ => None,
        }
    }
}

/// The hash signed for a message other than an append or an acknowledgement: the chain, the
/// kind of message and its body.
fn message_hash(chain_id: &ChainId, kind: u8, body: &impl BorshSerialize) -> Hash {
    Hash::digest(domain::RAFT_MESSAGE, &[&canonical(&(chain_id.as_str(), kind, body))])
}

/// Signs `body` as `key` into the message `wrap` makes of it.
pub(crate) fn sign<T>(
    chain_id: &ChainId,
    key: &SecretKey,
    body: T,
    wrap: fn(Signed<T>) -> Message,
) -> Message {
    let unsigned = wrap(Signed { body, signer: key.public_key(), signature: Signature([0; 64]) });
    let (hash, _) = unsigned.signed(chain_id);
    let signature = key.sign(hash.as_bytes());
    match unsigned {
        Message::Campaign(signed) => Message::Campaign(Signed { signature, ..signed }),
        Message::Ballot(signed) => Message::Ballot(Signed { signature, ..signed }),
        Message::Append(signed) => Message::Append(Signed { signature, ..signed }),
        Message::Ack(signed) => Message::Ack(Signed { signature, ..signed }),
        Message::Heartbeat(signed) => Message::Heartbeat(Signed { signature, ..signed }),
        Message::Reply(signed) => Message::Reply(Signed { signature, ..signed }),
    }
}

/// `message` as it travels.
pub fn encode(message: &Message) -> EngineMessage {
    EngineMessage(canonical(message))
}

/// The Raft message in `message`, if it is one (canonically encoded).
pub fn decode(message: &EngineMessage) -> Option<Message> {
    primitives::decode(&message.0).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_order_by_head_then_by_the_pending_term() {
        let at = |head, pending: Option<u64>| LogPosition {
            head: Height(head),
            pending: pending.map(Term),
        };
        assert!(at(5, None) < at(5, Some(1)));
        assert!(at(5, Some(1)) < at(5, Some(2)));
        // A longer committed chain is ahead of any entry after a shorter one, whatever its
        // term: everything up to the head is committed.
        assert!(at(5, Some(9)) < at(6, None));
    }

    #[test]
    fn every_kind_of_message_signs_something_different() {
        let chain = ChainId::new("raft").unwrap();
        let key = SecretKey::from_seed([1; 32]);
        let entry = RaftEntry { term: Term(2), height: Height(3), block: BlockHash(Hash([4; 32])) };
        let position = LogPosition { head: Height(2), pending: None };
        let messages = [
            sign(&chain, &key, Campaign { term: Term(2), pre: true, position }, Message::Campaign),
            sign(&chain, &key, Campaign { term: Term(2), pre: false, position }, Message::Campaign),
            sign(&chain, &key, entry, Message::Append),
            sign(&chain, &key, entry, Message::Ack),
        ];
        let hashes: std::collections::BTreeSet<Hash> =
            messages.iter().map(|message| message.signed(&chain).0).collect();
        assert_eq!(hashes.len(), messages.len());
        for message in &messages {
            let (hash, signature) = message.signed(&chain);
            assert!(key.public_key().verify(hash.as_bytes(), &signature).is_ok());
            assert_eq!(decode(&encode(message)).as_ref(), Some(message));
        }
        // The append's signature is the one a certificate carries.
        let (hash, _) = messages[2].signed(&chain);
        assert_eq!(hash, entry.signing_hash(&chain, EntryRole::Append));
    }
}
