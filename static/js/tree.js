// A conversation is a tree: Regenerate and Continue on answers, Edit message on sent ones, and
// the version switcher ("2 / 3") on forked messages. Each action is one REST call; the chat then
// reloads its active branch from the server, which stores it (a reload or another device shows
// the same). A continuation is shown joined to the answer it extends.
import { api } from './api.js';
import { icon } from './icons.js';
import { isFinal } from './gens.js';

const SLICE_MS = 40;
const nextTask = () => new Promise((resolve) => { setTimeout(resolve, 0); });

export const CONTINUABLE = new Set(['length', 'timeout', 'interrupted', 'cancelled']);

function button(cls, label, title, iconName) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = `icon-btn ${cls}`;
  b.setAttribute('aria-label', label);
  b.title = title;
  b.innerHTML = icon(iconName, 15);
  return b;
}

/** The tree's buttons for a message's action row. */
export function treeButtons(role) {
  if (role === 'assistant') {
    return [button('msg-regenerate', 'Regenerate', 'Regenerate (a new version of this answer)', 'redo'),
      button('msg-continue', 'Continue', 'Continue this answer', 'play')];
  }
  return role === 'user' ? [button('msg-edit', 'Edit message', 'Edit (a new version from here)', 'edit')] : [];
}

/** "‹ 2 / 3 ›", hidden until the message has more than one version. */
export function versionSwitcher() {
  const box = document.createElement('div');
  box.className = 'msg-versions';
  box.hidden = true;
  const label = document.createElement('span');
  label.className = 'ver-label';
  label.dataset.testid = 'version-label';
  box.append(button('ver-prev', 'Previous version', 'Previous version', 'left'), label,
    button('ver-next', 'Next version', 'Next version', 'right'));
  return box;
}

/** Ties a rendered message to its place in the tree (m: a message of GET /sessions/{id}). */
export function decorate(art, m, prev) {
  art.dataset.messageId = m.id;
  if (m.generation_id) art.dataset.generationId = m.generation_id;
  art._versions = m.versions?.length ? m.versions : [m.id];
  const at = art._versions.indexOf(m.id);
  const box = art.querySelector('.msg-versions');
  box.hidden = art._versions.length < 2;
  box.querySelector('.ver-label').textContent = `${at + 1} / ${art._versions.length}`;
  box.querySelector('.ver-prev').disabled = at <= 0;
  box.querySelector('.ver-next').disabled = at >= art._versions.length - 1;
  if (m.role === 'assistant' && prev?.role === 'assistant') {
    art.classList.add('continuation');
    prev.art.dataset.continued = 'true';
  }
}

/** Renders the active branch of GET /sessions/{id} into the view, each message tied to the tree. */
/**
 * Shows the active branch. A long conversation is added in slices, each ending after SLICE_MS
 * so no task blocks the page for long (tests/test_ui_perf.py: 500 messages), without a layout
 * read per message (the view's bulk mode) and one scroll at the end. False if `current()`
 * turned false meanwhile (another chat was opened).
 */
export async function renderBranch(view, store, history, current = () => true) {
  let prev = null;
  view.bulk = true;
  try {
    let sliceStart = performance.now();
    for (const m of history) {
      let art;
      if (m.role === 'assistant') {
        const done = isFinal(m.status);
        const g = store.ensure(m.id, {
          status: m.status, done, text: done ? (m.content ?? '') : '', provisional: done ? '' : (m.content ?? ''),
          finishReason: m.finish_reason ?? null, error: m.error ?? null, createdAt: m.created_at,
          model: done ? (m.model ?? null) : null, usage: done ? (m.usage ?? null) : null,
        });
        art = view.addAssistant(g);
      } else {
        art = view.addUser({ key: m.id, content: m.content, createdAt: m.created_at, role: m.role });
      }
      decorate(art, m, prev);
      prev = { role: m.role, art };
      if (performance.now() - sliceStart > SLICE_MS) {
        view.scrollToBottom();
        await nextTask();
        if (!current()) return false;
        sliceStart = performance.now();
      }
    }
  } finally {
    view.bulk = false;
  }
  view.scrollToBottom();
  return true;
}

/** Handles the tree's buttons in the conversation; hooks: sessionId(), reload({keepScroll}), banner(msg). */
export class TreeControls {
  constructor(box, hooks) {
    this.h = hooks;
    this.busy = false;
    box.addEventListener('click', (e) => {
      const b = e.target.closest(
        '.msg-regenerate, .msg-continue, .msg-edit, .ver-prev, .ver-next, .edit-save, .edit-cancel');
      if (!b || b.disabled) return;
      const art = b.closest('.msg');
      if (b.classList.contains('msg-edit')) this.openEditor(art);
      else if (b.classList.contains('edit-cancel')) this.closeEditor(art);
      else if (b.classList.contains('edit-save')) this.saveEdit(art);
      else if (b.classList.contains('ver-prev') || b.classList.contains('ver-next')) {
        const i = art._versions.indexOf(art.dataset.messageId) + (b.classList.contains('ver-next') ? 1 : -1);
        this.run(() => api.switchBranch(this.h.sessionId(), art._versions[i]), true);
      } else {
        const op = b.classList.contains('msg-regenerate') ? 'regenerate' : 'continue';
        this.run(() => api.branch(this.h.sessionId(), art.dataset.generationId, op));
      }
    });
  }

  async run(call, keepScroll = false) {
    if (this.busy) return;
    this.busy = true;
    try {
      await call();
      await this.h.reload({ keepScroll });
    } catch (err) {
      if (err.status !== 401) this.h.banner(`Could not do that: ${err.detail || err.message}`);
    } finally {
      this.busy = false;
    }
  }

  openEditor(art) {
    if (art.querySelector('.msg-editor')) return;
    const form = document.createElement('div');
    form.className = 'msg-editor';
    const area = document.createElement('textarea');
    area.setAttribute('aria-label', 'Edit your message');
    area.value = art._source || '';
    area.rows = Math.min(12, Math.max(2, area.value.split('\n').length));
    const save = document.createElement('button');
    save.type = 'button';
    save.className = 'btn btn-primary edit-save';
    save.textContent = 'Save';
    const cancel = document.createElement('button');
    cancel.type = 'button';
    cancel.className = 'btn edit-cancel';
    cancel.textContent = 'Cancel';
    const row = document.createElement('div');
    row.className = 'msg-editor-actions';
    row.append(cancel, save);
    form.append(area, row);
    area.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') { e.preventDefault(); e.stopPropagation(); this.closeEditor(art); }
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); this.saveEdit(art); }
    });
    art.dataset.editing = 'true';
    art.querySelector('.msg-body').after(form);
    area.focus();
    area.setSelectionRange(area.value.length, area.value.length);
  }

  closeEditor(art) {
    art.querySelector('.msg-editor')?.remove();
    delete art.dataset.editing;
    art.querySelector('.msg-edit')?.focus();
  }

  async saveEdit(art) {
    const text = art.querySelector('.msg-editor textarea').value;
    if (!text.trim() || text === art._source) { this.closeEditor(art); return; }
    await this.run(async () => {
      // A message sent in this view knows its answer, not its own id: the branch says it.
      let id = art.dataset.messageId;
      if (!id) {
        const data = await api.getSession(this.h.sessionId());
        id = (data.history || []).find((m) => m.role === 'user' && m.generation_id === art.dataset.generationId)?.id;
      }
      await api.editMessage(this.h.sessionId(), id, text);
    });
  }
}
