// The message box: Enter sends, Shift+Enter adds a line, the box grows with its text.
const $ = (id) => document.getElementById(id);

/** hooks: send(text) -> Promise<boolean>, stop(), banner(msg) */
export function bindComposer(hooks) {
  const input = $('message-input');
  const sendBtn = $('send');
  const grow = () => {
    sendBtn.disabled = !input.value.trim();
    if (!input.offsetParent) return; // hidden: no layout to measure
    input.style.height = 'auto';
    input.style.height = `${Math.min(input.scrollHeight, window.innerHeight * 0.4)}px`;
  };
  const submit = async () => {
    const text = input.value;
    if (!text.trim()) return;
    input.value = '';
    grow();
    try {
      if (!(await hooks.send(text))) { input.value = text; grow(); }
    } catch (err) {
      input.value = text;
      grow();
      if (err.status !== 401) hooks.banner(err.detail || err.message);
    }
  };
  input.addEventListener('input', grow);
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
}
