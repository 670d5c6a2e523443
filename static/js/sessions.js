// Sessions sidebar: GET /sessions (newest first, paginated), select, edit, delete.
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
  }

  async refresh() {
    const count = Math.max(PAGE, this.items.length);
    const page = await api.listSessions(Math.min(count, 100), 0);
    this.items = page.items || [];
    this.total = page.total ?? this.items.length;
    this.render();
  }

  async loadMore() {
    const page = await api.listSessions(PAGE, this.items.length);
    const known = new Set(this.items.map((s) => s.session_id));
    this.items.push(...(page.items || []).filter((s) => !known.has(s.session_id)));
    this.total = page.total ?? this.items.length;
    this.render();
  }

  get(id) { return this.items.find((s) => s.session_id === id); }

  /** Inserts or replaces a session (after create or PATCH) without a round trip. */
  upsert(summary) {
    const i = this.items.findIndex((s) => s.session_id === summary.session_id);
    if (i >= 0) this.items[i] = { ...this.items[i], ...summary };
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
    $('session-empty').hidden = this.items.length > 0;
    $('session-more').hidden = this.items.length >= this.total;
    this.setActive(this.activeId);
  }

  _item(s) {
    const li = document.createElement('li');
    li.className = 'session-item';
    li.dataset.sessionId = s.session_id;
    li.dataset.testid = 'session-item';
    const open = document.createElement('a');
    open.href = `#/s/${encodeURIComponent(s.session_id)}`;
    open.className = 'session-open';
    const title = document.createElement('span');
    title.className = 'session-title';
    title.textContent = s.title || 'Untitled chat';
    const sub = document.createElement('span');
    sub.className = 'session-sub';
    sub.textContent = `${s.config?.model_name || ''} · ${formatTime(s.updated_at || s.created_at).short}`;
    open.append(title, sub);
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
