//! WebSocket subscriptions beyond new heads: clearings, an account's trades, readings and
//! settlements, and a transaction's status.
//!
//! Each follows the committed chain: on every block the node announces it reads what changed
//! from a store snapshot (the heights since the last one it looked at, or the slots the market
//! cursor moved past), so a subscriber that lagged behind the announcements misses nothing.
//! Private subscriptions are checked when they start and end when the session does.

use crate::{
    api::RpcResult,
    auth::{Caller, Sessions, wall_ms},
    dto::{TxDto, TxStatusDto},
    errors::internal,
    market_api::{self as market, clearing_dto, reading_of, settlement_dto, trade_dto},
    server::committed_tx_dto,
};
use jsonrpsee::{PendingSubscriptionSink, SubscriptionSink, core::SubscriptionResult};
use node::NodeHandle;
use primitives::{Address, Height, Slot, TxHash};
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// What a subscription looks at after each block: it returns the notifications to send.
trait Follow: Send {
    /// Called before each look, to refresh what the store does not hold.
    fn prepare(&mut self) -> impl std::future::Future<Output = ()> + Send {
        async {}
    }
    fn after_block(&mut self, reader: &store::Reader) -> RpcResult<Vec<serde_json::Value>>;
    /// Whether the subscription is complete (a transaction's final status was sent).
    fn done(&self) -> bool {
        false
    }
}

fn json(value: impl Serialize) -> RpcResult<serde_json::Value> {
    serde_json::to_value(value).map_err(internal)
}

/// Sends what `follow` finds after every block until the subscriber leaves, the session ends,
/// or `follow` is done.
async fn run(
    node: NodeHandle,
    sessions: Arc<Sessions>,
    caller: Caller,
    sink: SubscriptionSink,
    mut follow: impl Follow,
) -> SubscriptionResult {
    let mut blocks = node.subscribe_blocks();
    loop {
        if let Caller::Session { id, .. } = &caller
            && !sessions.is_open(id, wall_ms())
        {
            return Ok(());
        }
        follow.prepare().await;
        let messages = {
            let reader = node.store().read().map_err(internal)?;
            follow.after_block(&reader)?
        };
        for message in messages {
            let message = serde_json::value::to_raw_value(&message)?;
            if sink.send(message).await.is_err() {
                return Ok(());
            }
        }
        if follow.done() {
            return Ok(());
        }
        tokio::select! {
            () = sink.closed() => return Ok(()),
            received = blocks.recv() => match received {
                // Lagging is harmless: the next look reads everything since the last one.
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return Ok(()),
            },
        }
    }
}

/// The slots the market cursor moved past since the last look (`next` is the first not yet
/// seen).
fn moved_past(next: &mut u64, now: u64) -> std::ops::Range<u64> {
    let range = *next..now.max(*next);
    *next = now.max(*next);
    range
}

/// The same as an inclusive slot range, if the cursor moved.
fn slots_past(next: &mut u64, now: Slot) -> Option<std::ops::RangeInclusive<Slot>> {
    let range = moved_past(next, now.0);
    (!range.is_empty()).then(|| Slot(range.start)..=Slot(range.end - 1))
}

struct Clearings {
    next: u64,
    caller: Caller,
}

impl Follow for Clearings {
    fn after_block(&mut self, reader: &store::Reader) -> RpcResult<Vec<serde_json::Value>> {
        let cursor = reader.cursor().map_err(internal)?;
        let mut out = Vec::new();
        for slot in moved_past(&mut self.next, cursor.next_clear.0) {
            if let Some(record) = reader.clearing(Slot(slot)).map_err(internal)? {
                out.push(json(clearing_dto(Slot(slot), &record, &self.caller))?);
            }
        }
        Ok(out)
    }
}

struct Trades {
    next: u64,
    account: Address,
}

impl Follow for Trades {
    fn after_block(&mut self, reader: &store::Reader) -> RpcResult<Vec<serde_json::Value>> {
        let cursor = reader.cursor().map_err(internal)?;
        let Some(slots) = slots_past(&mut self.next, cursor.next_clear) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (slot, trades) in reader.account_trades(&self.account, slots).map_err(internal)? {
            for trade in &trades {
                out.push(json(trade_dto(slot, trade))?);
            }
        }
        Ok(out)
    }
}

struct Settlements {
    next: u64,
    account: Address,
}

impl Follow for Settlements {
    fn after_block(&mut self, reader: &store::Reader) -> RpcResult<Vec<serde_json::Value>> {
        let cursor = reader.cursor().map_err(internal)?;
        let Some(slots) = slots_past(&mut self.next, cursor.next_settle) else {
            return Ok(Vec::new());
        };
        reader
            .settlements(&self.account, slots)
            .map_err(internal)?
            .iter()
            .map(|record| json(settlement_dto(record, false)))
            .collect()
    }
}

struct Readings {
    last_height: u64,
    owner: Address,
    params: primitives::MarketParams,
}

impl Follow for Readings {
    fn after_block(&mut self, reader: &store::Reader) -> RpcResult<Vec<serde_json::Value>> {
        let head = reader.head_height().map_err(internal)?.map_or(0, |height| height.0);
        if head <= self.last_height {
            return Ok(Vec::new());
        }
        let meters: Vec<Address> = market::meters(reader)?
            .into_iter()
            .filter(|(_, meter)| meter.owner == self.owner)
            .map(|(meter, _)| meter)
            .collect();
        let mut out = Vec::new();
        for height in self.last_height + 1..=head {
            let height = Height(height);
            let Some(block) = reader.block(height).map_err(internal)? else { continue };
            let receipts = reader.receipts(height).map_err(internal)?.unwrap_or_default();
            for (tx, receipt) in block.txs.iter().zip(&receipts) {
                if !meters.contains(&tx.tx.sender) {
                    continue;
                }
                if let Some(reading) =
                    reading_of(&self.params, tx, receipt, height.0, block.header.timestamp.0)
                {
                    out.push(json(reading.dto())?);
                }
            }
        }
        self.last_height = head;
        Ok(out)
    }
}

struct Status {
    hash: TxHash,
    caller: Caller,
    node: NodeHandle,
    /// The last status sent.
    sent: Option<String>,
    pending: bool,
    done: bool,
}

impl Follow for Status {
    async fn prepare(&mut self) {
        self.pending = self.node.is_pending(self.hash).await.unwrap_or(false);
    }

    fn after_block(&mut self, reader: &store::Reader) -> RpcResult<Vec<serde_json::Value>> {
        if let Some(record) = reader.transaction(&self.hash).map_err(internal)? {
            self.done = true;
            let tx: TxDto = committed_tx_dto(reader, &record, &self.caller)?;
            return Ok(vec![json(TxStatusDto {
                hash: self.hash.to_string(),
                status: "committed".into(),
                tx: Some(tx),
            })?]);
        }
        let status = if self.pending { "pending" } else { "unknown" };
        if self.sent.as_deref() == Some(status) {
            return Ok(Vec::new());
        }
        self.sent = Some(status.into());
        Ok(vec![json(TxStatusDto {
            hash: self.hash.to_string(),
            status: status.into(),
            tx: None,
        })?])
    }

    fn done(&self) -> bool {
        self.done
    }
}

/// The account a private subscription is for: the one named, or the session's.
fn subscribed_account(caller: &Caller, account: Option<String>, what: &str) -> RpcResult<Address> {
    let account = match account {
        Some(text) => market::address(&text)?,
        None => {
            caller.require_session(what)?;
            caller.account().ok_or_else(|| {
                crate::errors::invalid_params(format!("{what}: name the account to follow"))
            })?
        }
    };
    caller.require_read(&account, what)?;
    Ok(account)
}

/// What a new subscription starts from.
fn cursor(node: &NodeHandle) -> RpcResult<(ledger::Cursor, u64)> {
    let reader = node.store().read().map_err(internal)?;
    let cursor = reader.cursor().map_err(internal)?;
    let head = reader.head_height().map_err(internal)?.map_or(0, |height| height.0);
    Ok((cursor, head))
}

/// What every subscription needs: the node, the session table, and who subscribes.
pub(crate) struct Context {
    pub(crate) node: NodeHandle,
    pub(crate) sessions: Arc<Sessions>,
    pub(crate) caller: Caller,
}

pub(crate) async fn clearings(
    context: Context,
    pending: PendingSubscriptionSink,
) -> SubscriptionResult {
    let Context { node, sessions, caller } = context;
    let (start, _) = cursor(&node)?;
    let sink = pending.accept().await?;
    // The trades it shows are the caller's: it ends with the caller's session.
    let follow = Clearings { next: start.next_clear.0, caller: caller.clone() };
    run(node, sessions, caller, sink, follow).await
}

/// The private subscriptions: one account's data.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Private {
    Trades,
    Readings,
    Settlements,
}

impl Private {
    fn method(self) -> &'static str {
        match self {
            Private::Trades => "market_subscribeTrades",
            Private::Readings => "meter_subscribeReadings",
            Private::Settlements => "settlement_subscribe",
        }
    }
}

/// Follows an account's trades, readings or settlements, if the caller may read them.
pub(crate) async fn private(
    kind: Private,
    context: Context,
    pending: PendingSubscriptionSink,
    account: Option<String>,
) -> SubscriptionResult {
    let Context { node, sessions, caller } = context;
    let account = match subscribed_account(&caller, account, kind.method()) {
        Ok(account) => account,
        Err(error) => {
            pending.reject(error).await;
            return Ok(());
        }
    };
    let (start, head) = cursor(&node)?;
    let sink = pending.accept().await?;
    match kind {
        Private::Trades => {
            run(node, sessions, caller, sink, Trades { next: start.next_clear.0, account }).await
        }
        Private::Settlements => {
            let follow = Settlements { next: start.next_settle.0, account };
            run(node, sessions, caller, sink, follow).await
        }
        Private::Readings => {
            let params = node.chain_config().market.clone();
            let follow = Readings { last_height: head, owner: account, params };
            run(node, sessions, caller, sink, follow).await
        }
    }
}

pub(crate) async fn tx_status(
    context: Context,
    pending: PendingSubscriptionSink,
    hash: String,
) -> SubscriptionResult {
    let Context { node, sessions, caller } = context;
    let hash = match primitives::Hash::from_hex(&hash) {
        Ok(hash) => TxHash(hash),
        Err(error) => {
            pending.reject(crate::errors::invalid_params(format!("hash: {error}"))).await;
            return Ok(());
        }
    };
    let sink = pending.accept().await?;
    let follow = Status {
        hash,
        caller: caller.clone(),
        node: node.clone(),
        sent: None,
        pending: false,
        done: false,
    };
    // Anyone who knows the hash may follow it; what it shows depends on the caller, and it ends
    // with the caller's session.
    run(node, sessions, caller, sink, follow).await
}

#[cfg(test)]
mod tests {
    use super::moved_past;

    #[test]
    fn the_cursor_yields_each_slot_once() {
        let mut next = 5;
        assert_eq!(moved_past(&mut next, 5), 5..5);
        assert_eq!(moved_past(&mut next, 8), 5..8);
        assert_eq!(moved_past(&mut next, 8), 8..8);
        assert_eq!(moved_past(&mut next, 7), 8..8, "never backwards");
        assert_eq!(next, 8);
    }
}
