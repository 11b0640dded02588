// The node's JSON-RPC API, the only thing this app talks to: calls over HTTP POST to the
// page's own origin, subscriptions over one WebSocket to the same origin.

/** An error the node returned: `code`, `reason` (machine-readable) and the node's words. */
export class RpcError extends Error {
  constructor(code, message, reason) {
    super(message);
    this.code = code;
    this.reason = reason;
  }
}

function cookie(name) {
  for (const part of document.cookie.split(';')) {
    const [key, value] = part.trim().split('=');
    if (key === name) return value;
  }
  return '';
}

let nextId = 1;

/** Calls `method` with `params` (an array or an object). */
export async function call(method, params = []) {
  const headers = { 'content-type': 'application/json' };
  // A request that carries the session cookie must repeat its CSRF token.
  const csrf = cookie('joule_csrf');
  if (csrf) headers['x-joule-csrf'] = csrf;
  const response = await fetch('/', {
    method: 'POST',
    headers,
    credentials: 'same-origin',
    body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, params }),
  });
  if (!response.ok) {
    throw new RpcError(response.status, `${method}: HTTP ${response.status} ${await response.text()}`, 'http');
  }
  const reply = await response.json();
  if (reply.error) {
    throw new RpcError(reply.error.code, reply.error.message, reply.error.data?.reason);
  }
  return reply.result;
}

/** Several calls at once; resolves to their results in order (rejects on the first error). */
export function all(calls) {
  return Promise.all(calls.map(([method, params]) => call(method, params)));
}

/**
 * One WebSocket for every subscription, reconnected with backoff when it drops. The browser
 * sends the session cookie on the upgrade, so private subscriptions are the session's.
 */
class Live {
  constructor() {
    this.socket = null;
    this.pending = new Map(); // request id → {resolve, reject}
    this.handlers = new Map(); // subscription id → callback
    this.wanted = new Set(); // {method, params, unsubscribe, callback, id}
    this.onState = () => {};
    this.backoff = 500;
  }

  connect() {
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`;
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.onopen = () => {
      this.backoff = 500;
      this.onState('live');
      for (const wanted of this.wanted) this.start(wanted);
    };
    socket.onmessage = (event) => this.receive(JSON.parse(event.data));
    socket.onclose = () => {
      this.onState('reconnecting');
      for (const { reject } of this.pending.values()) reject(new Error('connection lost'));
      this.pending.clear();
      this.handlers.clear();
      setTimeout(() => this.connect(), this.backoff);
      this.backoff = Math.min(Math.max(this.backoff * 2, 500), 10_000);
    };
  }

  receive(message) {
    if (message.id !== undefined && this.pending.has(message.id)) {
      const { resolve, reject } = this.pending.get(message.id);
      this.pending.delete(message.id);
      if (message.error) reject(new RpcError(message.error.code, message.error.message, message.error.data?.reason));
      else resolve(message.result);
      return;
    }
    const subscription = message.params?.subscription;
    if (subscription !== undefined && this.handlers.has(subscription)) {
      this.handlers.get(subscription)(message.params.result);
    }
  }

  request(method, params) {
    return new Promise((resolve, reject) => {
      if (!this.socket || this.socket.readyState !== WebSocket.OPEN) {
        reject(new Error('not connected'));
        return;
      }
      const id = nextId++;
      this.pending.set(id, { resolve, reject });
      this.socket.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    });
  }

  async start(wanted) {
    try {
      wanted.id = await this.request(wanted.method, wanted.params);
      if (!this.wanted.has(wanted)) {
        this.request(wanted.unsubscribe, [wanted.id]).catch(() => {});
        return;
      }
      this.handlers.set(wanted.id, wanted.callback);
    } catch (error) {
      wanted.onError?.(error);
    }
  }

  /**
   * Follows a subscription until the returned function is called. `callback` gets each
   * notification; `onError` a refusal.
   */
  subscribe(method, params, unsubscribe, callback, onError) {
    const wanted = { method, params, unsubscribe, callback, onError, id: null };
    this.wanted.add(wanted);
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.start(wanted);
    return () => {
      this.wanted.delete(wanted);
      if (wanted.id !== null) {
        this.handlers.delete(wanted.id);
        this.request(unsubscribe, [wanted.id]).catch(() => {});
      }
    };
  }

  /** Drops and reopens the socket (after login or logout: the session is fixed per socket). */
  reopen() {
    this.backoff = 0;
    if (this.socket) this.socket.close();
  }
}

export const live = new Live();
