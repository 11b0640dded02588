// Boot and navigation: who is logged in, the live connection, and one view at a time
// (`#/energy`, `#/money`, `#/market`, `#/contracts`, `#/operator`, `#/explorer/…`, `#/login`).

import { app, call, live, newHead, notice, explain, refreshMarket } from './app.js';
import { short, esc } from './format.js';

const VIEWS = {
  login: () => import('./views/login.js'),
  energy: () => import('./views/energy.js'),
  money: () => import('./views/money.js'),
  market: () => import('./views/market.js'),
  contracts: () => import('./views/contracts.js'),
  operator: () => import('./views/operator.js'),
  explorer: () => import('./views/explorer.js'),
};

/** Views that need a session. */
const PRIVATE = new Set(['energy', 'money', 'market', 'contracts', 'operator']);

let cleanup = () => {};
let navigation = 0;

function route() {
  const [name, ...rest] = location.hash.replace(/^#\/?/, '').split('/');
  if (VIEWS[name]) return { name, params: rest.map(decodeURIComponent) };
  return { name: app.session ? 'energy' : 'login', params: [] };
}

async function show() {
  const number = ++navigation;
  let { name, params } = route();
  if (PRIVATE.has(name) && !app.session) {
    name = 'login';
  }
  cleanup();
  cleanup = () => {};
  for (const link of document.querySelectorAll('nav a[data-view]')) {
    link.setAttribute('aria-current', link.dataset.view === name ? 'page' : 'false');
  }
  const root = document.getElementById('view');
  root.dataset.view = name;
  root.dataset.ready = 'false';
  root.innerHTML = '<p class="loading">Loading…</p>';
  const started = performance.now();
  try {
    const view = await VIEWS[name]();
    if (number !== navigation) return;
    const stop = await view.render(root, params);
    if (number !== navigation) {
      stop?.();
      return;
    }
    cleanup = stop ?? (() => {});
    root.dataset.ready = 'true';
    root.dataset.renderMs = String(Math.round(performance.now() - started));
    const heading = root.querySelector('h1');
    if (heading) document.title = `${heading.textContent} · Joule`;
  } catch (error) {
    if (number !== navigation) return;
    root.innerHTML = `<h1>Something went wrong</h1><p class="error">${esc(explain(error))}</p>`;
    root.dataset.ready = 'error';
    if (error?.reason === 'session_expired' || error?.reason === 'login_required') {
      app.session = null;
      header();
    }
  }
}

function header() {
  const who = document.getElementById('who');
  const operatorLink = document.querySelector('nav a[data-view="operator"]');
  operatorLink.hidden = app.session?.role !== 'operator';
  for (const link of document.querySelectorAll('nav a[data-private]')) link.hidden = !app.session;
  if (app.session) {
    who.innerHTML = `<span title="${esc(app.session.account)}">${esc(app.session.role)} ${esc(short(app.session.account))}</span>
      <button type="button" id="logout">Log out</button>`;
    document.getElementById('logout').onclick = async () => {
      try {
        await call('auth_logout');
      } catch (error) {
        notice(explain(error), 'error');
      }
      const { forget } = await import('./wallet.js');
      forget();
      app.session = null;
      app.subject = null;
      live.reopen();
      header();
      location.hash = '#/login';
    };
  } else {
    who.innerHTML = '<a href="#/login">Log in</a>';
  }
}

/** Called by the login view once a session is open. */
export async function loggedIn() {
  app.session = await call('auth_session');
  app.subject = app.session?.account ?? null;
  header();
  location.hash = '#/energy';
}

async function boot() {
  const [session, status, genesis] = await Promise.all([call('auth_session'), call('node_status'), call('chain_block', [0])]);
  app.genesisMs = genesis?.timestamp_ms ?? 0;
  app.session = session;
  app.subject = session?.account ?? null;
  app.status = status;
  app.head = status.head;
  app.headSeenAt = performance.now();
  await refreshMarket();
  document.getElementById('chain').textContent = status.chain_id;
  header();
  const state = document.getElementById('live');
  live.onState = (value) => {
    state.textContent = value === 'live' ? 'live' : 'reconnecting…';
    state.dataset.state = value;
  };
  live.subscribe('chain_subscribeNewHeads', [], 'chain_unsubscribeNewHeads', (head) => {
    newHead(head);
    document.getElementById('height').textContent = `block ${head.height}`;
    refreshMarket().catch(() => {});
  });
  live.connect();
  document.getElementById('height').textContent = `block ${status.head.height}`;
  window.addEventListener('hashchange', show);
  await show();
}

// For the browser's console and the browser tests: the API client and the page's wallet.
window.joule = { call, wallet: () => import('./wallet.js') };

boot().catch((error) => {
  document.getElementById('view').innerHTML = `<h1>Cannot reach the node</h1><p class="error">${esc(explain(error))}</p>`;
});
