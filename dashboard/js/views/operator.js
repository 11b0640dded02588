// Operator: every member and meter with the age of its last reading, tariffs and grid fees,
// minting and redeeming against fiat references, and the community's key figures.

import { app, call, chainNow, field, onHead, signAndSend, table } from '../app.js';
import { duration, esc, parseWhole, percent, short, time, tokens } from '../format.js';
import { slotsPerDay } from './common.js';

export async function render(root) {
  root.innerHTML = `
    <h1>Operator</h1>
    <section class="card grid" id="supply"></section>
    <section class="card"><h2>Community key figures (last day)</h2><div id="kpi"></div></section>
    <section class="card"><h2>Members and meters</h2><div id="meters"></div></section>
    <section class="card"><h2>Tariffs and grid fee</h2><div id="tariffs"></div>
      <form id="set-tariffs" class="inline">
        <label>From slot <input name="from" type="number" min="0" value="${app.market.next_open_slot + 1}" required></label>
        <label>Retail <input name="retail" inputmode="numeric" value="${app.market.tariffs.retail}" required></label>
        <label>Feed-in <input name="feed_in" inputmode="numeric" value="${app.market.tariffs.feed_in}" required></label>
        <label>Grid fee <input name="grid_fee" inputmode="numeric" value="${app.market.tariffs.grid_fee}" required></label>
        <button type="submit">Sign and set</button>
      </form></section>
    <section class="card grid two">
      <form id="mint"><h2>Mint against fiat received</h2>
        <label>To <input name="to" required placeholder="joule1…"></label>
        <label>Tokens <input name="amount" inputmode="numeric" required></label>
        <label>Fiat reference <input name="fiat_ref" required placeholder="bank transfer id"></label>
        <button type="submit">Sign and mint</button></form>
      <form id="redeem"><h2>Redeem against fiat paid out</h2>
        <label>Tokens <input name="amount" inputmode="numeric" required></label>
        <label>Fiat reference <input name="fiat_ref" required></label>
        <button type="submit">Sign and redeem</button></form>
    </section>`;
  const draw = async () => {
    const to = app.market.current_slot;
    const [accounts, meters, supply, kpi] = await Promise.all([
      call('account_list'), call('meter_list'), call('chain_supply'),
      call('kpi', ['community', Math.max(0, to - slotsPerDay()), to]),
    ]);
    root.querySelector('#supply').innerHTML = `
      <div><h2>Minted</h2><p class="big">${tokens(supply.minted)}</p></div>
      <div><h2>Redeemed</h2><p class="big">${tokens(supply.redeemed)}</p></div>
      <div><h2>Circulating</h2><p class="big">${tokens(supply.circulating)}</p></div>
      <div><h2>Grid account</h2><p class="big">${tokens(app.market.grid_balance)}</p></div>`;
    root.querySelector('#kpi').innerHTML = table(['self-sufficiency', 'self-consumption', 'grid-only bill', 'actual cost', 'savings', 'settled slots'],
      [[percent(kpi.self_sufficiency), percent(kpi.self_consumption), tokens(kpi.grid_only_cost), tokens(kpi.actual_cost), tokens(kpi.savings), kpi.slots]]);
    const balances = new Map(accounts.map((account) => [account.address, account]));
    const now = chainNow();
    root.querySelector('#meters').innerHTML = table(['member', 'balance', 'meter', 'active', 'last reading', 'age'], meters.map((meter) => {
      const age = meter.last_reading_ms === undefined || meter.last_reading_ms === null ? null : now - meter.last_reading_ms;
      const stale = age === null || age > 3 * app.market.slot_minutes * 60_000;
      return [
        `<a href="#/explorer/account/${meter.owner}">${esc(short(meter.owner))}</a>`,
        tokens(balances.get(meter.owner)?.balance ?? '0'),
        `<code>${esc(short(meter.meter))}</code>`,
        meter.active ? 'yes' : 'no',
        meter.last_reading_ms ? time(meter.last_reading_ms) : 'never',
        `<span class="${stale ? 'error' : ''}" data-age="${meter.meter}">${age === null ? '–' : duration(age)}</span>`,
      ];
    }), 'no meters');
    root.querySelector('#tariffs').innerHTML = table(['from slot', 'retail', 'feed-in', 'grid fee'],
      [{ from_slot: 0, ...app.market.tariffs }, ...app.market.tariff_schedule].filter((row, index, rows) => rows.findIndex((other) => other.from_slot === row.from_slot) === index)
        .map((row) => [row.from_slot, row.retail, row.feed_in, row.grid_fee]));
  };
  const forms = {
    'set-tariffs': (form) => ['Setting the tariffs', {
      type: 'set_tariffs', from_slot: Number(parseWhole(field(form, 'from'), 'slot')),
      retail: Number(parseWhole(field(form, 'retail'), 'retail')), feed_in: Number(parseWhole(field(form, 'feed_in'), 'feed-in')),
      grid_fee: Number(parseWhole(field(form, 'grid_fee'), 'grid fee')),
    }],
    mint: (form) => ['Minting', { type: 'mint', to: field(form, 'to'), amount: parseWhole(field(form, 'amount'), 'amount'), fiat_ref: field(form, 'fiat_ref') }],
    redeem: (form) => ['Redeeming', { type: 'redeem', amount: parseWhole(field(form, 'amount'), 'amount'), fiat_ref: field(form, 'fiat_ref') }],
  };
  for (const [id, build] of Object.entries(forms)) {
    const form = root.querySelector(`#${id}`);
    form.onsubmit = async (event) => {
      event.preventDefault();
      try {
        const [what, payload] = build(form);
        await signAndSend(what, payload, form, draw);
      } catch (error) {
        const { notice } = await import('../app.js');
        notice(error.message, 'error');
      }
    };
  }
  await draw();
  return onHead((head) => { if (head.height % 5 === 0) draw().catch(() => {}); });
}
