// SSE transport. EventSource can neither POST nor send an Authorization header, so streams
// are read with fetch() + ReadableStream: POST /chat (stream: true, Accept: text/event-stream)
// for a new message, GET /generations/{id}/events?after=k to resume one.
import { auth, errorFrom } from './api.js';

// Browsers allow ~6 HTTP/1.1 connections per host: keep some free for REST calls.
const MAX_STREAMS = 4;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const backoff = (n) => { const b = Math.min(15000, 500 * 2 ** n); return b / 2 + Math.random() * (b / 2); };

/** Parses an SSE byte stream into {id, event, data} events (comments such as ": ping" are skipped). */
export async function* readSse(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let ev = { id: null, event: null, data: [] };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        if (line === '') {
          if (ev.data.length) yield { id: ev.id, event: ev.event, data: ev.data.join('\n') };
          ev = { id: null, event: null, data: [] };
          continue;
        }
        if (line.startsWith(':')) continue;
        const c = line.indexOf(':');
        const field = c < 0 ? line : line.slice(0, c);
        const val = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
        if (field === 'data') ev.data.push(val);
        else if (field === 'event') ev.event = val;
        else if (field === 'id') ev.id = val;
      }
    }
  } finally {
    reader.releaseLock?.();
  }
}

export class SseTransport {
  /**
   * hooks: onFrame(frame), onState(state), onAuthFailure(err), onSendError(clientMsgId, err),
   *        lastSeq(genId), isDone(genId), unfinished() -> [{id, lastSeq}]
   */
  constructor(hooks) {
    this.h = hooks;
    this.name = 'sse';
    this.sessionId = null;
    this.streams = new Map(); // generation_id -> AbortController of the stream following it
    this.sends = new Set();   // AbortControllers of POST /chat requests without a generation id yet
    this.waiting = [];        // generations to follow once a stream slot frees up, in order
    this.stopped = true;
  }

  get active() { return this.streams.size; }

  open(sessionId) {
    this.close();
    this.sessionId = sessionId;
    this.stopped = false;
    this.h.onState('off');
    for (const g of this.h.unfinished()) this.follow(g.id);
  }

  close() {
    this.stopped = true;
    for (const c of this.streams.values()) c.abort();
    for (const c of this.sends) c.abort();
    this.streams.clear();
    this.sends.clear();
    this.waiting = [];
  }

  destroy() { this.close(); }

  _headers(extra = {}) {
    return { Accept: 'text/event-stream', ...auth.header(), ...extra };
  }

  /** POST /chat as an SSE stream. Network failures before an answer are retried with the same client_msg_id. */
  async send({ content, clientMsgId }, attempt = 0) {
    if (this.stopped) return;
    const ctrl = new AbortController();
    this.sends.add(ctrl);
    const sessionId = this.sessionId;
    let res;
    try {
      res = await fetch('/chat', {
        method: 'POST',
        headers: this._headers({ 'Content-Type': 'application/json' }),
        body: JSON.stringify({ session_id: sessionId, message: content, client_msg_id: clientMsgId, stream: true }),
        signal: ctrl.signal,
        cache: 'no-store',
      });
    } catch (e) {
      this.sends.delete(ctrl);
      if (this.stopped || e.name === 'AbortError') return;
      if (attempt < 6) { await sleep(backoff(attempt)); this.send({ content, clientMsgId }, attempt + 1); return; }
      this.h.onSendError(clientMsgId, { code: 'network_error', detail: 'Cannot reach the server.' });
      return;
    }
    this.sends.delete(ctrl);
    if (!res.ok) {
      const err = await errorFrom(res);
      if (res.status === 401) this.h.onAuthFailure(err);
      else this.h.onSendError(clientMsgId, err);
      return;
    }
    const genId = res.headers.get('X-Generation-ID');
    if (genId) {
      // Show the reply's placeholder at once; the stream's own accepted frame adds the position.
      this.h.onFrame({ type: 'accepted', session_id: sessionId, generation_id: genId, client_msg_id: clientMsgId, position: null });
    }
    this._consume(genId, res, ctrl, 0);
  }

  /** Follows a generation from after its last applied seq, until its done frame. */
  async follow(genId, attempt = 0) {
    if (this.stopped || this.streams.has(genId) || this.h.isDone(genId)) return;
    if (this.streams.size + this.sends.size >= MAX_STREAMS) {
      if (!this.waiting.includes(genId)) this.waiting.push(genId);
      return;
    }
    const ctrl = new AbortController();
    this.streams.set(genId, ctrl);
    this.h.onState('streams');
    let res;
    try {
      const after = this.h.lastSeq(genId);
      res = await fetch(`/generations/${encodeURIComponent(genId)}/events?after=${after}`, {
        headers: this._headers(), signal: ctrl.signal, cache: 'no-store',
      });
    } catch (e) {
      this._dropped(genId, ctrl, attempt + 1);
      return;
    }
    if (!res.ok) {
      const err = await errorFrom(res);
      if (this.streams.get(genId) === ctrl) this.streams.delete(genId);
      if (res.status === 401) { this.h.onAuthFailure(err); return; }
      if (res.status === 404 || res.status === 422) {
        this.h.onFrame({ type: 'error', generation_id: genId, code: err.code, message: err.detail });
        return;
      }
      this._dropped(genId, ctrl, attempt + 1);
      return;
    }
    this._consume(genId, res, ctrl, attempt);
  }

  async _consume(genId, res, ctrl, attempt) {
    if (genId) {
      const old = this.streams.get(genId);
      if (old && old !== ctrl) old.abort();
      this.streams.set(genId, ctrl);
    }
    let got = false;
    try {
      for await (const ev of readSse(res.body)) {
        let frame;
        try { frame = JSON.parse(ev.data); } catch { continue; }
        if (!frame || typeof frame !== 'object') continue;
        if (!frame.type && ev.event) frame.type = ev.event;
        if (!genId && frame.generation_id) { genId = frame.generation_id; this.streams.set(genId, ctrl); }
        got = true;
        this.h.onFrame(frame);
        if (genId && this.h.isDone(genId)) break;
        // A queued reply gives its connection back while others stream; it is followed later.
        if (frame.type === 'accepted' && frame.position > 0 && this.streams.size + this.sends.size > MAX_STREAMS) {
          if (!this.waiting.includes(genId)) this.waiting.push(genId);
          break;
        }
      }
    } catch { /* dropped connection: resumed below */ }
    if (genId && this.waiting.includes(genId)) {
      if (this.streams.get(genId) === ctrl) this.streams.delete(genId);
      ctrl.abort();
      this._next();
      return;
    }
    this._dropped(genId, ctrl, got ? 0 : attempt + 1);
  }

  /** Starts following the next waiting generation if a slot is free. */
  _next() {
    while (this.waiting.length && this.streams.size + this.sends.size < MAX_STREAMS && !this.stopped) {
      const id = this.waiting.shift();
      if (!this.h.isDone(id)) this.follow(id);
    }
  }

  _dropped(genId, ctrl, attempt) {
    const abortedByUs = ctrl.signal.aborted; // close() or resync(): someone else carries on
    if (genId && this.streams.get(genId) === ctrl) this.streams.delete(genId);
    if (!abortedByUs) ctrl.abort();
    this.h.onState('streams');
    this._next();
    if (abortedByUs || this.stopped || !genId || this.h.isDone(genId)) return;
    setTimeout(() => this.follow(genId, attempt), attempt ? backoff(attempt - 1) : 50);
  }

  /** Asks for the frames after afterSeq: restarts the stream following that generation. */
  resync(genId) {
    const c = this.streams.get(genId);
    if (c) { this.streams.delete(genId); c.abort(); }
    this.follow(genId);
  }

  cancel() { return false; } // always through REST: POST /generations/{id}/cancel
}
