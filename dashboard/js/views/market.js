// Market: the current slot and the countdown to its gate closure, a slot's book as supply and
// demand curves with the clearing point, clearing prices over time, my orders and trades,
// placing and cancelling orders, and the producers.

import { app, call, chainNow, field, live, onHead, signAndSend, slotStart, table } from '../app.js';
import { bookChart, priceChart } from '../chart.js';
import { duration, esc, kwh, parseKwh, parseWhole, short, time, tokens } from '../format.js';
import { slotsPerDay } from './common.js';

/**
 * The uniform-price clearing of a book, as `market::book::clear_uniform` computes it: bids by
 * price descending, asks ascending (then by id), matched while bid ≥ ask; the price is
 * floor((bid + ask) / 2) of the last matched pair.
 */
export function clearUniform(bids, asks) {
  const b = [...bids].sort((x, y) => y.price - x.price || x.id - y.id).map((o) => ({ ...o, left: o.open_mwh }));
  const a = [...asks].sort((x, y) => x.price - y.price || x.id - y.id).map((o) => ({ ...o, left: o.open_mwh }));
  let i = 0;
  let j = 0;
  let volume = 0;
  let price = null;
  while (i < b.length && j < a.length && b[i].price >= a[j].price) {
    const amount = Math.min(b[i].left, a[j].left);
    if (amount > 0) {
      volume += amount;
      price = Math.floor((b[i].price + a[j].price) / 2);
    }
    b[i].left -= amount;
    a[j].left -= amount;
    if (b[i].left === 0) i++;
    if (a[j].left === 0) j++;
  }
  return { price, volume };
}

function curve(orders) {
  let total = 0;
  return orders.map((order) => {
    total += order.open_mwh / 1e6;
    return [total, order.price];
  });
}

function owner(order) {
  if (order.owner === null) return '<span class="muted">another member</span>';
  return order.owner === app.session.account ? '<strong>you</strong>' : esc(short(order.owner));
}

export async function render(root) {
  const market = app.market;
  root.innerHTML = `
    <h1>Market</h1>
    <section class="card grid" id="clock"></section>
    <section class="card"><h2>Order book</h2>
      <label>Slot <input type="number" id="slot" min="0" value="${market.next_open_slot}"></label>
      <span id="slot-time" class="muted"></span>
      <div id="book-chart" class="chart"></div><div id="book-result"></div>
      <div class="grid two"><div><h3>Offers (asks)</h3><div id="asks"></div></div><div><h3>Bids</h3><div id="bids"></div></div></div>
    </section>
    <section class="card"><h2>Place an order</h2>
      <form id="order" class="inline">
        <label>Side <select name="side"><option value="ask">offer (sell)</option><option value="bid">bid (buy)</option></select></label>
        <label>Slot <input name="slot" type="number" min="0" value="${market.next_open_slot}" required></label>
        <label>Energy <input name="kwh" inputmode="decimal" required placeholder="kWh"> kWh</label>
        <label>Limit price <input name="price" inputmode="numeric" required placeholder="tokens/kWh"> tokens/kWh</label>
        <button type="submit">Sign and send</button>
      </form>
      <p class="muted">A bid reserves energy × (price + grid fee ${market.tariffs.grid_fee}) tokens until it clears.</p>
    </section>
    <section class="card"><h2>My orders</h2><div id="orders"></div></section>
    <section class="card"><h2>My trades</h2><div id="trades"></div></section>
    <section class="card"><h2>Clearing prices</h2><div id="prices" class="chart"></div></section>
    <section class="card"><h2>Producers</h2><div id="producers"></div></section>`;
  const charts = { book: null, prices: null };
  const slotInput = root.querySelector('#slot');

  const drawClock = () => {
    const m = app.market;
    const left = m.next_gate_closure_ms - chainNow();
    root.querySelector('#clock').innerHTML = `
      <div><h2>Now</h2><p class="big">slot ${m.current_slot}</p><p class="muted">${time(chainNow())} chain time</p></div>
      <div><h2>Next open slot</h2><p class="big">${m.next_open_slot}</p><p class="muted">gate closes ${time(m.next_gate_closure_ms)}</p></div>
      <div><h2>Gate closure in</h2><p class="big" id="countdown">${duration(left)}</p><p class="muted">of chain time${app.speed > 1 ? ` (the clock runs ×${app.speed}: ${duration(left / app.speed)} of wall time)` : ""}</p></div>
      <div><h2>Tariffs</h2><p>retail ${m.tariffs.retail}, feed-in ${m.tariffs.feed_in}, grid fee ${m.tariffs.grid_fee} tokens/kWh</p></div>`;
  };

  const drawBook = async () => {
    const slot = Number(slotInput.value);
    root.querySelector('#slot-time').textContent = `starts ${time(slotStart(slot))}`;
    const [book, clearing] = await Promise.all([call('market_book', [slot]), call('market_clearing', [slot])]);
    const asks = book.asks;
    const bids = book.bids;
    const indicative = clearUniform(bids, asks);
    charts.book?.();
    const chartElement = root.querySelector('#book-chart');
    chartElement.innerHTML = '';
    const point = clearing
      ? (clearing.price !== null ? [clearing.volume_mwh / 1e6, clearing.price] : null)
      : (indicative.price !== null ? [indicative.volume / 1e6, indicative.price] : null);
    charts.book = bookChart(chartElement, curve(asks), curve(bids), point);
    root.querySelector('#book-result').innerHTML = clearing
      ? `<p id="cleared">Cleared: ${kwh(clearing.volume_mwh)} in ${clearing.trade_count} trade(s)${clearing.price !== null ? ` at <strong>${clearing.price} tokens/kWh</strong>` : ''} (block ${clearing.height}).</p>`
      : `<p>Open until ${time(book.gate_closure_ms)}. Indicative: ${indicative.price !== null ? `${kwh(indicative.volume)} at ${indicative.price} tokens/kWh` : 'nothing would match now'}.</p>`;
    const row = (order) => [`#${order.id}`, kwh(order.open_mwh), `${order.price}`, owner(order)];
    root.querySelector('#asks').innerHTML = table(['order', 'energy', 'price', 'by'], asks.map(row), 'no offers');
    root.querySelector('#bids').innerHTML = table(['order', 'energy', 'price', 'by'], bids.map(row), 'no bids');
  };

  const drawMine = async () => {
    const account = app.session.account;
    const to = app.market.current_slot + 200;
    // Orders come newest first, trades in slot order.
    const [orders, trades] = await Promise.all([
      call('market_orders', [account]),
      call('market_trades', [account, Math.max(0, app.market.current_slot - slotsPerDay()), to]),
    ]);
    root.querySelector('#orders').innerHTML = table(['order', 'slot', 'side', 'energy', 'price', 'status', 'matched', ''], orders.slice(0, 50).map((order) => [
      `#${order.id}`, order.slot, order.side === 'ask' ? 'offer' : 'bid', kwh(order.energy_mwh), order.price, esc(order.status), kwh(order.matched_mwh),
      order.status === 'open' ? `<button type="button" data-cancel="${order.id}">Cancel</button>` : '',
    ]), 'no orders');
    root.querySelector('#trades').innerHTML = table(['slot', 'role', 'energy', 'price', 'with'], trades.slice(-50).reverse().map((trade) => {
      const bought = trade.buyer === account;
      return [trade.slot, bought ? 'bought' : 'sold', kwh(trade.energy_mwh), trade.price, esc(short(bought ? trade.seller : trade.buyer))];
    }), 'no trades in the last day');
    for (const button of root.querySelectorAll('[data-cancel]')) {
      button.onclick = () => signAndSend(`Cancelling order #${button.dataset.cancel}`, { type: 'cancel_order', order: Number(button.dataset.cancel) }, button, () => { drawMine(); drawBook(); });
    }
  };

  const drawPrices = async () => {
    const to = app.market.current_slot;
    const from = Math.max(0, to - slotsPerDay());
    const [clearings, producers] = await Promise.all([
      call('market_clearings', [from, to + 1]),
      call('market_producers', []),
    ]);
    charts.prices?.();
    const element = root.querySelector('#prices');
    element.innerHTML = '';
    const priced = clearings.filter((clearing) => clearing.price !== null);
    element.dataset.points = String(priced.length);
    charts.prices = priceChart(element, [priced.map((c) => slotStart(c.slot) / 1000), priced.map((c) => c.price)]);
    root.querySelector('#producers').innerHTML = table(['producer', 'produced', 'offered', 'sold to neighbours', 'lowest ask', 'contracts'], producers.map((p) => [
      p.account === app.session.account ? '<strong>you</strong>' : `<a href="#/explorer/account/${p.account}">${esc(short(p.account))}</a>`,
      kwh(p.produced_mwh), kwh(p.offered_mwh), kwh(p.sold_mwh), p.lowest_ask ?? '–', p.active_contracts,
    ]), 'no producers');
  };

  const form = root.querySelector('#order');
  form.onsubmit = async (event) => {
    event.preventDefault();
    try {
      const side = field(form, 'side');
      const payload = {
        type: 'place_order',
        slot: Number(parseWhole(field(form, 'slot'), 'slot')),
        side,
        energy_mwh: parseKwh(field(form, 'kwh')),
        price: Number(parseWhole(field(form, 'price'), 'price')),
      };
      slotInput.value = String(payload.slot);
      await signAndSend(side === 'ask' ? 'Placing the offer' : 'Placing the bid', payload, form, () => { drawBook(); drawMine(); });
    } catch (error) {
      const { notice } = await import('../app.js');
      notice(error.message, 'error');
    }
  };
  slotInput.onchange = () => drawBook();
  drawClock();
  await Promise.all([drawBook(), drawMine(), drawPrices()]);
  const tick = setInterval(() => {
    const countdown = root.querySelector('#countdown');
    if (countdown) countdown.textContent = duration(app.market.next_gate_closure_ms - chainNow());
  }, 500);
  const stops = [
    onHead(() => { drawClock(); drawBook().catch(() => {}); }),
    live.subscribe('market_subscribeClearings', [], 'market_unsubscribeClearings', () => { drawPrices().catch(() => {}); drawMine().catch(() => {}); }),
    live.subscribe('market_subscribeTrades', [], 'market_unsubscribeTrades', () => drawMine().catch(() => {})),
  ];
  return () => {
    clearInterval(tick);
    stops.forEach((stop) => stop());
    charts.book?.();
    charts.prices?.();
  };
}

export { tokens };
