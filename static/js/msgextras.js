// Per-message extras: the Copy action (the Markdown source, not the rendered text), token
// usage, "show more" for long sent messages, and the "jump to latest" button.
import { icon } from './icons.js';
import { treeButtons } from './tree.js';

const LONG_CHARS = 700;
const LONG_LINES = 12;

/** The action row under a message (visible on hover and focus; always on touch screens). */
export function messageActions(role) {
  const row = document.createElement('div');
  row.className = 'msg-actions';
  const copy = document.createElement('button');
  copy.type = 'button';
  copy.className = 'icon-btn msg-copy';
  copy.dataset.testid = 'copy-message';
  copy.setAttribute('aria-label', 'Copy message');
  copy.title = 'Copy message (Markdown)';
  copy.innerHTML = icon('copy', 15);
  row.append(copy, ...treeButtons(role));
  return row;
}

async function writeClipboard(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

/** Copies the message's source text; the button says whether it worked. */
export async function copyMessage(button) {
  const art = button.closest('.msg');
  let text = art.dataset.role === 'assistant' ? (art.dataset.raw || '') : (art._source || '');
  // A continuation copies the whole answer: the parts it continues come first.
  for (let p = art; p.classList.contains('continuation') && p.previousElementSibling?.dataset.continued;) {
    p = p.previousElementSibling;
    text = (p.dataset.raw || '') + text;
  }
  const ok = await writeClipboard(text);
  button.dataset.copied = ok ? 'true' : 'false';
  button.title = ok ? 'Copied' : 'Could not copy';
  setTimeout(() => { delete button.dataset.copied; button.title = 'Copy message (Markdown)'; }, 1500);
}

/** "12 in · 34 out tokens", with "(estimated)" when the server counted them itself. */
export function usageText(usage) {
  if (!usage || (usage.prompt_tokens == null && usage.completion_tokens == null)) return '';
  const n = (v) => (v == null ? '?' : String(v));
  return `${n(usage.prompt_tokens)} in · ${n(usage.completion_tokens)} out tokens${usage.estimated ? ' (estimated)' : ''}`;
}

/** Collapses a long sent message behind a "Show more" toggle. */
export function collapseIfLong(art, content) {
  if (content.length <= LONG_CHARS && content.split('\n').length <= LONG_LINES) return;
  const body = art.querySelector('.msg-body');
  body.classList.add('collapsible');
  art.dataset.collapsed = 'true';
  const more = document.createElement('button');
  more.type = 'button';
  more.className = 'btn-link show-more';
  more.dataset.testid = 'show-more';
  more.setAttribute('aria-expanded', 'false');
  more.textContent = 'Show more';
  body.after(more);
}

export function toggleMore(button) {
  const art = button.closest('.msg');
  const open = art.dataset.collapsed === 'true';
  art.dataset.collapsed = open ? 'false' : 'true';
  button.setAttribute('aria-expanded', String(open));
  button.textContent = open ? 'Show less' : 'Show more';
}

/** Shows #jump-latest while the user has scrolled up and an answer is still streaming. */
export class JumpToLatest {
  constructor(view, isStreaming) {
    this.view = view;
    this.isStreaming = isStreaming;
    this.btn = document.getElementById('jump-latest');
    this.btn.addEventListener('click', () => { view.scrollToBottom(); this.refresh(); });
    view.scroller.addEventListener('scroll', () => this.refresh(), { passive: true });
  }

  refresh() {
    this.btn.hidden = !(this.isStreaming() && !this.view.nearBottom());
  }
}
