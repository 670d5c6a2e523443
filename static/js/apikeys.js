// API keys panel: create (the key is shown once, with a copy button), list and revoke the
// signed-in user's keys (POST/GET/DELETE /api-keys). Plain markup; styles in css/apikeys.css.
import { request } from './api.js';
import { confirmDialog } from './dialogs.js';

const $ = (id) => document.getElementById(id);
const when = (iso, none) => (iso ? new Date(iso).toLocaleString() : none);

function keyRow(k, onRevoke) {
  const li = document.createElement('li');
  li.className = 'key-item';
  li.dataset.keyId = k.id;
  li.dataset.testid = 'api-key-item';
  const info = document.createElement('div');
  const name = document.createElement('strong');
  name.textContent = k.name;
  const prefix = document.createElement('code');
  prefix.textContent = `${k.prefix}…`;
  const meta = document.createElement('p');
  meta.className = 'muted small';
  meta.textContent = `Created ${when(k.created_at)} · last used ${when(k.last_used_at, 'never')}`
    + ` · expires ${when(k.expires_at, 'never')}`;
  info.append(name, ' ', prefix, meta);
  const revoke = document.createElement('button');
  revoke.type = 'button';
  revoke.className = 'btn btn-ghost btn-sm';
  revoke.dataset.action = 'revoke';
  revoke.textContent = 'Revoke';
  revoke.setAttribute('aria-label', `Revoke API key ${k.name}`);
  revoke.addEventListener('click', () => onRevoke(k));
  li.append(info, revoke);
  return li;
}

export class ApiKeysDialog {
  constructor() {
    this.dlg = $('keys-dialog');
    $('key-form').addEventListener('submit', (e) => { e.preventDefault(); this._create(); });
    $('key-copy').addEventListener('click', () => this._copy());
    $('keys-close').addEventListener('click', () => this.close());
    this.dlg.addEventListener('close', () => this._forget());
  }

  async open() {
    this._forget();
    this._error('');
    this.dlg.showModal();
    $('key-name').focus();
    await this._refresh();
  }

  close() { if (this.dlg.open) this.dlg.close(); }

  async _refresh() {
    let keys = [];
    try { keys = await request('GET', '/api-keys'); } catch (err) { if (err.status !== 401) this._error(err.detail || err.message); }
    $('key-list').replaceChildren(...keys.map((k) => keyRow(k, (key) => this._revoke(key))));
    $('key-empty').hidden = keys.length > 0;
  }

  async _create() {
    const name = $('key-name').value.trim();
    const days = $('key-days').value.trim();
    const body = { name, ...(days ? { expires_in_days: Number(days) } : {}) };
    const btn = $('key-create');
    btn.disabled = true;
    try {
      const created = await request('POST', '/api-keys', { body });
      $('key-value').value = created.key;
      $('key-created').hidden = false;
      $('key-copy').textContent = 'Copy';
      $('key-form').reset();
      this._error('');
      $('key-value').focus();
      $('key-value').select();
      await this._refresh();
    } catch (err) {
      if (err.status !== 401) this._error(err.detail || err.message);
    } finally {
      btn.disabled = false;
    }
  }

  async _copy() {
    const input = $('key-value');
    try {
      await navigator.clipboard.writeText(input.value);
    } catch {
      input.select();
      document.execCommand('copy'); // no clipboard API outside a secure context
    }
    $('key-copy').textContent = 'Copied';
  }

  async _revoke(k) {
    // Stacked over this panel, which stays open so a key just created is still shown.
    if (!(await confirmDialog(`Revoke “${k.name}”? Programs using it stop working at once.`, 'Revoke'))) return;
    try {
      await request('DELETE', `/api-keys/${encodeURIComponent(k.id)}`);
    } catch (err) {
      if (err.status !== 404 && err.status !== 401) this._error(err.detail || err.message);
    }
    await this._refresh();
  }

  _forget() {
    // The secret is shown once: it leaves the page when the panel closes.
    $('key-value').value = '';
    $('key-created').hidden = true;
  }

  _error(msg) {
    const e = $('key-error');
    e.hidden = !msg;
    e.textContent = msg;
  }
}
