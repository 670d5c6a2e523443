// Chat controller: loads a session's history, sends messages over the chosen transport,
// applies frames to the generation store and keeps the composer, typing indicator and
// stream status in step. After a reload every unfinished reply is followed again.
import { api, auth, newId, reportUnauthorized } from './api.js';
import { GenStore, isFinal } from './gens.js';
import { MessageView } from './messages.js';
import { WsTransport } from './ws.js';
import { SseTransport } from './sse.js';
import { renderChrome } from './status.js';
import { bindComposer } from './composer.js';
import { JumpToLatest } from './msgextras.js';
import { TreeControls, renderBranch } from './tree.js';

const $ = (id) => document.getElementById(id);
const MODE_KEY = 'llmchat.mode';
const MESSAGE_ERRORS = new Set(['empty_message', 'message_too_long', 'missing_field', 'invalid_field', 'queue_full', 'too_many_queued', 'rate_limited', 'invalid_input']);

export class ChatController {
  /** hooks: createDefaultSession(), onSessionGone(id), onActivity(), banner(msg) */
  constructor(hooks) {
    this.h = hooks;
    this.store = new GenStore();
    this.pending = new Map(); // client_msg_id -> {content, clientMsgId}, until accepted
    this.sessionId = null;
    this.session = null;
    this.view = new MessageView($('messages'), $('scroller'));
    this.jump = new JumpToLatest(this.view, () => this.store.unfinished().length > 0);
    this.tree = new TreeControls($('messages'), {
      sessionId: () => this.sessionId,
      reload: (opts) => this.reload(opts),
      banner: (msg) => this.h.banner(msg),
    });
    this.mode = localStorage.getItem(MODE_KEY) === 'sse' ? 'sse' : 'ws';
    this.transport = this._makeTransport(this.mode);
    this.composer = bindComposer({
      send: (text) => this.send(text),
      stop: () => this.stop(),
      banner: (msg) => this.h.banner(msg),
    });
    this.refreshChrome();
  }

  _makeTransport(mode) {
    const common = {
      token: () => auth.token, renew: () => auth.renew(),
      onFrame: (f) => this.onFrame(f), onAuthFailure: (err) => this._authFailed(err),
      unfinished: () => this.store.unfinished(), pending: () => [...this.pending.values()],
    };
    if (mode === 'sse') {
      return new SseTransport({
        ...common,
        onState: () => this.refreshChrome(), onSendError: (id, err) => this._rejected(id, err),
        lastSeq: (id) => this.store.get(id)?.lastSeq ?? 0, isDone: (id) => !!this.store.get(id)?.done,
      });
    }
    return new WsTransport({
      ...common,
      onState: (s) => { this.socketState = s; this.refreshChrome(); },
      onSessionGone: () => this.h.onSessionGone(this.sessionId),
    });
  }

  setMode(mode) {
    if (mode === this.mode) return;
    this.mode = mode;
    localStorage.setItem(MODE_KEY, mode);
    this.transport.destroy();
    this.socketState = 'off';
    this.transport = this._makeTransport(mode);
    if (this.sessionId) {
      this.transport.open(this.sessionId); // resumes unfinished replies
      if (mode === 'sse') for (const m of this.pending.values()) this.transport.send(m);
    }
    this.refreshChrome();
  }

  /** Closes the current chat (sign-out, deleted session). */
  reset() {
    this.transport.close();
    this.loadSeq = (this.loadSeq || 0) + 1;
    this.sessionId = null;
    this.session = null;
    this.store.clear();
    this.pending.clear();
    this.view.clear();
    this.setSessionInfo(null);
    this.refreshChrome();
  }

  async loadSession(id, summary = null) {
    this.reset();
    const mine = this.loadSeq;
    this.sessionId = id;
    if (summary) this.setSessionInfo(summary); // shown at once; the history follows
    let data;
    try {
      data = await api.getSession(id);
    } catch (err) {
      if (mine === this.loadSeq) this.reset(); // nothing half-open: the caller reports the error
      throw err;
    }
    if (mine !== this.loadSeq) return false;
    this.setSessionInfo(data);
    if (!(await renderBranch(this.view, this.store, data.history || [], () => mine === this.loadSeq))) return false;
    this.transport.open(id);
    this.refreshChrome();
    return true;
  }

  /** Shows the session's active branch again (after a regenerate, edit, continue or switch). */
  async reload({ keepScroll = false } = {}) {
    if (!this.sessionId) return;
    const top = this.view.scroller.scrollTop;
    await this.loadSession(this.sessionId, this.session);
    if (keepScroll) this.view.scroller.scrollTop = top;
  }

  setSessionInfo(s) {
    this.session = s;
    $('chat-title').textContent = s ? (s.title || 'Untitled chat') : 'New chat';
    const badge = $('session-settings');
    badge.hidden = !s;
    badge.textContent = s?.config?.model_name || '';
    badge.title = s ? `Model ${s.config?.model_name} · temperature ${s.config?.temperature} · edit settings` : '';
    badge.setAttribute('aria-label', `${badge.textContent} — chat settings`); // the name starts with what it shows
    document.title = s ? `${s.title || 'Untitled chat'} · LLM Chat` : 'LLM Chat';
  }

  async send(text) {
    if (!text.trim()) return false;
    if (!this.sessionId && !(await this.h.createDefaultSession())) return false;
    const m = { content: text, clientMsgId: newId() };
    this.pending.set(m.clientMsgId, m);
    this.view.addUser({ key: m.clientMsgId, content: text, status: 'sending', createdAt: new Date().toISOString() });
    this.transport.send(m);
    this.refreshChrome();
    return true;
  }

  _rejected(clientMsgId, err) {
    const m = this.pending.get(clientMsgId);
    this.pending.delete(clientMsgId);
    const reason = err.detail || err.message || err.code;
    this.view.setUserStatus(clientMsgId, 'rejected', `Not sent: ${reason}`);
    if (m) this.composer.restore(m.content, reason);
    this.refreshChrome();
  }

  /** The text of the last message the user sent in this chat (for ↑ in an empty box). */
  lastUserText() { return [...this.view.box.querySelectorAll('.msg[data-role=user]')].at(-1)?._source || ''; }

  onFrame(f) {
    if (f.session_id && this.sessionId && f.session_id !== this.sessionId) return;
    if (f.type === 'pong' || f.type === 'session') return;
    if (f.type === 'error' && !f.generation_id) {
      // A refused message gets an error frame without client_msg_id: the server answers the
      // frames of one socket in order, so it belongs to the oldest message still pending.
      let key = f.client_msg_id;
      if (!key && this.mode === 'ws' && MESSAGE_ERRORS.has(f.code)) key = this.pending.keys().next().value;
      if (key && this.pending.has(key)) this._rejected(key, { detail: f.message, code: f.code });
      else this.h.banner(`Server error: ${f.message || f.code}`);
      return;
    }
    if (f.type === 'accepted') {
      if (f.client_msg_id) {
        this.pending.delete(f.client_msg_id);
        this.view.setUserStatus(f.client_msg_id, 'sent');
        const art = this.view.byKey.get(f.client_msg_id);
        if (art && f.generation_id) art.dataset.generationId = f.generation_id; // for Edit message
      }
      const { gen } = this.store.apply(f);
      if (!gen) return;
      gen.createdAt ||= new Date().toISOString();
      if (!this.view.hasAssistant(gen.id)) this.view.addAssistant(gen, f.client_msg_id);
      else this.view.update(gen);
      this.h.onActivity(); // the session moved to the top, and may have a title now
      this.refreshChrome();
      return;
    }
    const r = this.store.apply(f);
    if (!r.gen) return;
    if (!this.view.hasAssistant(r.gen.id)) this.view.addAssistant(r.gen);
    if (r.gap) this._resync(r.gen, r.doneFrame);
    if (r.changed) this.view.update(r.gen);
    if (r.ended) this._ended(r.gen);
    for (const g of r.moved || []) this.view.update(g);
    this.refreshChrome();
  }

  /** Frames are missing: ask again after the last seq we hold (or load the finished answer). */
  _resync(gen, doneFrame) {
    if (gen.gapPending) return;
    gen.gapPending = true;
    setTimeout(() => { gen.gapPending = false; }, 3000);
    if (doneFrame || this.mode === 'sse') {
      if (this.mode === 'sse' && !doneFrame) { this.transport.resync(gen.id); return; }
      api.getGeneration(gen.id).then((data) => {
        const g = this.store.adopt(data);
        this.view.update(g);
        if (g.done) this._ended(g);
        this.refreshChrome();
      }).catch(() => {});
      return;
    }
    this.transport.follow(gen.id, gen.lastSeq);
  }

  _ended(gen) {
    const words = { completed: 'Reply complete.', cancelled: 'Reply stopped.', incomplete: 'Reply incomplete.', failed: 'Reply failed.' };
    $('announcer').textContent = words[gen.status] || '';
    this.h.onActivity();
  }

  /** Stop button and Esc: cancels the running reply (or the first queued one); true if any. */
  stop() {
    const live = this.store.unfinished();
    const target = live.find((g) => g.status === 'running') || live[0];
    if (target) this.cancel(target.id);
    return !!target;
  }

  cancel(genId) {
    if (!genId) return;
    if (this.transport.cancel(genId)) return;
    api.cancelGeneration(genId).then(() => {
      // The done frame normally arrives on the stream; if it does not, load the final state.
      setTimeout(() => {
        const g = this.store.get(genId);
        if (g && !g.done) {
          api.getGeneration(genId).then((d) => {
            if (isFinal(d.status) && !g.done) { this.store.adopt(d); this.view.update(g); this._ended(g); this.refreshChrome(); }
          }).catch(() => {});
        }
      }, 2500);
    }).catch((err) => { if (err.status !== 401) this.h.banner(`Could not stop the reply: ${err.detail || err.message}`); });
  }

  /** A 401 (SSE): renew once and follow again; messages not yet accepted go out again. */
  async _authFailed(err) {
    if (this.mode !== 'sse' || !(await auth.renew())) { reportUnauthorized(err || { code: 'token_expired' }); return; }
    for (const g of this.store.unfinished()) this.transport.follow(g.id);
    for (const m of this.pending.values()) this.transport.send(m);
  }

  refreshChrome() { renderChrome(this); }
}
