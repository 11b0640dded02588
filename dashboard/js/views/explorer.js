// Explorer: blocks, transactions with receipts, accounts, validators and peers, searchable by
// height, hash or address. Transaction details show to their parties and the operator only.

import { app, call, onHead, table } from '../app.js';
import { esc, kwh, short, time, tokens } from '../format.js';

const link = {
  block: (height) => `<a href="#/explorer/block/${height}">${height}</a>`,
  tx: (hash) => `<a href="#/explorer/tx/${hash}"><code>${hash.slice(0, 16)}…</code></a>`,
  account: (address) => `<a href="#/explorer/account/${address}"><code>${esc(short(address))}</code></a>`,
};

function searchForm() {
  return `<form id="search" class="inline" role="search">
    <label>Search <input name="q" placeholder="height, block or transaction hash, joule1… address" size="60"></label>
    <button type="submit">Find</button></form>`;
}

async function search(text) {
  const query = text.trim();
  if (/^\d+$/.test(query)) return `#/explorer/block/${query}`;
  if (query.startsWith('joule1')) return `#/explorer/account/${query}`;
  if (/^(0x)?[0-9a-f]{64}$/i.test(query)) {
    const hash = query.replace(/^0x/, '').toLowerCase();
    if (await call('tx_get', [hash])) return `#/explorer/tx/${hash}`;
    if (await call('chain_block', [hash])) return `#/explorer/block/${hash}`;
  }
  return null;
}

async function overview() {
  const head = app.head.height;
  const heights = Array.from({ length: Math.min(15, head + 1) }, (_, index) => head - index);
  const [validators, peers, ...blocks] = await Promise.all([
    call('chain_validators'), call('node_peers'), ...heights.map((height) => call('chain_block', [height])),
  ]);
  return `<section class="card"><h2>Latest blocks</h2>${table(['height', 'time', 'transactions', 'proposer', 'hash'], blocks.filter(Boolean).map((block) => [
    link.block(block.height), time(block.timestamp_ms), block.tx_count, link.account(block.proposer), `<code>${block.hash.slice(0, 16)}…</code>`,
  ]))}</section>
  <section class="card grid two"><div><h2>Validators (height ${validators.height})</h2>${table(['name', 'address', 'power'], validators.validators.map((v) => [esc(v.name), link.account(v.address), v.power]))}</div>
  <div><h2>Peers of this node</h2>${table(['id', 'address', 'direction', 'latency'], peers.map((peer) => [`<code>${esc(short(peer.id))}</code>`, esc(peer.addr), peer.outbound ? 'out' : 'in', peer.latency_ms === null ? '–' : `${peer.latency_ms} ms`]), 'no peers (a single node)')}</div></section>`;
}

async function block(id) {
  const block = await call('chain_block', [/^\d+$/.test(id) ? Number(id) : id]);
  if (!block) return `<p class="error">No block ${esc(id)}.</p>`;
  return `<section class="card"><h2>Block ${block.height}</h2>${table(['', ''], [
    ['hash', `<code>${block.hash}</code>`], ['parent', block.height ? `<a href="#/explorer/block/${block.height - 1}"><code>${block.parent}</code></a>` : '–'],
    ['time', time(block.timestamp_ms)], ['proposer', link.account(block.proposer)], ['state root', `<code>${block.state_root}</code>`],
    ['consensus proof', esc(block.proof)], ['transactions', block.tx_count],
  ])}<h3>Transactions</h3>${table(['#', 'hash'], block.txs.slice(0, 500).map((hash, index) => [index, link.tx(hash)]), 'none')}</section>`;
}

function payloadRows(payload) {
  return Object.entries(payload).filter(([key]) => key !== 'type').map(([key, value]) => {
    let shown = esc(typeof value === 'object' ? JSON.stringify(value) : value);
    if (typeof value === 'string' && value.startsWith('joule1')) shown = link.account(value);
    if (key.endsWith('_mwh')) shown = kwh(value);
    return [esc(key), shown];
  });
}

async function transaction(hash) {
  const tx = await call('tx_get', [hash]);
  if (!tx) return `<p class="error">The node knows no transaction ${esc(hash)}.</p>`;
  const rows = [['hash', `<code>${tx.hash}</code>`], ['status', esc(tx.status)]];
  if (tx.height !== undefined) rows.push(['block', link.block(tx.height)], ['position', tx.index]);
  if (tx.kind) rows.push(['kind', esc(tx.kind.replace(/_/g, ' '))]);
  if (tx.sender) rows.push(['sender', link.account(tx.sender)], ['nonce', tx.nonce]);
  if (tx.payload) rows.push(...payloadRows(tx.payload));
  if (tx.receipt) {
    rows.push(['receipt', tx.receipt.success ? '<span class="ok">success</span>' : `<span class="error">failed${tx.receipt.message ? `: ${esc(tx.receipt.message)}` : ''}</span>`]);
    if (tx.receipt.order_id !== undefined) rows.push(['order', `#${tx.receipt.order_id}`]);
    if (tx.receipt.contract_id !== undefined) rows.push(['contract', `#${tx.receipt.contract_id}`]);
  }
  const hidden = tx.hidden ? '<p class="muted" id="hidden">Its sender, contents and receipt details are shown only to the parties to this transaction and the operator.</p>' : '';
  return `<section class="card"><h2>Transaction</h2>${table(['', ''], rows)}${hidden}</section>`;
}

async function account(address) {
  const [state, meters] = await Promise.all([call('account_get', [address]), call('meter_list', [address])]);
  let history = '';
  try {
    const page = await call('account_history', [address, 25]);
    history = table(['block', 'transaction', 'kind', 'result'], page.entries.map((entry) => [link.block(entry.height), link.tx(entry.hash), esc(entry.payload.type.replace(/_/g, ' ')), entry.receipt.success ? 'ok' : 'failed']), 'no transactions');
  } catch (error) {
    history = `<p class="muted" id="private">${esc(error.message)}</p>`;
  }
  return `<section class="card"><h2>Account <code>${esc(address)}</code></h2>${table(['', ''], [
    ['balance', tokens(state.balance)], ['reserved', tokens(state.reserved)], ['arrears', tokens(state.arrears)],
    ['transactions in blocks', state.nonce], ['certificates', state.certificates],
    ['meters', meters.map((meter) => `<code>${esc(short(meter.meter))}</code>`).join(', ') || 'none'],
  ])}<h3>History</h3>${history}</section>`;
}

export async function render(root, [kind, id]) {
  root.innerHTML = `<h1>Explorer</h1>${searchForm()}<p id="not-found" class="error" hidden></p><div id="explorer-body"></div>`;
  const form = root.querySelector('#search');
  form.onsubmit = async (event) => {
    event.preventDefault();
    const target = await search(form.elements.q.value);
    if (target) location.hash = target;
    else {
      const message = root.querySelector('#not-found');
      message.hidden = false;
      message.textContent = `Nothing found for "${form.elements.q.value}".`;
    }
  };
  const draw = async () => {
    let body;
    if (kind === 'block') body = await block(id);
    else if (kind === 'tx') body = await transaction(id);
    else if (kind === 'account') body = await account(id);
    else body = await overview();
    root.querySelector('#explorer-body').innerHTML = body;
  };
  await draw();
  if (!kind) return onHead(() => draw().catch(() => {}));
  return undefined;
}
