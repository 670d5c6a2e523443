// Sessions sidebar: GET /sessions (last activity first, paginated), search (?q=), select, edit,
// delete. Each chat shows the time of its last message; a search result also the matching text.
import { api } from './api.js';
import { formatTime } from './messages.js';
import { icon } from './icons.js';

const $ = (id) => document.getElementById(id);
const PAGE = 50;

export class SessionsSidebar {
  /** hooks: onSelect(id), onEdit(summary), onDelete(summary) */
  constructor(hooks) {
    this.h = hooks;
    this.items = [];
    this.total = 0;
    this.activeId = null;
    this.list = $('session-list');
    this.list.addEventListener('click', (e) => {
      const li = e.target.closest('.session-item');
      if (!li) return;
      const s = this.items.find((x) => x.session_id === li.dataset.sessionId);
      if (!s) return;
      const action = e.target.closest('[data-action]')?.dataset.action;
      if (action === 'edit') this.h.onEdit(s);
      else if (action === 'delete') this.h.onDelete(s);
      else if (e.target.closest('.session-open')) {
        // A real link: with a modifier (new tab, new window) the browser handles it.
        if (e.ctrlKey || e.metaKey || e.shiftKey || e.altKey || e.button !== 0) return;
        e.preventDefault();
        this.h.onSelect(s.session_id);
      }
    });
    $('session-more').addEventListener('click', () => this.loadMore());
    this.query = '';
    const box = $('search-input');
    let timer = 0;
    box.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.search(box.value), 250);
    });
    box.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && box.value) { e.stopPropagation(); box.value = ''; this.search(''); }
    });
    $('session-search').addEventListener('submit', (e) => {
      e.preventDefault();
      clearTimeout(timer);
      this.search(box.value);
    });
  }

  /** Shows the chats matching `text` (titles and message text); '' goes back to all of them. */
  async search(text) {
    const q = text.trim();
    if (q === this.query) return;
    this.query = q;
    this.items = [];
    try {
      await this.refresh();
    } catch (err) {
      if (err.status !== 401) this._status(`Search failed: ${err.detail || err.message}`);
    }
  }

  async refresh() {
    const count = Math.max(PAGE, this.items.length);
    const q = this.query;
    const page = await api.listSessions(Math.min(count, 100), 0, q);
    if (q !== this.query) return; // a newer search is on its way
    this.items = page.items || [];
    this.total = page.total ?? this.items.length;
    this.render();
  }

  async loadMore() {
    const page = await api.listSessions(PAGE, this.items.length, this.query);
    const known = new Set(this.items.map((s) => s.session_id));
    this.items.push(...(page.items || []).filter((s) => !known.has(s.session_id)));
    this.total = page.total ?? this.items.length;
    this.render();
  }

  get(id) { return this.items.find((s) => s.session_id === id); }

  /** Inserts or replaces a session (after create or PATCH) without a round trip. */
  upsert(summary) {
    const i = this.items.findIndex((s) => s.session_id === summary.session_id);
    if (i >= 0) {
      const last = summary.last_message_at ?? this.items[i].last_message_at; // single answers leave it out
      this.items[i] = { ...this.items[i], ...summary, last_message_at: last };
    }
    else { this.items.unshift(summary); this.total += 1; }
    this.render();
  }

  remove(id) {
    const before = this.items.length;
    this.items = this.items.filter((s) => s.session_id !== id);
    if (this.items.length < before) this.total = Math.max(0, this.total - 1);
    this.render();
  }

  setActive(id) {
    this.activeId = id;
    for (const li of this.list.children) {
      const link = li.querySelector('.session-open');
      if (li.dataset.sessionId === id) { li.setAttribute('aria-current', 'true'); link?.setAttribute('aria-current', 'page'); }
      else { li.removeAttribute('aria-current'); link?.removeAttribute('aria-current'); }
    }
  }

  render() {
    const frag = document.createDocumentFragment();
    for (const s of this.items) frag.append(this._item(s));
    this.list.replaceChildren(frag);
    const empty = $('session-empty');
    empty.hidden = this.items.length > 0;
    empty.textContent = this.query ? `No chats match “${this.query}”.` : 'No chats yet.';
    $('session-more').hidden = this.items.length >= this.total;
    this._status(this.query ? `${this.total} ${this.total === 1 ? 'chat' : 'chats'} found` : '');
    this.setActive(this.activeId);
  }

  _status(text) {
    const st = $('search-status');
    st.hidden = !text;
    st.textContent = text;
  }

  /** `text` with the words of the search marked (as DOM nodes: nothing is parsed as HTML). */
  _marked(cls, text) {
    const out = document.createElement('span');
    out.className = cls;
    const words = (this.query.match(/[\p{L}\p{N}_]+/gu) || []).map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    if (!words.length) { out.textContent = text; return out; }
    const re = new RegExp(`(${words.join('|')})`, 'giu');
    text.split(re).forEach((part, i) => {
      if (i % 2 === 0) { out.append(part); return; }
      const m = document.createElement('mark');
      m.textContent = part;
      out.append(m);
    });
    return out;
  }

  _item(s) {
    const li = document.createElement('li');
    li.className = 'session-item';
    li.dataset.sessionId = s.session_id;
    li.dataset.testid = 'session-item';
    const open = document.createElement('a');
    open.href = `#/s/${encodeURIComponent(s.session_id)}`;
    open.className = 'session-open';
    const title = this._marked('session-title', s.title || 'Untitled chat');
    const sub = document.createElement('span');
    sub.className = 'session-sub';
    const when = formatTime(s.last_message_at || s.created_at); // the last message's time
    const time = document.createElement('time');
    time.dateTime = when.iso || '';
    time.title = when.full;
    time.textContent = when.short;
    sub.append(`${s.config?.model_name || ''} · `, time);
    open.append(title, sub);
    if (s.snippet) open.append(this._marked('session-snippet', s.snippet));
    const actions = document.createElement('div');
    actions.className = 'session-actions';
    actions.append(
      this._action('edit', 'edit', `Rename or edit “${s.title || 'Untitled chat'}”`),
      this._action('delete', 'trash', `Delete “${s.title || 'Untitled chat'}”`),
    );
    li.append(open, actions);
    return li;
  }

  _action(name, iconName, label) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'icon-btn';
    b.dataset.action = name;
    b.dataset.testid = `session-${name}`;
    b.setAttribute('aria-label', label);
    b.title = label;
    b.innerHTML = icon(iconName, 16);
    return b;
  }
}
