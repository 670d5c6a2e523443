// Status indicators (API / socket / stream), the connection banner and the GET /health poller.
import { api } from './api.js';
import { showConnection } from './panels.js';

/** Sets an indicator's state (data-state drives the colour), tooltip and screen-reader text. */
export function setIndicator(id, state, title) {
  const li = document.getElementById(id);
  if (!li) return;
  li.dataset.state = state;
  li.title = title;
  const text = li.querySelector('.status-text');
  if (text) text.textContent = title;
}

const SOCKET_LABELS = { connecting: 'connecting', open: 'connected', reconnecting: 'reconnecting', closed: 'closed' };

/** Socket and stream indicators from the transport mode, socket state and unfinished replies. */
export function showTransport({ mode, socket, live, running }) {
  const sock = mode === 'ws' ? socket : 'off';
  const label = sock === 'off' ? (mode === 'sse' ? 'not used (SSE mode)' : 'not connected') : SOCKET_LABELS[sock] || sock;
  setIndicator('status-socket', sock === 'reconnecting' ? 'connecting' : sock, `Socket: ${label}`);
  let stream = 'idle';
  if (live && mode === 'ws' && sock !== 'open') stream = 'resuming';
  else if (running) stream = 'streaming';
  else if (live) stream = 'queued';
  setIndicator('status-stream', stream, `Stream (${mode === 'ws' ? 'WebSocket' : 'SSE'}): ${stream}`);
}

/**
 * Brings the chrome in step with a ChatController: Stop and the queue line, the status dots,
 * the "Reconnecting…" banner, and the messages waiting for the socket to come back.
 */
export function renderChrome(c) {
  const live = c.store.unfinished();
  const running = live.some((g) => g.status === 'running');
  const $ = (id) => document.getElementById(id);
  $('stop').hidden = live.length === 0;
  // While an answer streams, its own message carries the one typing indicator (dots, then
  // the caret); this line only speaks for replies still waiting in the queue.
  $('typing').hidden = live.length === 0 || running;
  $('typing-text').textContent = `Waiting for the model… (${live.length} ${live.length === 1 ? 'reply' : 'replies'} queued)`;
  $('empty-state').hidden = c.view.size > 0;
  $('export-chat').hidden = !c.sessionId;
  const socket = c.socketState || 'off';
  const down = !!c.sessionId && ((c.mode === 'ws' && socket === 'reconnecting') || !navigator.onLine);
  showConnection({ down });
  for (const key of c.pending.keys()) c.view.setUserStatus(key, down ? 'waiting' : 'sending');
  c.jump?.refresh();
  showTransport({ mode: c.mode, socket, live: live.length, running });
}

function describe(components) {
  if (!components || typeof components !== 'object') return '';
  return Object.entries(components).map(([name, c]) => {
    const st = typeof c === 'string' ? c : (c && (c.status || (c.ok ? 'up' : 'down'))) || '?';
    return `${name}: ${st}`;
  }).join(', ');
}

export class HealthMonitor {
  constructor(intervalMs = 15000) {
    this.interval = intervalMs;
    this.timer = 0;
    this.onVisible = () => { if (!document.hidden) this.check(); };
  }

  start() {
    this.stop();
    document.addEventListener('visibilitychange', this.onVisible);
    window.addEventListener('online', this.onVisible);
    this.check();
  }

  stop() {
    clearTimeout(this.timer);
    document.removeEventListener('visibilitychange', this.onVisible);
    window.removeEventListener('online', this.onVisible);
  }

  async check() {
    clearTimeout(this.timer);
    try {
      const { httpStatus, body } = await api.health();
      const status = (body && body.status) || (httpStatus < 400 ? 'ok' : 'down');
      const parts = describe(body && body.components);
      const state = status === 'ok' || status === 'up' ? 'up' : status === 'degraded' ? 'degraded' : 'down';
      setIndicator('status-api', state, `API: ${status}${parts ? ` (${parts})` : ''}`);
    } catch {
      setIndicator('status-api', 'down', 'API: unreachable');
    }
    this.timer = setTimeout(() => this.check(), this.interval);
  }
}
