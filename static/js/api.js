// REST client for the public API (see docs/protocol.md). Keeps the access token in
// sessionStorage for the life of the tab; the refresh token is an HttpOnly cookie the page
// never sees, which renews it (POST /token/refresh): in a new tab, after a reload, before it
// expires, and once after a 401. Every error body is {"code", "detail"}.

const TOKEN_KEY = 'llmchat.token';
const EXP_KEY = 'llmchat.expires_at';
const USER_KEY = 'llmchat.username'; // in localStorage: a new tab knows whom it renews for

export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

let unauthorizedHandler = () => {};
/** Called with the ApiError whenever an authenticated request answers 401. */
export function onUnauthorized(fn) { unauthorizedHandler = fn; }
export function reportUnauthorized(err) { unauthorizedHandler(err); }

let renewing = null;

export const auth = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  get username() { return localStorage.getItem(USER_KEY) || ''; },
  get expiresAt() { return Number(sessionStorage.getItem(EXP_KEY) || 0); },
  save(tok, username) {
    sessionStorage.setItem(TOKEN_KEY, tok.access_token);
    const ttl = Number(tok.expires_in);
    // No expires_in: assume an hour; the server's 401 still ends the session if it is shorter.
    sessionStorage.setItem(EXP_KEY, String(Date.now() + (ttl > 0 ? ttl : 3600) * 1000));
    if (username) localStorage.setItem(USER_KEY, username);
  },
  clear({ forget = false } = {}) {
    for (const k of [TOKEN_KEY, EXP_KEY]) sessionStorage.removeItem(k);
    if (forget) localStorage.removeItem(USER_KEY);
  },
  valid() { return !!this.token && Date.now() < this.expiresAt - 2000; },
  header() { return this.token ? { Authorization: `Bearer ${this.token}` } : {}; },
  /**
   * A new access token from the refresh cookie; true if it worked. One request at a time per
   * tab: every caller waiting on a renewal shares it. Open streams are left alone: a socket
   * closed when its old token expires reconnects with the new one and resumes (ws.js).
   */
  renew() {
    if (!renewing) {
      renewing = (async () => {
        try {
          const res = await fetch('/token/refresh', { method: 'POST', cache: 'no-store', credentials: 'same-origin' });
          if (!res.ok) return false;
          this.save(await res.json(), this.username);
          window.dispatchEvent(new CustomEvent('llmchat:renewed'));
          return true;
        } catch { return false; } finally { renewing = null; }
      })();
    }
    return renewing;
  },
  /** POST /logout (ends this sign-in's refresh tokens, clears the cookie); errors are ignored. */
  async logout() {
    if (!this.token) return;
    try { await fetch('/logout', { method: 'POST', headers: this.header(), cache: 'no-store' }); } catch { /* offline */ }
  },
};

/** Turns a non-2xx response into an ApiError with a human message. */
export async function errorFrom(res) {
  let body = null;
  try { body = await res.json(); } catch { /* not JSON */ }
  let detail = body && (body.detail ?? body.message);
  if (Array.isArray(detail)) {
    detail = detail.map((d) => (d && d.msg) ? `${(d.loc || []).slice(-1)[0] ?? ''} ${d.msg}`.trim() : String(d)).join('; ');
  } else if (detail && typeof detail === 'object') {
    detail = detail.message || JSON.stringify(detail);
  }
  const retry = res.headers.get('Retry-After');
  const err = new ApiError(res.status, body && body.code, detail || res.statusText || `HTTP ${res.status}`);
  if (retry) err.retryAfter = Number(retry) || null;
  return err;
}

export function networkError() {
  return new ApiError(0, 'network_error', 'Cannot reach the server. Check your connection and try again.');
}

/** fetch() wrapper: JSON in and out, bearer auth, ApiError on failure. */
export async function request(method, path, opts = {}) {
  const { body, form, signal, authed = true, retried = false } = opts;
  const headers = { Accept: 'application/json', ...(authed ? auth.header() : {}) };
  let payload;
  if (form) {
    payload = new URLSearchParams(form);
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers['Content-Type'] = 'application/json';
  }
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload, signal, cache: 'no-store' });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw networkError();
  }
  if (!res.ok) {
    const err = await errorFrom(res);
    if (res.status === 401 && authed) {
      if (!retried && await auth.renew()) return request(method, path, { ...opts, retried: true });
      unauthorizedHandler(err);
    }
    throw err;
  }
  if (res.status === 204) return null;
  const type = res.headers.get('content-type') || '';
  return type.includes('json') ? res.json() : res.text();
}

const seg = (id) => encodeURIComponent(id);

export const api = {
  signup: (username, password) => request('POST', '/users', { body: { username, password }, authed: false }),
  login: (username, password) => request('POST', '/token', { form: { username, password }, authed: false }),
  models: () => request('GET', '/models'),
  help: () => request('GET', '/help', { authed: false }),
  listSessions: (limit = 50, offset = 0, q = '') => request('GET', `/sessions?limit=${limit}&offset=${offset}`
    + (q ? `&q=${encodeURIComponent(q)}` : '')),
  createSession: (cfg) => request('POST', '/set-llm', { body: cfg }),
  getSession: (id) => request('GET', `/sessions/${seg(id)}`),
  patchSession: (id, patch) => request('PATCH', `/sessions/${seg(id)}`, { body: patch }),
  deleteSession: (id) => request('DELETE', `/sessions/${seg(id)}`),
  getGeneration: (id) => request('GET', `/generations/${seg(id)}`),
  cancelGeneration: (id) => request('POST', `/generations/${seg(id)}/cancel`),
  // The conversation tree (tree.js): op is 'regenerate' or 'continue'.
  branch: (sid, mid, op) => request('POST', `/sessions/${seg(sid)}/messages/${seg(mid)}/${op}`),
  editMessage: (sid, mid, content) => request('POST', `/sessions/${seg(sid)}/messages/${seg(mid)}/edit`,
    { body: { content } }),
  switchBranch: (sid, mid) => request('PUT', `/sessions/${seg(sid)}/active`, { body: { message_id: mid } }),

  /** GET /health answers 200 or 503 with the same body shape; both are "answers". */
  async health() {
    const res = await fetch('/health', { cache: 'no-store', headers: { Accept: 'application/json' } });
    let body = null;
    try { body = await res.json(); } catch { /* ignore */ }
    return { httpStatus: res.status, body };
  },
};

/** A unique id for client_msg_id (crypto.randomUUID needs a secure context). */
export function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
}

export const ULID_RE = /^[0-9A-HJKMNP-TV-Z]{26}$/i;
