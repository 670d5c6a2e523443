// Per-generation state and the idempotent application of protocol frames.
// A generation keeps its text and the last seq applied: chunks with seq <= lastSeq are
// ignored, a snapshot replaces the text up to its seq, and one done frame ends it.

export const FINAL = new Set(['completed', 'cancelled', 'incomplete', 'failed']);
export const isFinal = (status) => FINAL.has(status);

export class GenStore {
  constructor() { this.map = new Map(); }

  get(id) { return this.map.get(id); }

  ensure(id, init = {}) {
    let g = this.map.get(id);
    if (!g) {
      g = {
        id, text: '', lastSeq: 0, status: 'queued', done: false,
        finishReason: null, error: null, frameError: null, usage: null,
        position: null, provisional: '', clientMsgId: null, createdAt: null, model: null,
        ...init,
      };
      this.map.set(id, g);
    }
    return g;
  }

  clear() { this.map.clear(); }

  all() { return [...this.map.values()]; }

  /** Generations still to follow (not ended by a done frame). */
  unfinished() { return this.all().filter((g) => !g.done); }

  /** Text to show: while resuming, the stored text from history stands in until the replay overtakes it. */
  static display(g) {
    if (!g.done && g.provisional && g.provisional.length > g.text.length) return g.provisional;
    return g.text;
  }

  /**
   * Applies one frame. Returns {gen, changed, gap}: gap means frames are missing and the
   * caller must resync (resume after gen.lastSeq, or reload the generation).
   */
  apply(f) {
    const id = f.generation_id;
    if (!id) return { gen: null, changed: false };
    const g = this.ensure(id);
    switch (f.type) {
      case 'accepted': {
        if (f.client_msg_id) g.clientMsgId = f.client_msg_id;
        if (g.done || g.lastSeq > 0 || f.position == null) return { gen: g, changed: true };
        g.position = f.position;
        g.status = f.position === 0 ? 'running' : 'queued';
        return { gen: g, changed: true };
      }
      case 'chunk': {
        if (g.done || f.seq <= g.lastSeq) return { gen: g, changed: false };
        if (f.seq !== g.lastSeq + 1) return { gen: g, changed: false, gap: true };
        g.text += f.chunk ?? '';
        g.lastSeq = f.seq;
        g.status = 'running';
        g.position = 0;
        g.gapPending = false;
        return { gen: g, changed: true };
      }
      case 'snapshot': {
        // After a server crash the snapshot's seq is above every seq sent, so it replaces
        // text that was shown but never stored; an older one is a late duplicate.
        if (g.done || f.seq < g.lastSeq) return { gen: g, changed: false };
        g.text = f.content ?? '';
        g.lastSeq = f.seq;
        g.provisional = '';
        g.gapPending = false;
        if (f.status && !isFinal(f.status)) g.status = f.status;
        return { gen: g, changed: true };
      }
      case 'done': {
        if (g.done) return { gen: g, changed: false };
        if (f.seq > g.lastSeq + 1) return { gen: g, changed: false, gap: true, doneFrame: f };
        g.done = true;
        g.lastSeq = Math.max(g.lastSeq, f.seq);
        g.status = f.status || 'completed';
        g.finishReason = f.finish_reason ?? null;
        g.error = f.error ?? null;
        g.usage = f.usage ?? null;
        if (f.model) g.model = f.model;
        g.provisional = '';
        g.position = null;
        return { gen: g, changed: true, ended: true, moved: this._moveUp(g) };
      }
      case 'error': {
        g.frameError = { code: f.code, message: f.message };
        if (/not_found$/.test(f.code || '') && !g.done) {
          // Nothing left to follow (deleted, or not ours): stop waiting for it.
          g.done = true;
          g.status = 'failed';
          g.provisional = '';
          return { gen: g, changed: true, ended: true };
        }
        return { gen: g, changed: true };
      }
      default:
        return { gen: g, changed: false };
    }
  }

  /**
   * One answer fewer ahead for each queued answer after `ended` (the map keeps the order they
   * were sent in): their "n ahead" counts down as answers finish. Returns those that moved.
   */
  _moveUp(ended) {
    const moved = [];
    let after = false;
    for (const g of this.map.values()) {
      if (g === ended) { after = true; continue; }
      if (after && !g.done && g.status === 'queued' && g.position > 0) { g.position -= 1; moved.push(g); }
    }
    return moved;
  }

  /** Adopts the authoritative state from GET /generations/{id} (used after a gap). */
  adopt(data) {
    const g = this.ensure(data.id);
    g.text = data.content ?? '';
    g.lastSeq = Math.max(g.lastSeq, Number(data.last_seq) || 0);
    g.provisional = '';
    g.status = data.status;
    g.finishReason = data.finish_reason ?? null;
    g.error = data.error ?? null;
    g.usage = data.usage ?? null;
    if (data.model) g.model = data.model;
    g.done = isFinal(data.status);
    g.gapPending = false;
    return g;
  }
}
