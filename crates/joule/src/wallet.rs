//! Wallet commands: accounts in a keystore, and transactions and queries through a node's API.

use crate::{
    client::{QueryArgs, RpcArgs, RpcContext, connect},
    output::OutputArgs,
};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use keystore::{KdfParams, Keystore, StoredAccount, Zeroizing};
use primitives::{
    Address, Amount, ChainId, FiatRef, Nonce, Payload, SecretKey, Transaction, encode,
};
use rpc::{
    JouleApiClient,
    client::HttpClient,
    dto::{BlockId, TxDto},
};
use serde_json::json;
use std::{
    io::{BufRead, IsTerminal},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

/// Where accounts are kept and how to unlock them.
#[derive(Args, Clone, Debug)]
pub(crate) struct KeystoreArgs {
    /// Keystore directory.
    #[arg(long, env = "JOULE_KEYSTORE", default_value_os_t = default_keystore())]
    pub(crate) keystore: PathBuf,
    /// Read the password from the first line of this file instead of asking for it.
    #[arg(long, env = "JOULE_PASSWORD_FILE")]
    pub(crate) password_file: Option<PathBuf>,
    /// Log in as this keystore account to read private data (meter readings, orders, trades,
    /// settlements, statements, key figures, history); default: the account the command is
    /// about, when the keystore holds it.
    #[arg(long = "as", env = "JOULE_AS")]
    pub(crate) login_as: Option<String>,
    /// The node's admin token: reads everyone's data, like the operator.
    #[arg(long, env = "JOULE_ADMIN_TOKEN", hide_env_values = true)]
    pub(crate) admin_token: Option<String>,
}

/// Keystore names of addresses, for text output: an address held in the keystore is shown by
/// its name. Best effort: without a readable keystore every address shows as itself.
pub(crate) struct Names(std::collections::HashMap<String, String>);

impl Names {
    /// The names in the keystore `JOULE_KEYSTORE` (or the default one).
    pub(crate) fn from_env() -> Names {
        let dir = std::env::var_os("JOULE_KEYSTORE").map_or_else(default_keystore, PathBuf::from);
        Names::load(&dir)
    }

    /// The names in the keystore in `dir`.
    pub(crate) fn load(dir: &Path) -> Names {
        let accounts = if dir.is_dir() {
            Keystore::open(dir).and_then(|keystore| keystore.list()).unwrap_or_default()
        } else {
            Vec::new()
        };
        Names(
            accounts
                .into_iter()
                .map(|account| (account.address.to_string(), account.name))
                .collect(),
        )
    }

    /// The address's keystore name, or the address.
    pub(crate) fn show<'a>(&'a self, address: &'a str) -> &'a str {
        self.0.get(address).map_or(address, String::as_str)
    }
}

fn default_keystore() -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".joule").join("keystore")
}

impl KeystoreArgs {
    /// Keystore names of addresses, for text output.
    pub(crate) fn names(&self) -> Names {
        Names::load(&self.keystore)
    }

    fn open(&self) -> Result<Keystore> {
        Keystore::open(&self.keystore).context("cannot open the keystore")
    }

    /// The password: from the file, or asked on the terminal (twice when `confirm`).
    fn password(&self, prompt: &str, confirm: bool) -> Result<Zeroizing<String>> {
        if let Some(path) = &self.password_file {
            return Ok(keystore::read_password_file(path)?);
        }
        if !std::io::stdin().is_terminal() {
            bail!(
                "no password: pass --password-file (or set JOULE_PASSWORD_FILE) when not on a terminal"
            );
        }
        let password = Zeroizing::new(rpassword::prompt_password(prompt)?);
        if confirm {
            let again = Zeroizing::new(rpassword::prompt_password("Repeat the password: ")?);
            if *again != *password {
                bail!("the passwords do not match");
            }
        }
        Ok(password)
    }

    fn unlock(&self, name_or_address: &str) -> Result<(StoredAccount, SecretKey)> {
        let keystore = self.open()?;
        let account = keystore.find(name_or_address)?;
        let password = self.password(&format!("Password for {}: ", account.name), false)?;
        let key = keystore.unlock(&account, &password)?;
        Ok((account, key))
    }

    /// A client for reads of private data about `about` (if the command is about one account):
    /// with the admin token when one is given; else logged in as `--as`, or as `about` when the
    /// keystore holds it; else without a session (the node then says what to do).
    pub(crate) async fn reader(&self, url: &str, about: Option<&Address>) -> Result<HttpClient> {
        if self.admin_token.as_deref().is_some_and(|token| !token.is_empty()) {
            return crate::client::connect_with_bearer(url, self.admin_token.as_deref());
        }
        let account = match (&self.login_as, about) {
            (Some(name), _) => Some(self.open()?.find(name)?),
            // Only a keystore that exists: a read creates no directory.
            (None, Some(address)) if self.keystore.is_dir() => {
                self.open().ok().and_then(|keystore| keystore.find(&address.to_string()).ok())
            }
            (None, Some(_)) => None,
            (None, None) => None,
        };
        let Some(account) = account else { return connect(url) };
        let password = self.password(&format!("Password for {}: ", account.name), false)?;
        let key = self.open()?.unlock(&account, &password)?;
        login(url, account.address, &key).await
    }

    /// An address given directly, or the address of a keystore account with that name.
    pub(crate) fn resolve(&self, name_or_address: &str) -> Result<Address> {
        if name_or_address.starts_with("joule1") {
            return name_or_address
                .parse()
                .with_context(|| format!("{name_or_address:?} is not a valid address"));
        }
        Ok(self.open()?.find(name_or_address)?.address)
    }
}

/// `joule account …`
#[derive(Subcommand)]
pub(crate) enum AccountCommand {
    /// Create an account with a new 24-word recovery phrase.
    New(NewArgs),
    /// List the accounts in the keystore.
    List {
        #[command(flatten)]
        keystore: KeystoreArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Restore an account from its recovery phrase.
    Import(ImportArgs),
    /// Show an account's recovery phrase.
    Export {
        /// Account name or address.
        account: String,
        #[command(flatten)]
        keystore: KeystoreArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
}

/// `joule account new`
#[derive(Args)]
pub(crate) struct NewArgs {
    /// A name for the account (a-z, 0-9, '_' and '-').
    #[arg(long)]
    name: String,
    /// Use cheap key stretching. For throwaway devnet and test accounts only: it makes a
    /// stolen keystore file far easier to crack.
    #[arg(long)]
    light_kdf: bool,
    #[command(flatten)]
    keystore: KeystoreArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// `joule account import`
#[derive(Args)]
pub(crate) struct ImportArgs {
    /// A name for the account.
    #[arg(long)]
    name: String,
    /// Read the recovery phrase from this file instead of asking for it.
    #[arg(long)]
    mnemonic_file: Option<PathBuf>,
    /// Use cheap key stretching (devnet and test accounts only).
    #[arg(long)]
    light_kdf: bool,
    #[command(flatten)]
    keystore: KeystoreArgs,
    #[command(flatten)]
    output: OutputArgs,
}

fn kdf(light: bool) -> KdfParams {
    if light { KdfParams::light() } else { KdfParams::standard() }
}

pub(crate) async fn account(command: AccountCommand) -> Result<()> {
    match command {
        AccountCommand::New(args) => {
            let keystore = args.keystore.open()?;
            let password = args.keystore.password("New password: ", true)?;
            let (account, mnemonic) =
                keystore.create(&args.name, &password, kdf(args.light_kdf), rand::rng())?;
            args.output.print(
                &json!({ "name": account.name, "address": account.address.to_string(), "mnemonic": mnemonic.as_str(), "file": account.path }),
                || {
                    format!(
                        "created account {}\naddress  {}\nfile     {}\n\nrecovery phrase (write it down; it is the only way to restore the account):\n{}",
                        account.name,
                        account.address,
                        account.path.display(),
                        mnemonic.as_str()
                    )
                },
            );
        }
        AccountCommand::List { keystore, output } => {
            let accounts = keystore.open()?.list()?;
            let rows: Vec<_> = accounts
                .iter()
                .map(|account| json!({ "name": account.name, "address": account.address.to_string() }))
                .collect();
            output.print(&rows, || {
                if accounts.is_empty() {
                    return format!("no accounts in {}", keystore.keystore.display());
                }
                accounts
                    .iter()
                    .map(|account| format!("{:<20} {}", account.name, account.address))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        AccountCommand::Import(args) => {
            let keystore = args.keystore.open()?;
            let mnemonic = match &args.mnemonic_file {
                Some(path) => Zeroizing::new(
                    std::fs::read_to_string(path)
                        .with_context(|| format!("cannot read {}", path.display()))?,
                ),
                None => {
                    eprintln!("Enter the 24-word recovery phrase:");
                    let mut line = Zeroizing::new(String::new());
                    std::io::stdin().lock().read_line(&mut line)?;
                    line
                }
            };
            let password = args.keystore.password("New password: ", true)?;
            let account = keystore.import(
                &args.name,
                mnemonic.trim(),
                &password,
                kdf(args.light_kdf),
                rand::rng(),
            )?;
            args.output.print(
                &json!({ "name": account.name, "address": account.address.to_string() }),
                || format!("imported account {}\naddress  {}", account.name, account.address),
            );
        }
        AccountCommand::Export { account, keystore, output } => {
            let store = keystore.open()?;
            let stored = store.find(&account)?;
            let password = keystore.password(&format!("Password for {}: ", stored.name), false)?;
            let mnemonic = store.export_mnemonic(&stored, &password)?;
            output.print(
                &json!({ "name": stored.name, "address": stored.address.to_string(), "mnemonic": mnemonic.as_str() }),
                || mnemonic.as_str().to_owned(),
            );
        }
    }
    Ok(())
}

/// `joule balance`
#[derive(Args)]
pub(crate) struct BalanceArgs {
    /// Address, or the name of an account in the keystore.
    account: String,
    #[command(flatten)]
    keystore: KeystoreArgs,
    #[command(flatten)]
    rpc: RpcArgs,
    #[command(flatten)]
    output: OutputArgs,
}

pub(crate) async fn balance(args: BalanceArgs) -> Result<()> {
    let address = args.keystore.resolve(&args.account)?;
    let client = connect(&args.rpc.rpc)?;
    let account = client.account_get(address.to_string()).await.rpc(&args.rpc.rpc)?;
    args.output.print(&account, || {
        format!("{}\nbalance  {}\nnonce    {}", account.address, account.balance, account.nonce)
    });
    Ok(())
}

/// Options for commands that sign and submit a transaction.
#[derive(Args)]
pub(crate) struct SubmitArgs {
    /// Wait until the transaction is in a block and show its receipt.
    #[arg(long)]
    pub(crate) wait: bool,
    /// How long `--wait` waits, in seconds.
    #[arg(long, default_value_t = 60)]
    pub(crate) timeout: u64,
    /// Whole tokens paid to the proposer (or miner) of the block that includes it.
    #[arg(long, default_value = "0")]
    pub(crate) fee: Amount,
    #[command(flatten)]
    pub(crate) keystore: KeystoreArgs,
    #[command(flatten)]
    pub(crate) rpc: RpcArgs,
    #[command(flatten)]
    pub(crate) output: OutputArgs,
}

/// `joule send`
#[derive(Args)]
pub(crate) struct SendArgs {
    /// The paying account (name or address in the keystore).
    #[arg(long)]
    from: String,
    /// The recipient: an address, or the name of an account in the keystore.
    #[arg(long)]
    to: String,
    /// Whole tokens.
    #[arg(long, allow_negative_numbers = true, value_parser = crate::human::tokens)]
    amount: Amount,
    #[command(flatten)]
    submit: SubmitArgs,
}

/// `joule mint`
#[derive(Args)]
pub(crate) struct MintArgs {
    /// The issuer account (name or address in the keystore).
    #[arg(long)]
    from: String,
    /// The account credited: an address or a keystore name.
    #[arg(long)]
    to: String,
    /// Whole tokens.
    #[arg(long, allow_negative_numbers = true, value_parser = crate::human::tokens)]
    amount: Amount,
    /// The fiat payment received (bank reference); each can back one mint.
    #[arg(long)]
    fiat_ref: String,
    #[command(flatten)]
    submit: SubmitArgs,
}

/// `joule redeem`
#[derive(Args)]
pub(crate) struct RedeemArgs {
    /// The issuer account (name or address in the keystore).
    #[arg(long)]
    from: String,
    /// Whole tokens, taken from the issuer's balance.
    #[arg(long, allow_negative_numbers = true, value_parser = crate::human::tokens)]
    amount: Amount,
    /// The fiat payment made; each can back one redemption.
    #[arg(long)]
    fiat_ref: String,
    #[command(flatten)]
    submit: SubmitArgs,
}

fn fiat_ref(text: &str) -> Result<FiatRef> {
    FiatRef::new(text).map_err(|error| anyhow::anyhow!("--fiat-ref: {error}"))
}

pub(crate) async fn send(args: SendArgs) -> Result<()> {
    let to = args.submit.keystore.resolve(&args.to)?;
    submit(&args.submit, &args.from, Payload::Transfer { to, amount: args.amount }).await
}

pub(crate) async fn mint(args: MintArgs) -> Result<()> {
    let to = args.submit.keystore.resolve(&args.to)?;
    let payload = Payload::Mint { to, amount: args.amount, fiat_ref: fiat_ref(&args.fiat_ref)? };
    submit(&args.submit, &args.from, payload).await
}

pub(crate) async fn redeem(args: RedeemArgs) -> Result<()> {
    let payload = Payload::Redeem { amount: args.amount, fiat_ref: fiat_ref(&args.fiat_ref)? };
    submit(&args.submit, &args.from, payload).await
}

/// Logs `address` in with its `key` (a signed challenge) and returns a client that sends the
/// session's bearer token.
pub(crate) async fn login(url: &str, address: Address, key: &SecretKey) -> Result<HttpClient> {
    let client = connect(url)?;
    let challenge = client.auth_challenge(address.to_string()).await.rpc(url)?;
    let signature = key.sign(challenge.text.as_bytes());
    let session = client
        .auth_login(
            address.to_string(),
            challenge.challenge,
            hex::encode(signature.0),
            Some("bearer".into()),
        )
        .await
        .rpc(url)?;
    let token = session.token.context("the node returned no session token")?;
    crate::client::connect_with_bearer(url, Some(&token))
}

/// Signs `payload` as the next transaction of `from`, submits it, and optionally waits.
pub(crate) async fn submit(args: &SubmitArgs, from: &str, payload: Payload) -> Result<()> {
    let (account, key) = args.keystore.unlock(from)?;
    let url = &args.rpc.rpc;
    let client = connect(url)?;
    let status = client.node_status().await.rpc(url)?;
    let chain_id = ChainId::new(&status.chain_id).map_err(anyhow::Error::msg)?;
    let next = client.account_get(account.address.to_string()).await.rpc(url)?.next_nonce;
    let signed = Transaction {
        chain_id,
        sender: account.address,
        nonce: Nonce(next),
        fee: args.fee,
        payload,
    }
    .sign(&key);
    let hash = client.tx_submit(hex::encode(encode(&signed))).await.rpc(url)?;
    if !args.wait {
        args.output.print(&json!({ "hash": hash, "status": "pending" }), || {
            format!("submitted {hash}\n(check it with: joule tx {hash})")
        });
        return Ok(());
    }
    // Logged in as the sender, the receipt shows its details (order and contract ids, reasons).
    let client = login(url, account.address, &key).await?;
    let tx = wait_committed(&client, url, &hash, Duration::from_secs(args.timeout)).await?;
    args.output.print(&tx, || describe_tx(&tx));
    match &tx.receipt {
        Some(receipt) if !receipt.success => bail!(
            "the transaction was included but failed: {}",
            receipt.message.as_deref().unwrap_or("no reason given")
        ),
        _ => Ok(()),
    }
}

/// Polls until `hash` is in a block; gives up at `timeout`, or as soon as the node says the
/// chain is stalled (no block for several intervals), since then nothing will be committed.
pub(crate) async fn wait_committed(
    client: &HttpClient,
    url: &str,
    hash: &str,
    timeout: Duration,
) -> Result<TxDto> {
    let started = Instant::now();
    let mut checked = Instant::now();
    loop {
        if let Some(tx) = client.tx_get(hash.to_owned()).await.rpc(url)?
            && tx.status == "committed"
        {
            return Ok(tx);
        }
        if started.elapsed() > timeout {
            bail!("{hash} was not committed within {} s; it may still be", timeout.as_secs());
        }
        if checked.elapsed() > Duration::from_secs(1) {
            checked = Instant::now();
            let health = client.node_status().await.rpc(url)?.health;
            if let Some(health) = health.filter(|health| health.status == "stalled") {
                return Err(anyhow::Error::new(crate::client::ApiError {
                    code: None,
                    reason: Some("chain_stalled".into()),
                    message: format!(
                        "{hash} is waiting in the mempool, but {}; it will be committed once the chain moves again (check with: joule tx {hash})",
                        health.message
                    ),
                }));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn describe_tx(tx: &TxDto) -> String {
    let mut lines = vec![format!("tx       {}", tx.hash), format!("status   {}", tx.status)];
    if let (Some(height), Some(index)) = (tx.height, tx.index) {
        lines.push(format!("block    {height} (#{index})"));
    }
    if let Some(sender) = &tx.sender {
        lines.push(format!("sender   {sender}"));
    }
    if let Some(nonce) = tx.nonce {
        lines.push(format!("nonce    {nonce}"));
    }
    if let Some(payload) = &tx.payload {
        lines.push(format!("payload  {}", serde_json::to_string(payload).unwrap_or_default()));
    }
    if let Some(receipt) = &tx.receipt {
        if let Some(order) = receipt.order_id {
            lines.push(format!("order    {order}"));
        }
        if let Some(contract) = receipt.contract_id {
            lines.push(format!("contract {contract}"));
        }
        lines.push(match receipt.success {
            true => "receipt  success".to_owned(),
            false => format!(
                "receipt  FAILED: {} [{}]",
                receipt.message.as_deref().unwrap_or(""),
                receipt.reason.as_deref().unwrap_or("")
            ),
        });
    }
    lines.join("\n")
}

/// `joule tx`
#[derive(Args)]
pub(crate) struct TxArgs {
    /// Transaction hash.
    hash: String,
    #[command(flatten)]
    keystore: KeystoreArgs,
    #[command(flatten)]
    rpc: RpcArgs,
    #[command(flatten)]
    output: OutputArgs,
}

pub(crate) async fn tx(args: TxArgs) -> Result<()> {
    // Its details show only to its parties: logged in with --as, or as nobody.
    let client = args.keystore.reader(&args.rpc.rpc, None).await?;
    match client.tx_get(args.hash.clone()).await.rpc(&args.rpc.rpc)? {
        Some(tx) => {
            args.output.print(&tx, || describe_tx(&tx));
            Ok(())
        }
        None => bail!("the node knows no transaction {}", args.hash),
    }
}

/// `joule block`
#[derive(Args)]
pub(crate) struct BlockArgs {
    /// Height, hash, or "latest".
    #[arg(default_value = "latest")]
    block: String,
    #[command(flatten)]
    rpc: RpcArgs,
    #[command(flatten)]
    output: OutputArgs,
}

pub(crate) async fn block(args: BlockArgs) -> Result<()> {
    let id = match args.block.parse::<u64>() {
        Ok(height) => BlockId::Height(height),
        Err(_) => BlockId::Hash(args.block.clone()),
    };
    let client = connect(&args.rpc.rpc)?;
    let Some(block) = client.chain_block(id).await.rpc(&args.rpc.rpc)? else {
        bail!("no block {}", args.block);
    };
    args.output.print(&block, || {
        let mut lines = vec![
            format!("block      {}", block.height),
            format!("hash       {}", block.hash),
            format!("parent     {}", block.parent),
            format!(
                "time       {} ({} ms)",
                crate::human::iso(block.timestamp_ms),
                block.timestamp_ms
            ),
            format!("proposer   {}", block.proposer),
            format!("state root {}", block.state_root),
            format!("txs        {}", block.tx_count),
        ];
        lines.extend(block.txs.iter().take(20).map(|hash| format!("  {hash}")));
        if block.txs.len() > 20 {
            lines.push(format!("  … and {} more (use --json)", block.txs.len() - 20));
        }
        lines.join("\n")
    });
    Ok(())
}

/// `joule history`
#[derive(Args)]
pub(crate) struct HistoryArgs {
    /// Address, or the name of an account in the keystore.
    account: String,
    /// Most entries to show.
    #[arg(long, default_value_t = 20)]
    limit: u32,
    #[command(flatten)]
    keystore: KeystoreArgs,
    #[command(flatten)]
    rpc: RpcArgs,
    #[command(flatten)]
    output: OutputArgs,
}

pub(crate) async fn history(args: HistoryArgs) -> Result<()> {
    let address = args.keystore.resolve(&args.account)?;
    let client = args.keystore.reader(&args.rpc.rpc, Some(&address)).await?;
    let page = client
        .account_history(address.to_string(), Some(args.limit), None)
        .await
        .rpc(&args.rpc.rpc)?;
    args.output.print(&page, || {
        if page.entries.is_empty() {
            return format!("{address} has no transactions");
        }
        page.entries
            .iter()
            .map(|entry| {
                format!(
                    "{:>8}#{:<5} {} {} {}",
                    entry.height,
                    entry.index,
                    entry.hash,
                    serde_json::to_string(&entry.payload).unwrap_or_default(),
                    if entry.receipt.success { "ok" } else { "FAILED" }
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

/// `joule status`
#[derive(Args)]
pub(crate) struct StatusArgs {
    /// Wait up to this many seconds for the node to answer and report a healthy chain (a node
    /// just started, a chain just restarted); fail if it does not.
    #[arg(long, value_name = "SECONDS")]
    wait_healthy: Option<u64>,
    #[command(flatten)]
    query: QueryArgs,
}

/// Asks for the status until the node answers healthy or `seconds` pass.
async fn wait_healthy(client: &HttpClient, url: &str, seconds: u64) -> Result<rpc::dto::StatusDto> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        let answer = client.node_status().await.rpc(url);
        let last = match answer {
            Ok(status) if status.health.as_ref().is_some_and(|health| health.healthy) => {
                return Ok(status);
            }
            Ok(status) => status
                .health
                .map_or_else(|| "it reports no health".to_owned(), |health| health.message),
            Err(error) => format!("{error:#}"),
        };
        if Instant::now() > deadline {
            bail!("the node at {url} is not healthy after {seconds} s: {last}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub(crate) async fn status(args: StatusArgs) -> Result<()> {
    let StatusArgs { wait_healthy: wait, query: args } = args;
    let client = connect(&args.rpc.rpc)?;
    let status = match wait {
        Some(seconds) => wait_healthy(&client, &args.rpc.rpc, seconds).await?,
        None => client.node_status().await.rpc(&args.rpc.rpc)?,
    };
    args.output.print(&status, || {
        let network = match &status.p2p {
            Some(p2p) => format!("{} at {}", p2p.id, p2p.addr),
            None => "none (a single node)".to_owned(),
        };
        let sync = match (status.syncing, status.best_peer_height) {
            (true, Some(best)) => format!("catching up to height {best}"),
            (true, None) => "catching up".to_owned(),
            (false, Some(best)) => format!("in step with its peers (best height {best})"),
            (false, None) => "no peer reports a height".to_owned(),
        };
        // A leader-based engine (Raft) also says who leads.
        let consensus = match &status.consensus {
            Some(consensus) => format!(
                "\nrole       {} in term {}\nleader     {}",
                consensus.role,
                consensus.term,
                consensus.leader.as_deref().unwrap_or("none known")
            ),
            None => String::new(),
        };
        let health = match &status.health {
            Some(health) if health.healthy => format!("ok: {}", health.message),
            Some(health) => format!("{}: {}", health.status.to_uppercase(), health.message),
            None => "unknown (the node does not say)".to_owned(),
        };
        let head_age = status
            .health
            .as_ref()
            .map(|health| format!(", {:.1} s ago", health.head_age_ms as f64 / 1000.0))
            .unwrap_or_default();
        format!(
            "chain      {}\ngenesis    {}\nengine     {}{consensus}\nhead       {} {} ({}{head_age})\nhealth     {health}\nsync       {sync}\nmempool    {}\nvalidator  {}\nnetwork    {network}\nversion    {}",
            status.chain_id,
            status.genesis_hash,
            status.engine,
            status.head.height,
            status.head.hash,
            crate::human::iso(status.head.timestamp_ms),
            status.mempool_size,
            status.is_validator,
            status.version
        )
    });
    Ok(())
}

/// Reads a devnet's password file (used by the devnet and the benchmark).
pub(crate) fn read_password(path: &Path) -> Result<Zeroizing<String>> {
    Ok(keystore::read_password_file(path)?)
}
