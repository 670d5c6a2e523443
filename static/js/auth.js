// Sign in / sign up form: POST /users then POST /token (OAuth2 password form).
import { api, auth } from './api.js';

const $ = (id) => document.getElementById(id);

const MESSAGES = {
  invalid_credentials: 'Wrong username or password.',
  username_taken: 'That username is already taken. Pick another one or sign in.',
  registration_disabled: 'Creating accounts is turned off on this server. Ask an administrator for an account.',
  rate_limited: 'Too many attempts. Wait a moment and try again.',
};

function explain(err) {
  if (err.code && MESSAGES[err.code]) {
    if (err.code === 'rate_limited' && err.retryAfter) return `Too many attempts. Try again in ${err.retryAfter} s.`;
    return MESSAGES[err.code];
  }
  if (err.status === 401) return MESSAGES.invalid_credentials;
  if (err.status === 429) return MESSAGES.rate_limited;
  return err.detail || err.message || 'Something went wrong.';
}

export class AuthView {
  /** onSignedIn(username) is called once a token is stored. */
  constructor(onSignedIn) {
    this.onSignedIn = onSignedIn;
    this.form = $('login-form');
    this.form.addEventListener('submit', (e) => { e.preventDefault(); this.submit(); });
    $('auth-switch').addEventListener('click', () => this.setMode(this.mode === 'signin' ? 'signup' : 'signin'));
    this.setMode('signin');
  }

  setMode(mode) {
    this.mode = mode;
    this.form.dataset.mode = mode;
    const up = mode === 'signup';
    $('auth-title').textContent = up ? 'Create an account' : 'Sign in';
    $('login-submit').textContent = up ? 'Create account' : 'Sign in';
    $('auth-switch-text').textContent = up ? 'Already have an account?' : 'No account yet?';
    $('auth-switch').textContent = up ? 'Sign in' : 'Create an account';
    $('login-password').autocomplete = up ? 'new-password' : 'current-password';
    this.error('');
  }

  show(info = '') {
    $('app-view').hidden = true;
    $('auth-view').hidden = false;
    const box = $('auth-info');
    box.hidden = !info;
    box.textContent = info;
    $('login-password').value = '';
    $('login-username').focus();
  }

  hide() { $('auth-view').hidden = true; }

  error(msg) {
    const e = $('auth-error');
    e.hidden = !msg;
    e.textContent = msg;
  }

  async submit() {
    const username = $('login-username').value.trim();
    const password = $('login-password').value;
    if (!username || !password) { this.error('Enter a username and a password.'); return; }
    const btn = $('login-submit');
    btn.disabled = true;
    this.error('');
    try {
      if (this.mode === 'signup') {
        await api.signup(username, password);
        this.setMode('signin'); // the account exists now: a retry only needs to sign in
      }
      const tok = await api.login(username, password);
      auth.save(tok, username);
      $('auth-info').hidden = true;
      this.onSignedIn(username);
    } catch (err) {
      this.error(explain(err));
    } finally {
      btn.disabled = false;
    }
  }
}
