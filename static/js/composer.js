// The message box: Enter sends, Shift+Enter adds a line, the box grows with its text.
// It never loses the user's text: the server's length limit (GET /help) is enforced here
// with a counter, and a message the server refuses comes back into the box with the reason.
const $ = (id) => document.getElementById(id);

/**
 * hooks: send(text) -> Promise<boolean>, stop(), banner(msg)
 * Returns {setLimit(n), restore(text, reason)}.
 */
export function bindComposer(hooks) {
  const input = $('message-input');
  const sendBtn = $('send');
  const count = $('composer-count');
  const error = $('composer-error');
  let limit = 0;

  const showError = (msg) => {
    error.hidden = !msg;
    error.textContent = msg || '';
  };
  const over = () => (limit > 0 ? input.value.length - limit : 0);
  const grow = () => {
    const len = input.value.length;
    sendBtn.disabled = !input.value.trim() || over() > 0;
    count.textContent = limit ? `${len.toLocaleString()} / ${limit.toLocaleString()}` : '';
    count.dataset.near = String(limit > 0 && len >= limit * 0.8);
    count.dataset.over = String(over() > 0);
    count.title = limit ? `At most ${limit.toLocaleString()} characters per message` : '';
    if (over() > 0) {
      showError(`${over().toLocaleString()} characters over the limit of ${limit.toLocaleString()}.`);
      error.dataset.kind = 'limit';
    } else if (error.dataset.kind === 'limit') {
      showError('');
      error.dataset.kind = '';
    }
    if (!input.offsetParent) return; // hidden: no layout to measure
    input.style.height = 'auto';
    input.style.height = `${Math.min(input.scrollHeight, window.innerHeight * 0.4)}px`;
  };
  const submit = async () => {
    const text = input.value;
    if (!text.trim() || over() > 0) return;
    input.value = '';
    showError('');
    grow();
    try {
      if (!(await hooks.send(text))) { input.value = text; grow(); }
    } catch (err) {
      input.value = text;
      grow();
      if (err.status !== 401) showError(err.detail || err.message);
    }
  };
  input.addEventListener('input', () => {
    if (error.dataset.kind === 'refused') { error.dataset.kind = ''; showError(''); }
    grow();
  });
  input.addEventListener('keydown', (e) => {
    // isComposing / 229: Enter that confirms an IME composition must not send.
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      submit();
    }
  });
  $('composer').addEventListener('submit', (e) => { e.preventDefault(); submit(); });
  $('stop').addEventListener('click', () => hooks.stop());
  grow();

  return {
    setLimit(n) {
      limit = Number(n) > 0 ? Number(n) : 0;
      grow();
    },
    /** A refused message: back into the box (unless the user typed something new meanwhile). */
    restore(text, reason) {
      if (!input.value.trim()) {
        input.value = text;
        input.setSelectionRange(text.length, text.length);
      }
      grow();
      showError(`Not sent: ${reason}`);
      error.dataset.kind = 'refused';
      input.focus();
    },
  };
}
