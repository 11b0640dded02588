// Money: balance and reserved funds, transactions (linked to the explorer), statements per
// period with their line items and a CSV download, and key figures.

import { app, call, live, onHead, table } from '../app.js';
import { esc, kwh, percent, tokens, short } from '../format.js';
import { periodPicker, subjectPicker } from './common.js';

function describe(payload) {
  switch (payload.type) {
    case 'transfer': return `transfer of ${tokens(payload.amount)} to ${short(payload.to)}`;
    case 'mint': return `mint of ${tokens(payload.amount)} to ${short(payload.to)} (${esc(payload.fiat_ref)})`;
    case 'redeem': return `redeem of ${tokens(payload.amount)} (${esc(payload.fiat_ref)})`;
    case 'place_order': return `${payload.side === 'ask' ? 'offer' : 'bid'} of ${kwh(payload.energy_mwh)} at ${payload.price}/kWh for slot ${payload.slot}`;
    case 'cancel_order': return `cancel order #${payload.order}`;
    case 'propose_contract': return `contract proposed to ${short(payload.prosumer)}`;
    case 'accept_contract': return `contract #${payload.contract} accepted`;
    case 'end_contract': return `contract #${payload.contract} ended`;
    case 'register_meter': return `meter ${short(payload.meter)} registered`;
    case 'set_tariffs': return `tariffs from slot ${payload.from_slot}`;
    default: return payload.type.replace(/_/g, ' ');
  }
}

const LINES = [
  ['produced_mwh', 'produced', 'energy'], ['consumed_mwh', 'consumed', 'energy'],
  ['market_bought_mwh', 'bought locally', 'energy'], ['market_paid', 'paid locally', 'money'],
  ['market_fees', 'grid fees (local)', 'money'], ['market_sold_mwh', 'sold locally', 'energy'],
  ['market_received', 'received locally', 'money'], ['contract_bought_mwh', 'bought by contract', 'energy'],
  ['contract_paid', 'paid by contract', 'money'], ['contract_fees', 'grid fees (contract)', 'money'],
  ['contract_sold_mwh', 'sold by contract', 'energy'], ['contract_received', 'received by contract', 'money'],
  ['grid_bought_mwh', 'from the grid', 'energy'], ['grid_paid', 'paid to the grid', 'money'],
  ['grid_sold_mwh', 'to the grid', 'energy'], ['grid_received', 'received from the grid', 'money'],
  ['arrears', 'arrears', 'money'], ['net', 'net', 'money'],
];

function value(line, key, kind) {
  return kind === 'energy' ? kwh(line[key]) : tokens(line[key]);
}

export async function render(root) {
  root.innerHTML = `
    <h1>Money</h1>
    <div class="toolbar"><div id="subject"></div></div>
    <section class="card grid" id="account"></section>
    <section class="card"><h2>Key figures</h2><div id="kpi"></div></section>
    <section class="card"><h2>Statement</h2><div id="period"></div>
      <p><button type="button" id="csv">Download CSV</button> <span id="csv-status" class="muted"></span></p>
      <div id="totals"></div><details><summary>Line items per slot</summary><div id="lines"></div></details></section>
    <section class="card"><h2>Transactions</h2><div id="history"></div></section>`;
  let period = null;
  const drawAccount = async () => {
    const address = app.subject;
    const [account, history] = await Promise.all([
      call('account_get', [address]),
      call('account_history', [address, 30]),
    ]);
    root.querySelector('#account').innerHTML = `
      <div><h2>Balance</h2><p class="big" id="balance">${tokens(account.balance)}</p></div>
      <div><h2>Reserved</h2><p class="big" id="reserved">${tokens(account.reserved)}</p><p class="muted">for open bids and trades awaiting settlement</p></div>
      <div><h2>Arrears</h2><p class="big">${tokens(account.arrears)}</p></div>
      <div><h2>Certificates</h2><p class="big">${account.certificates}</p><p class="muted">one per kWh produced</p></div>`;
    root.querySelector('#history').innerHTML = table(['block', 'transaction', 'what', 'result'], history.entries.map((entry) => [
      `<a href="#/explorer/block/${entry.height}">${entry.height}</a>`,
      `<a href="#/explorer/tx/${entry.hash}"><code>${entry.hash.slice(0, 12)}…</code></a>`,
      describe(entry.payload),
      entry.receipt.success ? 'ok' : `<span class="error">refused: ${esc(entry.receipt.message)}</span>`,
    ]), 'no transactions');
  };
  const drawStatement = async () => {
    const { from, to } = period();
    const address = app.subject;
    const [statement, kpi] = await Promise.all([
      call('statement', [address, from, to]),
      call('kpi', [address, from, to]),
    ]);
    root.querySelector('#kpi').innerHTML = table(
      ['self-sufficiency', 'self-consumption', 'grid-only bill', 'actual cost', 'savings', 'settled slots'],
      [[percent(kpi.self_sufficiency), percent(kpi.self_consumption), tokens(kpi.grid_only_cost), tokens(kpi.actual_cost), `<strong id="savings">${tokens(kpi.savings)}</strong>`, kpi.slots]],
    );
    const totals = statement.totals;
    root.querySelector('#totals').innerHTML = `<p>Slots ${statement.from_slot} to ${statement.to_slot}: ${statement.lines.length} settled.</p>` + table(
      ['line', 'total'], LINES.map(([key, label, kind]) => [esc(label), `<span data-total="${key}">${value(totals, key, kind)}</span>`]),
    );
    root.querySelector('#lines').innerHTML = table(
      ['slot', 'produced', 'consumed', 'bought locally', 'sold locally', 'grid in', 'grid out', 'net'],
      statement.lines.map((line) => [line.slot, kwh(line.produced_mwh), kwh(line.consumed_mwh), kwh(line.market_bought_mwh + line.contract_bought_mwh), kwh(line.market_sold_mwh + line.contract_sold_mwh), kwh(line.grid_bought_mwh), kwh(line.grid_sold_mwh), tokens(line.net)]),
      'nothing settled in this period',
    );
  };
  root.querySelector('#csv').onclick = async () => {
    const { from, to } = period();
    const statement = await call('statement', [app.subject, from, to, 'csv']);
    const link = document.createElement('a');
    link.href = URL.createObjectURL(new Blob([statement.csv], { type: 'text/csv' }));
    link.download = `statement-${statement.account.slice(0, 14)}-${from}-${to}.csv`;
    link.id = 'csv-link';
    document.body.append(link);
    link.click();
    root.querySelector('#csv-status').textContent = `${link.download} (${statement.lines.length} slots)`;
    setTimeout(() => { URL.revokeObjectURL(link.href); link.remove(); }, 60_000);
  };
  await subjectPicker(root.querySelector('#subject'), () => Promise.all([drawAccount(), drawStatement()]));
  period = periodPicker(root.querySelector('#period'), () => drawStatement(), 'week');
  await Promise.all([drawAccount(), drawStatement()]);
  let dirty = false;
  const stops = [
    live.subscribe('settlement_subscribe', [app.subject], 'settlement_unsubscribe', () => { dirty = true; }),
    onHead((head) => {
      if (head.tx_count > 0 || dirty) {
        drawAccount().catch(() => {});
        if (dirty) drawStatement().catch(() => {});
        dirty = false;
      }
    }),
  ];
  return () => stops.forEach((stop) => stop());
}
