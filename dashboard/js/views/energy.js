// My energy: production and consumption per interval and per slot, gross, each interval
// marked measured, estimated, late or missing; where the energy came from and went to.

import { app, call, chainNow, onHead, live, slotStart, table } from '../app.js';
import { energyChart } from '../chart.js';
import { esc, kwh, percent } from '../format.js';
import { periodPicker, subjectPicker } from './common.js';

/**
 * Columns for the charts from meter_series: one point per interval of the period up to now
 * (chain time), summed over the member's meters; a missing interval has no value and a mark.
 */
export function intervalColumns(series, from, to, now) {
  const readingMs = series.reading_minutes * 60_000;
  // Nothing can be missing before the chain began.
  const first = Math.max(Math.floor(slotStart(from) / readingMs), Math.floor(app.genesisMs / readingMs));
  const last = Math.min(Math.floor((slotStart(to + 1)) / readingMs) - 1, Math.floor(now / readingMs) - 1);
  const count = Math.max(0, last - first + 1);
  const produced = new Array(count).fill(null);
  const consumed = new Array(count).fill(null);
  const flags = new Array(count).fill(-1);
  for (const meter of series.meters) {
    for (let index = 0; index < meter.intervals.length; index++) {
      const at = meter.intervals[index] - first;
      if (at < 0 || at >= count) continue;
      produced[at] = (produced[at] ?? 0) + meter.produced_mwh[index] / 1e6;
      consumed[at] = (consumed[at] ?? 0) + meter.consumed_mwh[index] / 1e6;
      flags[at] = Math.max(flags[at], 0) | meter.flags[index];
    }
  }
  const times = Array.from({ length: count }, (_, index) => ((first + index) * readingMs) / 1000);
  const counts = { measured: 0, estimated: 0, late: 0, missing: 0 };
  const estimated = new Array(count).fill(null);
  const late = new Array(count).fill(null);
  const missing = new Array(count).fill(null);
  for (let index = 0; index < count; index++) {
    const flag = flags[index];
    const top = Math.max(produced[index] ?? 0, consumed[index] ?? 0);
    if (flag < 0) {
      counts.missing++;
      missing[index] = 0;
    } else {
      if (flag & 1) { counts.estimated++; estimated[index] = top; }
      if (flag & 2) { counts.late++; late[index] = top; }
      if (!flag) counts.measured++;
    }
  }
  return { data: [times, produced, consumed, estimated, late, missing], counts, readingMs };
}

/** The same, summed per slot (a slot with any missing interval is marked missing). */
export function slotColumns(columns, slotMs) {
  const [times, produced, consumed, estimated, late, missing] = columns.data;
  const slots = new Map();
  for (let index = 0; index < times.length; index++) {
    const slot = Math.floor((times[index] * 1000) / slotMs);
    const entry = slots.get(slot) ?? { produced: null, consumed: null, estimated: false, late: false, missing: false };
    if (produced[index] !== null) entry.produced = (entry.produced ?? 0) + produced[index];
    if (consumed[index] !== null) entry.consumed = (entry.consumed ?? 0) + consumed[index];
    entry.estimated ||= estimated[index] !== null;
    entry.late ||= late[index] !== null;
    entry.missing ||= missing[index] !== null;
    slots.set(slot, entry);
  }
  const keys = [...slots.keys()].sort((a, b) => a - b);
  const top = (entry) => Math.max(entry.produced ?? 0, entry.consumed ?? 0);
  return [
    keys.map((slot) => (slot * slotMs) / 1000),
    keys.map((slot) => slots.get(slot).produced),
    keys.map((slot) => slots.get(slot).consumed),
    keys.map((slot) => (slots.get(slot).estimated ? top(slots.get(slot)) : null)),
    keys.map((slot) => (slots.get(slot).late ? top(slots.get(slot)) : null)),
    keys.map((slot) => (slots.get(slot).missing ? 0 : null)),
  ];
}

/** Where energy came from and went to, from a statement's totals. */
function flows(totals) {
  const n = (value) => Number(value);
  const ownUse = Math.max(0, n(totals.consumed_mwh) - n(totals.imported_mwh));
  const ownProduced = Math.max(0, n(totals.produced_mwh) - n(totals.exported_mwh));
  return {
    from: [['own production', ownUse], ['neighbours (market)', n(totals.market_bought_mwh)], ['contract', n(totals.contract_bought_mwh)], ['grid', n(totals.grid_bought_mwh)]],
    to: [['own use', ownProduced], ['neighbours (market)', n(totals.market_sold_mwh)], ['contract', n(totals.contract_sold_mwh)], ['grid', n(totals.grid_sold_mwh)]],
  };
}

function flowBar(title, parts) {
  const total = parts.reduce((sum, [, value]) => sum + value, 0);
  // The colour follows the part, also when another part is empty.
  const segments = parts
    .map((part, index) => [...part, index])
    .filter(([, value]) => value > 0)
    .map(([label, value, index]) => `<span class="segment s${index}" style-width="${(value / total) * 100}" title="${esc(label)}: ${kwh(value)}"></span>`)
    .join('');
  const legend = parts.map(([label, value], index) => `<li><span class="swatch s${index}"></span>${esc(label)}: ${kwh(value)} (${total ? percent(value / total) : 'n/a'})</li>`).join('');
  return `<div class="flow"><h3>${esc(title)} (${kwh(total)})</h3><div class="bar" role="img" aria-label="${esc(title)}">${segments}</div><ul class="legend">${legend}</ul></div>`;
}

export async function render(root) {
  root.innerHTML = `
    <h1>My energy</h1>
    <div class="toolbar"><div id="subject"></div><div id="period"></div></div>
    <p class="muted">Gross values: production and consumption are shown separately, never netted.
      Marks: <span class="mark estimated">estimated</span> <span class="mark late">late</span>
      (arrived more than a slot after its interval) <span class="mark missing">missing</span>.</p>
    <section class="card"><h2>Per interval</h2><div id="quality" class="quality"></div><div id="minutes" class="chart"></div></section>
    <section class="card"><h2>Per slot</h2><div id="slots" class="chart"></div></section>
    <section class="card"><h2>Where my energy came from and went</h2><div id="flows"></div><div id="settled" class="muted"></div></section>`;
  const stops = [];
  let charts = [];
  let period = null;
  const draw = async () => {
    const started = performance.now();
    const { from, to } = period();
    const account = app.subject;
    const [series, statement] = await Promise.all([
      call('meter_series', [account, from, to]),
      call('statement', [account, from, to]),
    ]);
    for (const stop of charts) stop();
    charts = [];
    const columns = intervalColumns(series, from, to, chainNow());
    const counts = columns.counts;
    root.querySelector('#quality').innerHTML = table(
      ['measured', 'estimated', 'late', 'missing', 'meters'],
      [[`<span id="q-measured">${counts.measured}</span>`, `<span id="q-estimated">${counts.estimated}</span>`,
        `<span id="q-late">${counts.late}</span>`, `<span id="q-missing">${counts.missing}</span>`, series.meters.length]],
    );
    const minutes = root.querySelector('#minutes');
    const slots = root.querySelector('#slots');
    minutes.innerHTML = '';
    slots.innerHTML = '';
    minutes.dataset.points = String(columns.data[0].length);
    // One chart per task, so that the page stays responsive between them.
    const yieldToPage = () => new Promise((resolve) => setTimeout(resolve));
    await yieldToPage();
    charts.push(energyChart(minutes, columns.data, { title: `Every ${series.reading_minutes} min` }));
    await yieldToPage();
    const slotMs = series.slot_minutes * 60_000;
    charts.push(energyChart(slots, slotColumns(columns, slotMs), { title: `Every ${series.slot_minutes} min slot`, bars: true }));
    const flow = flows(statement.totals);
    root.querySelector('#flows').innerHTML = flowBar('Came from', flow.from) + flowBar('Went to', flow.to);
    for (const segment of root.querySelectorAll('.segment')) segment.style.width = `${segment.getAttribute('style-width')}%`;
    root.querySelector('#settled').textContent = `${statement.lines.length} settled slot(s) in the period; slots settle ${app.market.settlement_delay_slots} slot(s) after they end.`;
    // For measurements: how many draws, and how long the last one took (data and charts).
    root.dataset.drawn = String(Number(root.dataset.drawn ?? 0) + 1);
    root.dataset.drawMs = String(Math.round(performance.now() - started));
  };
  await subjectPicker(root.querySelector('#subject'), () => draw());
  period = periodPicker(root.querySelector('#period'), () => draw());
  await draw();
  // New readings and settlements redraw the charts (at most once per head).
  let dirty = false;
  const mark = () => { dirty = true; };
  stops.push(live.subscribe('meter_subscribeReadings', [app.subject], 'meter_unsubscribeReadings', mark));
  stops.push(live.subscribe('settlement_subscribe', [app.subject], 'settlement_unsubscribe', mark));
  stops.push(onHead(() => {
    if (dirty) {
      dirty = false;
      draw().catch(() => {});
    }
  }));
  return () => {
    for (const stop of stops) stop();
    for (const stop of charts) stop();
  };
}
