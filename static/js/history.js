// Shows a session's stored history. A long conversation is added in slices, each ending after
// SLICE_MS so no task blocks the page for long (tests/test_ui_perf.py: 500 messages), and
// without asking for layout per message (the view's bulk mode): one scroll at the end.
import { isFinal } from './gens.js';

const SLICE_MS = 40;
const nextTask = () => new Promise((resolve) => { setTimeout(resolve, 0); });

/** Adds `history` to chat.view and chat.store; false if `current()` turned false meanwhile. */
export async function showHistory(chat, history, current) {
  const users = new Map();
  const { view, store } = chat;
  view.bulk = true;
  try {
    let sliceStart = performance.now();
    for (const m of history) {
      if (m.role === 'assistant') {
        const done = isFinal(m.status);
        view.addAssistant(store.ensure(m.generation_id || m.id, {
          status: m.status, done, text: done ? (m.content ?? '') : '', provisional: done ? '' : (m.content ?? ''),
          finishReason: m.finish_reason ?? null, error: m.error ?? null, createdAt: m.created_at,
          model: done ? (m.model ?? null) : null,
        }));
      } else {
        view.addUser({ key: m.id, content: m.content, createdAt: m.created_at, role: m.role });
        if (m.role === 'user' && m.generation_id) users.set(m.generation_id, m.id);
      }
      if (performance.now() - sliceStart > SLICE_MS) {
        view.scrollToBottom();
        await nextTask();
        if (!current()) return false;
        sliceStart = performance.now();
      }
    }
    // A queued reply may not be in the history yet: its user message names it.
    for (const [genId, userKey] of users) {
      if (!store.get(genId)) view.addAssistant(store.ensure(genId, { createdAt: null }), userKey);
    }
  } finally {
    view.bulk = false;
  }
  view.scrollToBottom();
  return true;
}
