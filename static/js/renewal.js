// Staying signed in: renews the access token from the refresh cookie before it expires, and
// again when the tab wakes up (a laptop that slept past the expiry). A renewal never touches
// open streams: a socket keeps running until its old token expires, then reconnects with the
// new one and resumes after its last seq (ws.js). Only a failed renewal of an expired token
// ends the sign-in.
import { auth } from './api.js';

const EARLY_MS = 60000; // renew this long before expiry (or at 4/5 of a shorter lifetime)
const RETRY_MS = 10000; // after a failed renewal while the token is still valid (offline)

export class Renewal {
  /** onLost(): the token expired and could not be renewed. */
  constructor(onLost) {
    this.onLost = onLost;
    this.timer = 0;
    this.running = false;
    this.onWake = () => { if (!document.hidden && this.running) this.schedule(); };
  }

  start() {
    this.running = true;
    document.addEventListener('visibilitychange', this.onWake);
    window.addEventListener('online', this.onWake);
    window.addEventListener('llmchat:renewed', this.onWake); // renewed elsewhere (a 401 retry)
    this.schedule();
  }

  stop() {
    this.running = false;
    clearTimeout(this.timer);
    document.removeEventListener('visibilitychange', this.onWake);
    window.removeEventListener('online', this.onWake);
    window.removeEventListener('llmchat:renewed', this.onWake);
  }

  schedule() {
    clearTimeout(this.timer);
    const left = auth.expiresAt - Date.now();
    const lifetime = Math.max(left, 1);
    const wait = left - Math.min(EARLY_MS, lifetime / 5);
    // setTimeout caps at about 24.8 days.
    this.timer = setTimeout(() => this.renew(), Math.min(Math.max(wait, 0), 2 ** 31 - 1));
  }

  async renew() {
    if (!this.running) return;
    if (await auth.renew()) return; // the 'llmchat:renewed' event schedules the next one
    if (!this.running) return;
    if (auth.expiresAt - Date.now() > 2000) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.renew(), RETRY_MS);
    } else {
      this.onLost();
    }
  }
}
