// Entry point: sign-in gate, staying signed in (renewal.js), routing (#/s/<session_id>: one history entry per
// chat opened, so back/forward and reload work), wiring of the parts.
import { api, auth, onUnauthorized, ULID_RE } from './api.js';
import { AuthView } from './auth.js';
import { ChatController } from './chat.js';
import { SessionsSidebar } from './sessions.js';
import { SettingsDialog, confirmDialog, loadModels, DEFAULT_CONFIG } from './dialogs.js';
import { HealthMonitor } from './status.js';
import { hydrateIcons } from './icons.js';
import { ApiKeysDialog } from './apikeys.js';
import { SettingsPanel, ShortcutsDialog } from './panels.js';
import { bindShortcuts } from './keys.js';
import { ExportMenu } from './export.js';
import { Renewal } from './renewal.js';

hydrateIcons();

const $ = (id) => document.getElementById(id);

const health = new HealthMonitor();
const settings = new SettingsDialog();
let refreshTimer = 0;
let titleTimer = 0;
const LAST_KEY = 'llmchat.last:'; // + username: the chat to land in after signing in again

function banner(msg) {
  $('banner-text').textContent = msg;
  $('banner').hidden = !msg;
}

const sidebar = new SessionsSidebar({
  onSelect: (id) => { openSession(id); closeDrawer(); },
  onEdit: async (s) => {
    const saved = await settings.open(s);
    if (!saved) return;
    await sidebar.refresh().catch(() => {});
    const fresh = sidebar.get(s.session_id) || { ...s, ...saved };
    if (chat.sessionId === s.session_id) chat.setSessionInfo({ ...chat.session, ...fresh });
  },
  onDelete: async (s) => {
    if (!(await confirmDialog(`Delete “${s.title || 'Untitled chat'}” and its messages?`))) return;
    try {
      await api.deleteSession(s.session_id);
    } catch (err) {
      if (err.status !== 404 && err.status !== 401) { banner(`Could not delete: ${err.detail || err.message}`); return; }
    }
    sidebar.remove(s.session_id);
    if (chat.sessionId === s.session_id) { chat.reset(); setRoute(null, { replace: true }); }
  },
});

const chat = new ChatController({
  banner,
  createDefaultSession: async () => {
    let model;
    try { model = (await loadModels()).default_model; } catch { /* the server picks */ }
    const s = await api.createSession({ model_name: model, ...DEFAULT_CONFIG });
    sidebar.upsert(s);
    await openSession(s.session_id);
    return s;
  },
  onSessionGone: (id) => {
    banner('This chat no longer exists.');
    sidebar.remove(id);
    chat.reset();
    setRoute(null, { replace: true });
  },
  onActivity: () => {
    const update = async () => {
      try { await sidebar.refresh(); } catch { return; }
      const fresh = chat.sessionId && sidebar.get(chat.sessionId);
      if (fresh) chat.setSessionInfo({ ...chat.session, ...fresh });
    };
    clearTimeout(refreshTimer);
    clearTimeout(titleTimer);
    refreshTimer = setTimeout(update, 400);
    titleTimer = setTimeout(update, 4000); // a first answer's title comes from the model a little later
  },
});

function setRoute(id, { replace = false } = {}) {
  const hash = id ? `#/s/${id}` : '#/';
  if (location.hash !== hash) history[replace ? 'replaceState' : 'pushState'](null, '', hash);
  if (id) sessionStorage.setItem('llmchat.session', id); else sessionStorage.removeItem('llmchat.session');
  if (auth.username) {
    if (id) localStorage.setItem(LAST_KEY + auth.username, id); else localStorage.removeItem(LAST_KEY + auth.username);
  }
}

/** The chat in the address; with no route at all, the one this tab had open last. */
function routeId() {
  const m = /^#\/s\/([^/]+)$/.exec(location.hash);
  const none = location.hash === '' || location.hash === '#';
  const last = () => sessionStorage.getItem('llmchat.session') || localStorage.getItem(LAST_KEY + auth.username);
  const id = m ? decodeURIComponent(m[1]) : none ? last() : null;
  return id && ULID_RE.test(id) ? id : null;
}

async function openSession(id, route = {}) {
  banner('');
  setRoute(id, route);
  sidebar.setActive(id);
  try {
    await chat.loadSession(id, sidebar.get(id));
  } catch (err) {
    if (err.status === 401) return;
    if (err.status === 404 || err.status === 422) {
      chat.reset();
      setRoute(null, { replace: true });
      sidebar.remove(id);
      banner('That chat was not found.');
    } else {
      banner(`Could not load the chat: ${err.detail || err.message}`);
    }
  }
}

async function newChat() {
  closeDrawer();
  const s = await settings.open();
  if (!s) return;
  sidebar.upsert(s);
  await openSession(s.session_id);
  $('message-input').focus();
}

/**
 * Back to the sign-in form. `expired`: the sign-in was lost (not a click on Sign out), so the
 * address keeps the chat, and signing in again lands there.
 */
function signOut(message = '', { expired = false } = {}) {
  renewal.stop();
  health.stop();
  chat.reset();
  if (!expired) { auth.logout(); setRoute(null); }
  auth.clear({ forget: !expired });
  authView.show(message);
}

const renewal = new Renewal(() => signOut('Your session expired. Please sign in again.', { expired: true }));

async function startApp() {
  authView.hide();
  $('app-view').hidden = false;
  $('user-name').textContent = auth.username;
  $('user-avatar').textContent = (auth.username || '?').slice(0, 1);
  renewal.start();
  health.start();
  panel.showMode(chat.mode);
  api.help().then((h) => composerLimit(h?.limits?.max_message_chars)).catch(() => { /* no counter */ });
  try {
    await sidebar.refresh();
  } catch (err) {
    if (err.status === 401) return;
    banner(`Could not list your chats: ${err.detail || err.message}`);
  }
  const id = routeId();
  if (id) await openSession(id, { replace: true });
  $('message-input').focus();
}

const authView = new AuthView(() => startApp());

onUnauthorized(() => {
  if (!$('app-view').hidden || auth.token) {
    signOut('Your session has expired or is no longer valid. Please sign in again.', { expired: true });
  }
});

// Drawer (narrow screens)
function openDrawer() {
  $('app-view').classList.add('sidebar-open');
  $('sidebar-toggle').setAttribute('aria-expanded', 'true');
  $('sidebar-backdrop').hidden = false;
  $('new-chat').focus();
}
function closeDrawer() {
  if (!$('app-view').classList.contains('sidebar-open')) return;
  $('app-view').classList.remove('sidebar-open');
  $('sidebar-toggle').setAttribute('aria-expanded', 'false');
  $('sidebar-backdrop').hidden = true;
}
$('sidebar-toggle').addEventListener('click', openDrawer);
$('sidebar-close').addEventListener('click', () => { closeDrawer(); $('sidebar-toggle').focus(); });
$('sidebar-backdrop').addEventListener('click', closeDrawer);
document.addEventListener('keydown', (e) => { if (e.key === 'Escape') closeDrawer(); });

$('new-chat').addEventListener('click', () => newChat().catch((err) => banner(err.detail || err.message)));
$('logout').addEventListener('click', () => signOut());
const apiKeys = new ApiKeysDialog();
$('api-keys').addEventListener('click', () => apiKeys.open());
$('settings-api-keys').addEventListener('click', () => apiKeys.open()); // the panel, from inside Settings
$('banner-close').addEventListener('click', () => banner(''));
$('session-settings').addEventListener('click', () => {
  const s = sidebar.get(chat.sessionId) || chat.session;
  if (s) sidebar.h.onEdit({ ...s, session_id: chat.sessionId });
});
function followRoute() {
  if (!auth.valid()) return;
  const id = routeId();
  if (id && id !== chat.sessionId) openSession(id);
  else if (!id && chat.sessionId) { chat.reset(); sidebar.setActive(null); }
}
window.addEventListener('hashchange', followRoute);
window.addEventListener('popstate', followRoute);
for (const ev of ['online', 'offline']) window.addEventListener(ev, () => chat.refreshChrome());

const panel = new SettingsPanel({ setMode: (m) => chat.setMode(m) });
const shortcuts = new ShortcutsDialog(panel);
const composerLimit = (n) => chat.composer.setLimit(n);
new ExportMenu({ sessionId: () => chat.sessionId, banner }); // eslint-disable-line no-new
bindShortcuts({
  stop: () => chat.stop(),
  lastUserText: () => chat.lastUserText(),
  newChat: () => { if (!$('app-view').hidden) newChat().catch((err) => banner(err.detail || err.message)); },
  help: () => { if (!$('app-view').hidden) shortcuts.open(); },
});

// A reload keeps the tab's token; a new tab, or an expired token, is renewed from the cookie.
// Nobody signed in on this browser (no remembered user): no cookie to try, so the form is
// there at once and takes the first keystrokes.
if (auth.valid()) startApp();
else if (!auth.username) authView.show();
else {
  const expired = !!auth.token;
  auth.renew().then((ok) => {
    if (ok) { startApp(); return; }
    auth.clear();
    authView.show(expired ? 'Your session expired. Please sign in again.' : '');
  });
}
