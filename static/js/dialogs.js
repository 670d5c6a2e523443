// Dialogs: session settings (create with POST /set-llm, edit with PATCH /sessions/{id}) and confirm.
import { api } from './api.js';

const $ = (id) => document.getElementById(id);
export const DEFAULT_CONFIG = { temperature: 0.7, max_tokens: 1024, top_p: 1 };

let modelsCache = null;

/** GET /models, cached for a minute. */
export async function loadModels(force = false) {
  if (!force && modelsCache && Date.now() - modelsCache.at < 60000) return modelsCache.data;
  const data = await api.models();
  modelsCache = { at: Date.now(), data };
  return data;
}

export class SettingsDialog {
  constructor() {
    this.dlg = $('settings-dialog');
    this.form = $('settings-form');
    this.form.addEventListener('submit', (e) => { e.preventDefault(); this._save(); });
    $('cfg-cancel').addEventListener('click', () => this._finish(null));
    this.dlg.addEventListener('cancel', (e) => { e.preventDefault(); this._finish(null); });
  }

  /** Opens for a new chat (session undefined) or to edit one. Resolves with the saved summary, or null. */
  async open(session) {
    this.session = session || null;
    const cfg = session?.config || {};
    $('cfg-heading').textContent = session ? 'Chat settings' : 'New chat';
    $('cfg-save').textContent = session ? 'Save' : 'Create';
    $('cfg-title').value = session?.title || '';
    $('cfg-temperature').value = cfg.temperature ?? DEFAULT_CONFIG.temperature;
    $('cfg-top-p').value = cfg.top_p ?? DEFAULT_CONFIG.top_p;
    $('cfg-max-tokens').value = cfg.max_tokens ?? DEFAULT_CONFIG.max_tokens;
    $('cfg-system-prompt').value = cfg.system_prompt || '';
    this._error('');
    await this._fillModels(cfg.model_name);
    this.dlg.showModal();
    $(session ? 'cfg-title' : 'cfg-model').focus();
    return new Promise((resolve) => { this.resolve = resolve; });
  }

  async _fillModels(current) {
    const sel = $('cfg-model');
    const prov = $('cfg-providers');
    sel.replaceChildren();
    prov.replaceChildren();
    let data = { data: [], providers: [] };
    try { data = await loadModels(); } catch (err) { this._error(`Could not list models: ${err.detail || err.message}`); }
    const models = data.data || [];
    const ids = new Set(models.map((m) => m.id));
    if (current && !ids.has(current)) models.unshift({ id: current, available: false });
    for (const m of models) {
      const o = document.createElement('option');
      o.value = m.id;
      o.textContent = m.available === false ? `${m.id} (unavailable)` : m.id;
      sel.append(o);
    }
    sel.value = current || data.default_model || models.find((m) => m.available !== false)?.id || '';
    for (const p of data.providers || []) {
      const li = document.createElement('li');
      li.dataset.status = p.status;
      li.textContent = p.status === 'up' ? p.name : `${p.name} down${p.error ? `: ${p.error}` : ''}`;
      prov.append(li);
    }
  }

  _values() {
    const num = (id) => { const v = $(id).value.trim(); return v === '' ? undefined : Number(v); };
    const out = {
      model_name: $('cfg-model').value,
      temperature: num('cfg-temperature'),
      max_tokens: num('cfg-max-tokens'),
      top_p: num('cfg-top-p'),
    };
    const sys = $('cfg-system-prompt').value;
    const title = $('cfg-title').value.trim();
    if (this.session) {
      out.system_prompt = sys; // PATCH: an emptied prompt clears it
      if (title) out.title = title;
    } else {
      if (sys.trim()) out.system_prompt = sys;
      if (title) out.title = title;
    }
    for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
    return out;
  }

  async _save() {
    const values = this._values();
    if (!values.model_name) { this._error('Choose a model.'); return; }
    const btn = $('cfg-save');
    btn.disabled = true;
    this._error('');
    try {
      let saved;
      if (this.session) {
        const cfg = this.session.config || {};
        const patch = {};
        for (const [k, v] of Object.entries(values)) {
          const old = k === 'title' ? this.session.title : cfg[k];
          if ((old ?? '') !== v) patch[k] = v;
        }
        saved = Object.keys(patch).length ? await api.patchSession(this.session.session_id, patch) : this.session;
      } else {
        saved = await api.createSession(values);
      }
      this._finish(saved);
    } catch (err) {
      if (err.status !== 401) this._error(err.detail || err.message);
    } finally {
      btn.disabled = false;
    }
  }

  _error(msg) {
    const e = $('cfg-error');
    e.hidden = !msg;
    e.textContent = msg;
  }

  _finish(result) {
    if (this.dlg.open) this.dlg.close();
    const r = this.resolve;
    this.resolve = null;
    if (r) r(result);
  }
}

/** A small modal confirmation; resolves true when confirmed. */
export function confirmDialog(text, okLabel = 'Delete') {
  const dlg = $('confirm-dialog');
  $('confirm-text').textContent = text;
  $('confirm-ok').textContent = okLabel;
  dlg.returnValue = '';
  dlg.showModal();
  $('confirm-cancel').focus();
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
  });
}
