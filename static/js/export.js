// Export a chat as Markdown or JSON, built in the browser from GET /sessions/{id}.
import { api } from './api.js';

const $ = (id) => document.getElementById(id);

function slug(title) {
  const s = (title || 'chat').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  return s.slice(0, 60) || 'chat';
}

/** The conversation as Markdown: a heading per message, the text as it was written. */
export function toMarkdown(data) {
  const cfg = data.config || {};
  const out = [`# ${data.title || 'Untitled chat'}`, '', `Model: ${cfg.model_name || 'unknown'}`, ''];
  if (cfg.system_prompt) out.push('> System prompt:', ...cfg.system_prompt.split('\n').map((l) => `> ${l}`), '');
  for (const m of data.history || []) {
    const who = m.role === 'user' ? 'You' : m.role === 'assistant' ? `Assistant${m.model ? ` (${m.model})` : ''}` : 'System';
    out.push(`## ${who} · ${m.created_at || ''}`.trim(), '');
    out.push(m.content || '', '');
    if (m.status && m.status !== 'completed' && m.role === 'assistant') {
      out.push(`_${m.status}${m.finish_reason ? `: ${m.finish_reason}` : ''}_`, '');
    }
  }
  return `${out.join('\n').trimEnd()}\n`;
}

function download(name, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** hooks: sessionId() -> id or null, banner(msg) */
export class ExportMenu {
  constructor(hooks) {
    this.h = hooks;
    this.btn = $('export-chat');
    this.menu = $('export-menu');
    this.btn.addEventListener('click', () => this.toggle(this.menu.hidden));
    this.menu.addEventListener('click', (e) => {
      const b = e.target.closest('[data-format]');
      if (b) { this.toggle(false); this.export(b.dataset.format); }
    });
    document.addEventListener('click', (e) => {
      if (!this.menu.hidden && !e.target.closest('#export-menu, #export-chat')) this.toggle(false);
    });
    this.menu.addEventListener('keydown', (e) => { if (e.key === 'Escape') { e.stopPropagation(); this.toggle(false); this.btn.focus(); } });
  }

  toggle(open) {
    this.menu.hidden = !open;
    this.btn.setAttribute('aria-expanded', String(open));
    if (open) this.menu.querySelector('button').focus();
  }

  async export(format) {
    const id = this.h.sessionId();
    if (!id) return;
    let data;
    try { data = await api.getSession(id); } catch (err) {
      if (err.status !== 401) this.h.banner(`Could not export: ${err.detail || err.message}`);
      return;
    }
    if (format === 'json') download(`${slug(data.title)}.json`, 'application/json', `${JSON.stringify(data, null, 2)}\n`);
    else download(`${slug(data.title)}.md`, 'text/markdown', toMarkdown(data));
  }
}
