// WebSocket transport: /ws/{session_id}, authenticated with the "bearer, <jwt>" subprotocol.
// Reconnects by itself with exponential backoff and, once open again, resumes every
// unfinished generation after the last seq it has and re-sends messages not yet accepted
// (same client_msg_id, so the server runs nothing twice).

const PING_EVERY = 20000;
const DEAD_AFTER = 50000;

export class WsTransport {
  /**
   * hooks: token(), renew() -> Promise<bool>, onFrame(frame), onState(state), onAuthFailure(), onSessionGone(),
   *        unfinished() -> [{id, lastSeq}], pending() -> [{content, clientMsgId}]
   */
  constructor(hooks) {
    this.h = hooks;
    this.name = 'ws';
    this.ws = null;
    this.sessionId = null;
    this.attempt = 0;
    this.timer = 0;
    this.pinger = 0;
    this.stopped = true;
    this.authRetries = 0; // renewals since the socket last opened: a token refused at once stops the loop
    this.onOnline = () => this.reconnectNow();
    window.addEventListener('online', this.onOnline);
  }

  get isOpen() { return !!this.ws && this.ws.readyState === WebSocket.OPEN; }

  open(sessionId) {
    this.close();
    this.sessionId = sessionId;
    this.stopped = false;
    this.attempt = 0;
    this._connect();
  }

  close() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.pinger);
    const ws = this.ws;
    this.ws = null;
    if (ws) { try { ws.close(1000, 'client closed'); } catch { /* ignore */ } }
    this.h.onState('off');
  }

  destroy() {
    this.close();
    window.removeEventListener('online', this.onOnline);
  }

  _connect() {
    if (this.stopped || !this.sessionId) return;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const url = `${scheme}://${location.host}/ws/${encodeURIComponent(this.sessionId)}`;
    let ws;
    try {
      ws = new WebSocket(url, ['bearer', this.h.token()]);
    } catch {
      this._retry();
      return;
    }
    this.ws = ws;
    this.h.onState(this.attempt ? 'reconnecting' : 'connecting');
    ws.onopen = () => {
      if (ws !== this.ws) return;
      this.attempt = 0;
      this.authRetries = 0;
      this.lastRx = Date.now();
      this.h.onState('open');
      for (const g of this.h.unfinished()) this._send({ type: 'resume', generation_id: g.id, after_seq: g.lastSeq });
      for (const m of this.h.pending()) this._send({ type: 'message', content: m.content, client_msg_id: m.clientMsgId });
      clearInterval(this.pinger);
      this.pinger = setInterval(() => this._heartbeat(), PING_EVERY);
    };
    ws.onmessage = (e) => {
      if (ws !== this.ws) return;
      this.lastRx = Date.now();
      let frame;
      try { frame = JSON.parse(e.data); } catch { return; }
      if (frame && typeof frame === 'object') this.h.onFrame(frame);
    };
    ws.onclose = (e) => {
      if (ws !== this.ws) return;
      this.ws = null;
      clearInterval(this.pinger);
      if (this.stopped) return;
      if (e.code === 4401) { this._renewAndReconnect(); return; }
      if (e.code === 4404) { this.stopped = true; this.h.onState('closed'); this.h.onSessionGone(); return; }
      this._retry(e.code === 4429 || e.code === 1013);
    };
    ws.onerror = () => { /* onclose follows */ };
  }

  /**
   * 4401: the token the socket was opened with expired (or was refused). With a renewed one
   * the socket comes straight back and resumes every answer after its last seq, so a stream
   * loses nothing; only when renewing fails is it the end of the sign-in.
   */
  async _renewAndReconnect() {
    this.h.onState('reconnecting');
    const renewed = this.authRetries < 2 && this.h.renew && await this.h.renew();
    if (this.stopped) return;
    if (renewed) { this.authRetries += 1; this.attempt = 0; this._connect(); return; }
    this.stopped = true;
    this.h.onState('closed');
    this.h.onAuthFailure();
  }

  _heartbeat() {
    if (!this.isOpen) return;
    if (Date.now() - this.lastRx > DEAD_AFTER) {
      // Half-open connection: drop it and start again.
      const ws = this.ws;
      this.ws = null;
      clearInterval(this.pinger);
      try { ws.close(4000, 'heartbeat timeout'); } catch { /* ignore */ }
      this._retry();
      return;
    }
    this._send({ type: 'ping' });
  }

  _retry(slow = false) {
    if (this.stopped) return;
    this.h.onState('reconnecting');
    const base = Math.min(15000, 500 * 2 ** this.attempt) * (slow ? 3 : 1);
    this.attempt += 1;
    const delay = base / 2 + Math.random() * (base / 2);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this._connect(), delay);
  }

  /** Reconnects at once (e.g. when the browser comes back online). */
  reconnectNow() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.timer);
    this.attempt = 0;
    this._connect();
  }

  _send(obj) {
    if (!this.isOpen) return false;
    try { this.ws.send(JSON.stringify(obj)); return true; } catch { return false; }
  }

  /** Sends a message; if the socket is down it goes out (from pending()) when it reopens. */
  send({ content, clientMsgId }) {
    this._send({ type: 'message', content, client_msg_id: clientMsgId });
  }

  /** Asks for the frames after afterSeq; when closed, the resume happens on reconnect. */
  follow(genId, afterSeq) {
    this._send({ type: 'resume', generation_id: genId, after_seq: afterSeq });
  }

  /** Cancels over the socket when open; returns false so the caller can use REST instead. */
  cancel(genId) {
    return this._send({ type: 'cancel', generation_id: genId });
  }
}
