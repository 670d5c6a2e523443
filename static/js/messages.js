// The conversation view: user and assistant messages, status badges, errors, timestamps.
// Assistant messages re-render their Markdown at most once per animation frame.
import { renderMarkdown, copyCode } from './markdown.js';
import { GenStore } from './gens.js';
import { icon } from './icons.js';
import { messageActions, copyMessage, usageText, collapseIfLong, toggleMore } from './msgextras.js';
import { versionSwitcher } from './tree.js';

const INCOMPLETE = {
  timeout: 'The reply timed out before it finished.',
  length: 'The reply reached the max tokens limit.',
  loop: 'The reply was stopped because it started repeating itself.',
};

export function formatTime(iso) {
  const d = iso ? new Date(iso) : new Date();
  if (Number.isNaN(d.getTime())) return { short: '', full: '' };
  const sameDay = d.toDateString() === new Date().toDateString();
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return {
    short: sameDay ? time : `${d.toLocaleDateString([], { month: 'short', day: 'numeric' })} ${time}`,
    full: d.toLocaleString(), iso: d.toISOString(),
  };
}

function el(tag, cls, attrs = {}) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function typingDots() {
  const s = el('span', 'dots', { 'aria-label': 'Assistant is typing' });
  s.append(el('i'), el('i'), el('i'));
  return s;
}

function badgeText(g) {
  switch (g.status) {
    case 'queued': return g.position > 0 ? `Queued · ${g.position} ahead` : 'Queued';
    case 'running': return 'Generating…';
    case 'cancelled': return 'Cancelled';
    case 'incomplete': return `Incomplete${g.finishReason ? ` · ${g.finishReason}` : ''}`;
    case 'failed': return 'Failed';
    default: return '';
  }
}

function errorText(g) {
  if (g.status === 'failed') {
    const e = g.error || g.frameError;
    if (g.finishReason === 'interrupted' && !e) return 'Interrupted: the server restarted while this reply was being written.';
    return `Error: ${e ? `${e.message || 'generation failed'}${e.code ? ` (${e.code})` : ''}` : 'generation failed'}`;
  }
  if (g.status === 'incomplete') return INCOMPLETE[g.finishReason] || `Incomplete reply (${g.finishReason || 'unknown reason'}).`;
  if (g.status === 'cancelled') return 'Stopped before the end of the reply.';
  if (g.frameError) return `Error: ${g.frameError.message || ''}${g.frameError.code ? ` (${g.frameError.code})` : ''}`;
  return '';
}

export class MessageView {
  constructor(container, scroller) {
    this.box = container;
    this.scroller = scroller;
    this.byKey = new Map();
    this.dirty = new Map();
    this.frame = 0;
    this.bulk = false; // adding many at once (tree.js renderBranch): no layout read per message, one scroll after
    container.addEventListener('click', (e) => {
      const copy = e.target.closest('.copy-btn');
      if (copy) { copyCode(copy); return; }
      const copyMsg = e.target.closest('.msg-copy');
      if (copyMsg) { copyMessage(copyMsg); return; }
      const more = e.target.closest('.show-more');
      if (more) { toggleMore(more); return; }
    });
  }

  clear() {
    this.box.replaceChildren();
    this.byKey.clear();
    this.dirty.clear();
  }

  get size() { return this.byKey.size; }

  nearBottom() {
    if (this.bulk) return false;
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 120;
  }

  scrollToBottom() { this.scroller.scrollTop = this.scroller.scrollHeight; }

  _shell(role, key, createdAt) {
    const art = el('article', 'msg', { 'data-role': role, 'data-testid': `${role}-message` });
    const meta = el('div', 'msg-meta');
    const who = el('span', 'msg-author');
    who.textContent = role === 'user' ? 'You' : role === 'assistant' ? 'Assistant' : 'System';
    const t = formatTime(createdAt);
    const time = el('time', 'msg-time', { datetime: t.iso || '', title: t.full, 'data-testid': 'msg-time' });
    time.textContent = t.short;
    const badge = el('span', 'badge', { 'data-testid': 'msg-status' });
    if (role === 'assistant') {
      const av = el('span', 'msg-avatar', { 'aria-hidden': 'true' });
      av.innerHTML = icon('spark', 13);
      meta.append(av);
    }
    meta.append(who, time);
    if (role === 'assistant') {
      meta.append(el('span', 'msg-model', { 'data-testid': 'msg-model' }));
      meta.append(el('span', 'msg-usage', { 'data-testid': 'msg-usage' }));
    }
    meta.append(badge);
    const body = el('div', role === 'assistant' ? 'msg-body md' : 'msg-body');
    const err = el('div', 'msg-error', { role: 'status', 'data-testid': 'msg-error' });
    err.hidden = true;
    const foot = el('div', 'msg-foot');
    foot.append(versionSwitcher(), messageActions(role));
    art.append(meta, body, err, foot);
    this.byKey.set(key, art);
    return art;
  }

  addUser({ key, content, createdAt, status = 'sent', role = 'user' }) {
    const stick = this.nearBottom();
    const art = this._shell(role, key, createdAt);
    art.dataset.key = key;
    art.dataset.status = status;
    art.querySelector('.msg-body').textContent = content;
    art._source = content;
    collapseIfLong(art, content);
    this.box.append(art);
    this.setUserStatus(key, status);
    if (stick || (role === 'user' && !this.bulk)) this.scrollToBottom();
    return art;
  }

  setUserStatus(key, status, error) {
    const art = this.byKey.get(key);
    if (!art) return;
    art.dataset.status = status;
    const words = { sending: 'Sending…', waiting: 'Waiting for connection', rejected: 'Not sent' };
    art.querySelector('.badge').textContent = words[status] || '';
    const err = art.querySelector('.msg-error');
    err.hidden = !error;
    err.textContent = error || '';
  }

  hasAssistant(genId) { return this.byKey.has(genId); }

  /** Adds the assistant message of a generation, right after its user message when known. */
  addAssistant(g, afterKey) {
    if (this.byKey.has(g.id)) return this.byKey.get(g.id);
    const stick = this.nearBottom();
    const art = this._shell('assistant', g.id, g.createdAt);
    art.dataset.generationId = g.id;
    let anchor = afterKey && this.byKey.get(afterKey);
    // Keep replies in submission order: skip past replies already attached to that message.
    while (anchor && anchor.nextElementSibling?.dataset.role === 'assistant') anchor = anchor.nextElementSibling;
    if (anchor) anchor.after(art); else this.box.append(art);
    this._render(art, g);
    if (stick) this.scrollToBottom();
    return art;
  }

  /** Schedules a re-render of a generation's message on the next animation frame. */
  update(g) {
    if (!this.byKey.has(g.id)) return;
    this.dirty.set(g.id, g);
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  flush() {
    this.frame = 0;
    const stick = this.nearBottom();
    for (const g of this.dirty.values()) {
      const art = this.byKey.get(g.id);
      if (art) this._render(art, g);
    }
    this.dirty.clear();
    if (stick) this.scrollToBottom();
  }

  _render(art, g) {
    const body = art.querySelector('.msg-body');
    const text = GenStore.display(g);
    const final = !!g.done;
    // Before the first token a running reply shows the typing dots (then the caret); a queued
    // one shows nothing: the queue line above the composer speaks for it.
    const empty = !text && !final ? g.status : '';
    if (art._text !== text || art._empty !== empty) {
      if (empty === 'running') body.replaceChildren(typingDots());
      else if (empty) body.replaceChildren();
      else body.replaceChildren(renderMarkdown(text));
      body.classList.toggle('has-text', !!text);
      art._text = text;
      art._empty = empty;
    }
    art.dataset.status = g.status;
    art.dataset.seq = String(g.lastSeq);
    art.dataset.raw = text;
    if (g.finishReason) art.dataset.finishReason = g.finishReason;
    art.setAttribute('aria-busy', String(!final));
    art.querySelector('.badge').textContent = badgeText(g);
    const model = art.querySelector('.msg-model');
    model.textContent = final && g.model ? g.model : '';
    model.title = model.textContent ? `Answered by ${g.model}` : '';
    art.querySelector('.msg-usage').textContent = final ? usageText(g.usage) : '';
    const err = art.querySelector('.msg-error');
    const msg = errorText(g);
    err.hidden = !msg;
    err.textContent = msg;
    err.dataset.kind = g.status;
  }
}
