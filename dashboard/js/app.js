// Shared state of the page: the session, the node and chain clock, the market's rules, and a
// few helpers every view uses.

import { call, live, RpcError } from './rpc.js';
import { esc } from './format.js';

export const app = {
  /** `{account, role, expires_ms}` or null. */
  session: null,
  /** node_status. */
  status: null,
  /** market_status, refreshed on every head. */
  market: null,
  /** The account the member views are about: the session's, or one the operator picked. */
  subject: null,
  /** The last head and when it arrived (wall clock), for the chain clock. */
  head: null,
  headSeenAt: 0,
  /** Chain ms per wall ms (a devnet may run an accelerated clock). */
  speed: 1,
  /** The node's chain clock as last read: `{chainMs, seenAt}` (performance.now()). */
  clock: null,
  /** Chain time of the genesis block: no interval before it can be missing. */
  genesisMs: 0,
};

const headListeners = new Set();

/** Calls `listener(head)` on every new head until the returned function is called. */
export function onHead(listener) {
  headListeners.add(listener);
  return () => headListeners.delete(listener);
}

export function newHead(head) {
  app.head = head;
  app.headSeenAt = performance.now();
  for (const listener of headListeners) listener(head);
}

/** Chain time now: the node's clock at the last market_status, run on at the chain's speed. */
export function chainNow() {
  if (!app.clock) return app.head?.timestamp_ms ?? Date.now();
  return app.clock.chainMs + (performance.now() - app.clock.seenAt) * app.speed;
}

/** The slot that contains chain time `ms`. */
export function slotOf(ms) {
  return Math.floor(ms / (app.market.slot_minutes * 60_000));
}

export function slotStart(slot) {
  return slot * app.market.slot_minutes * 60_000;
}

export function isOperator() {
  return app.session?.role === 'operator';
}

/** Words for an error from the node or from signing. */
export function explain(error) {
  if (error instanceof RpcError) {
    if (error.reason === 'login_required' || error.reason === 'session_expired') {
      return 'Please log in again: your session is over.';
    }
    return error.message;
  }
  return error?.message ?? String(error);
}

/** Shows `message` in the notice area (kind: info, ok, error). */
export function notice(message, kind = 'info') {
  const area = document.getElementById('notice');
  area.className = `notice ${kind}`;
  area.textContent = message;
  area.hidden = false;
  if (kind !== 'error') {
    clearTimeout(notice.timer);
    notice.timer = setTimeout(() => { area.hidden = true; }, 8000);
  }
}

/**
 * Runs an action that signs and submits a transaction: shows progress, the chain's reason if
 * it is refused (at submission or in its receipt), and calls `done` once it is in a block.
 */
export async function act(what, submitting, done) {
  notice(`${what}: signing and sending…`);
  try {
    await submitting((tx) => {
      if (tx?.receipt && !tx.receipt.success) {
        notice(`${what} was refused by the chain: ${tx.receipt.message ?? tx.receipt.reason}`, 'error');
      } else {
        notice(`${what}: done (block ${tx?.height ?? '?'})`, 'ok');
      }
      done?.(tx);
    });
    notice(`${what}: sent, waiting for the next block…`);
  } catch (error) {
    notice(`${what} was refused: ${explain(error)}`, 'error');
  }
}

/** A table from rows of cells (already escaped HTML) with a header. */
export function table(headers, rows, empty = 'nothing yet') {
  if (!rows.length) return `<p class="empty">${esc(empty)}</p>`;
  return `<table><thead><tr>${headers.map((h) => `<th scope="col">${h}</th>`).join('')}</tr></thead>
    <tbody>${rows.map((row) => `<tr>${row.map((cell) => `<td>${cell}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

/** Refreshes market_status. */
export async function refreshMarket() {
  const asked = performance.now();
  app.market = await call('market_status');
  app.speed = app.market.speed || 1;
  if (app.market.clock_ms) app.clock = { chainMs: app.market.clock_ms, seenAt: (asked + performance.now()) / 2 };
  return app.market;
}

export { call, live };

/**
 * Signs `payload` with the session's own key and sends it (see `act`). Without an unlocked
 * key (after a reload) it first asks for the keystore, in a form placed after `anchor`.
 */
export async function signAndSend(what, payload, anchor, done) {
  const wallet = await import('./wallet.js');
  const run = () => act(what, (onStatus) => wallet.submit(payload, onStatus), done);
  if (wallet.account()?.address === app.session?.account) {
    await run();
    return;
  }
  const { unlockForm } = await import('./views/login.js');
  document.querySelector('form.unlock')?.remove();
  anchor.after(unlockForm(run));
}

/** The `name` field of a form, trimmed. */
export function field(form, name) {
  return form.elements[name].value.trim();
}
