//! Members that a devnet's simulators act for: simulated households (`community.rs`) and the
//! meters of a replayed recording (`replay.rs`).
//!
//! Each member is a keystore account with a second account for its meter's key
//! (`NAME-meter`), exactly like the devnet's demo accounts, so that the wallet and the
//! dashboard can act for them too. The operator registers the meters and funds the members
//! through ordinary transactions; every transaction goes in through the public JSON-RPC API.

use crate::{
    client::{self, RpcContext},
    devnet::DevnetFile,
};
use anyhow::{Context, Result, bail};
use keystore::Zeroizing;
use keystore::{KdfParams, Keystore};
use primitives::{Address, Amount, ChainId, FiatRef, Nonce, Payload, SecretKey, Transaction};
use rpc::{JouleApiClient, client::HttpClient};
use std::{
    collections::{BTreeSet, HashMap},
    time::{Duration, Instant},
};

/// One member: its account key and its meter's key.
pub(crate) struct Member {
    /// The keystore name of the account (the meter is `NAME-meter`).
    pub(crate) name: String,
    pub(crate) key: SecretKey,
    pub(crate) address: Address,
    pub(crate) meter_key: SecretKey,
    pub(crate) meter: Address,
}

/// The keystore name of a member's meter.
pub(crate) fn meter_name(member: &str) -> String {
    format!("{member}-meter")
}

/// The devnet's keystore and its password.
pub(crate) struct Keys {
    keystore: Keystore,
    password: Zeroizing<String>,
}

impl Keys {
    /// The keystore of `devnet`.
    pub(crate) fn of(devnet: &DevnetFile) -> Result<Keys> {
        let operator = devnet.accounts.first().context("the devnet has no operator")?;
        let keystore = Keystore::open(&operator.keystore)?;
        let password = crate::wallet::read_password(&operator.password_file)?;
        Ok(Keys { keystore, password })
    }

    /// The key of keystore account `name`.
    pub(crate) fn unlock(&self, name: &str) -> Result<SecretKey> {
        let account = self.keystore.find(name)?;
        Ok(self.keystore.unlock(&account, &self.password)?)
    }

    /// The key of account `name`, created (with the light key derivation of devnets) if the
    /// keystore does not hold it. Returns whether it was created.
    fn unlock_or_create(&self, name: &str) -> Result<(SecretKey, bool)> {
        match self.keystore.find(name) {
            Ok(account) => Ok((self.keystore.unlock(&account, &self.password)?, false)),
            Err(keystore::KeystoreError::NotFound { .. }) => {
                let (account, _) =
                    self.keystore.create(name, &self.password, KdfParams::light(), rand::rng())?;
                Ok((self.keystore.unlock(&account, &self.password)?, true))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Member `name` with its meter, from the keystore, created if missing.
    pub(crate) fn member(&self, name: &str) -> Result<Member> {
        let (key, _) = self.unlock_or_create(name)?;
        let (meter_key, _) = self.unlock_or_create(&meter_name(name))?;
        Ok(Member {
            name: name.to_owned(),
            address: Address(key.public_key()),
            meter: Address(meter_key.public_key()),
            key,
            meter_key,
        })
    }
}

/// The devnet's nodes, reached in turn, and its chain id.
pub(crate) struct Chain {
    clients: Vec<(String, HttpClient)>,
    pub(crate) chain_id: ChainId,
}

impl Chain {
    /// Connects to every node of `devnet`.
    pub(crate) async fn connect(devnet: &DevnetFile) -> Result<Chain> {
        let mut clients = Vec::new();
        // With the nodes' admin tokens: the simulators read members' contracts, receipts and
        // histories, which the API shows only to the members themselves or the operator.
        for node in &devnet.nodes {
            clients.push((node.rpc_url.clone(), node.admin_client()?));
        }
        let (url, first) = clients.first().context("the devnet has no nodes")?;
        let status = first.node_status().await.rpc(url)?;
        let chain_id = ChainId::new(&status.chain_id).map_err(anyhow::Error::msg)?;
        Ok(Chain { clients, chain_id })
    }

    /// The first node, for reads (all nodes hold the same chain).
    pub(crate) fn reader(&self) -> (&str, &HttpClient) {
        let (url, client) = &self.clients[0];
        (url, client)
    }

    /// The node that takes signer `signer`'s transactions: one per signer, so that its nonces
    /// arrive at one mempool in order, and the signers spread over the devnet.
    fn submitter(&self, signer: usize) -> usize {
        signer % self.clients.len()
    }

    /// The nonce `address`'s next transaction should carry.
    pub(crate) async fn next_nonce(&self, address: &Address) -> Result<u64> {
        let (url, client) = self.reader();
        Ok(client.account_get(address.to_string()).await.rpc(url)?.next_nonce)
    }

    /// How many of `address`'s transactions are in blocks.
    pub(crate) async fn committed_nonce(&self, address: &Address) -> Result<u64> {
        let (url, client) = self.reader();
        Ok(client.account_get(address.to_string()).await.rpc(url)?.nonce)
    }
}

/// Someone who signs transactions, with the nonces it has handed out.
pub(crate) struct Signer {
    pub(crate) key: SecretKey,
    pub(crate) address: Address,
    pub(crate) next: u64,
    /// Nonces handed out whose transactions were refused: the next transactions take them
    /// first, so that no later transaction waits forever behind a gap.
    holes: BTreeSet<u64>,
}

impl Signer {
    /// A signer whose next transaction carries nonce `next`.
    pub(crate) fn new(key: SecretKey, next: u64) -> Signer {
        Signer { address: Address(key.public_key()), key, next, holes: BTreeSet::new() }
    }

    /// A signer that continues from what the chain and the node's mempool know.
    pub(crate) async fn resume(key: SecretKey, chain: &Chain) -> Result<Signer> {
        let next = chain.next_nonce(&Address(key.public_key())).await?;
        Ok(Signer::new(key, next))
    }

    fn take(&mut self) -> u64 {
        match self.holes.pop_first() {
            Some(nonce) => nonce,
            None => {
                let nonce = self.next;
                self.next += 1;
                nonce
            }
        }
    }

    fn give_back(&mut self, nonce: u64) {
        self.holes.insert(nonce);
    }

    /// The chain's nonce for this signer once everything it sent has been committed: its
    /// transactions up to the first refused one (later ones wait for that nonce to be used).
    fn settled(&self) -> u64 {
        self.holes.first().copied().unwrap_or(self.next).min(self.next)
    }
}

/// What became of one submitted transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Admitted into a mempool.
    Admitted(String),
    /// Refused, with the node's reason code.
    Refused(String),
}

/// Signs `items` (signer index, payload) with the signers' next nonces and submits them in
/// batches. A refused transaction gives its nonce back to its signer.
pub(crate) async fn submit(
    chain: &Chain,
    signers: &mut [Signer],
    items: Vec<(usize, Payload)>,
) -> Result<Vec<Outcome>> {
    let mut outcomes: Vec<Option<Outcome>> = vec![None; items.len()];
    let mut by_node: Vec<Vec<(usize, usize, Payload)>> = vec![Vec::new(); chain.clients.len()];
    for (position, (index, payload)) in items.into_iter().enumerate() {
        by_node[chain.submitter(index)].push((position, index, payload));
    }
    for (node, items) in by_node.iter().enumerate() {
        let (url, client) = &chain.clients[node];
        for batch in items.chunks(5_000) {
            let mut encoded = Vec::with_capacity(batch.len());
            let mut taken = Vec::with_capacity(batch.len());
            for (position, index, payload) in batch {
                let signer = signers.get_mut(*index).context("no such signer")?;
                let nonce = signer.take();
                taken.push((*position, *index, nonce));
                let signed = Transaction {
                    chain_id: chain.chain_id.clone(),
                    sender: signer.address,
                    nonce: Nonce(nonce),
                    fee: primitives::Amount::ZERO,
                    payload: payload.clone(),
                }
                .sign(&signer.key);
                encoded.push(hex::encode(primitives::encode(&signed)));
            }
            let results = match client.tx_submit_batch(encoded).await {
                Ok(results) => results,
                Err(error) => {
                    for (_, index, nonce) in taken {
                        signers[index].give_back(nonce);
                    }
                    return Err(client::explain(url, error));
                }
            };
            if results.len() != taken.len() {
                bail!("{url} answered {} of {} submissions", results.len(), taken.len());
            }
            for (result, (position, index, nonce)) in results.into_iter().zip(taken) {
                outcomes[position] = Some(match (result.hash, result.error) {
                    (Some(hash), None) => Outcome::Admitted(hash),
                    (_, error) => {
                        signers[index].give_back(nonce);
                        Outcome::Refused(
                            error.map_or_else(|| "unknown".to_owned(), |error| error.reason),
                        )
                    }
                });
            }
        }
    }
    Ok(outcomes
        .into_iter()
        .map(|outcome| outcome.unwrap_or(Outcome::Refused("unsent".into())))
        .collect())
}

/// Waits until every signer's transactions up to the nonces it handed out are in blocks, or
/// `timeout` passes. Returns whether they all were.
pub(crate) async fn wait_committed(
    chain: &Chain,
    signers: &[Signer],
    timeout: Duration,
) -> Result<bool> {
    let started = Instant::now();
    let mut pending: Vec<&Signer> = signers.iter().collect();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for signer in pending {
            if chain.committed_nonce(&signer.address).await? < signer.settled() {
                still.push(signer);
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if started.elapsed() > timeout {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(true)
}

/// Registers the meters of `members` that the chain does not know yet, and funds those
/// members whose account is empty with `funding` tokens, signed by the operator; waits until
/// it is all committed. Returns how many meters were registered.
pub(crate) async fn enroll(
    chain: &Chain,
    operator: &mut Signer,
    members: &[Member],
    funding: Amount,
) -> Result<usize> {
    let (url, client) = chain.reader();
    let registered: HashMap<String, String> = client
        .meter_list(None)
        .await
        .rpc(url)?
        .into_iter()
        .filter(|meter| meter.active)
        .map(|meter| (meter.meter, meter.owner))
        .collect();
    let mut payloads = Vec::new();
    let mut new_meters = 0;
    for member in members {
        match registered.get(&member.meter.to_string()) {
            Some(owner) if *owner == member.address.to_string() => {}
            Some(owner) => bail!(
                "meter {} of {} is registered to another account, {owner}",
                member.meter,
                member.name
            ),
            None => {
                new_meters += 1;
                payloads
                    .push(Payload::RegisterMeter { meter: member.meter, owner: member.address });
            }
        }
        let balance: u128 = client
            .account_get(member.address.to_string())
            .await
            .rpc(url)?
            .balance
            .parse()
            .context("a balance that is not a number")?;
        if balance == 0 && funding.0 > 0 {
            let reference = format!("devnet-fund-{}-{}", member.name, node::now_ms().0);
            payloads.push(Payload::Mint {
                to: member.address,
                amount: funding,
                fiat_ref: FiatRef::new(&reference).map_err(anyhow::Error::msg)?,
            });
        }
    }
    // In chunks well inside the mempool's limit of transactions per sender.
    let mut signers = [Signer::new(operator.key.clone(), operator.next)];
    for chunk in payloads.chunks(500) {
        let items = chunk.iter().map(|payload| (0, payload.clone())).collect();
        let outcomes = submit(chain, &mut signers, items).await?;
        if let Some(Outcome::Refused(reason)) =
            outcomes.iter().find(|outcome| matches!(outcome, Outcome::Refused(_)))
        {
            bail!("the operator's enrolment transactions were refused [{reason}]");
        }
        if !wait_committed(chain, &signers, Duration::from_secs(120)).await? {
            bail!("the operator's enrolment transactions were not committed within 120 s");
        }
    }
    let [signer] = signers;
    *operator = signer;
    Ok(new_meters)
}
