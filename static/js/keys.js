// Keyboard shortcuts: Esc stops the running answer, ↑ in an empty message box puts the last
// sent message back to edit, Ctrl+Shift+O opens a new chat, / focuses the message box and
// ? opens the list of shortcuts. Shortcuts never fire while a dialog is open, and / and ?
// never while the user is typing in a field.
const $ = (id) => document.getElementById(id);

function typing(target) {
  return !!target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
}

const dialogOpen = () => !!document.querySelector('dialog[open]');

/** hooks: stop() -> bool (something was stopped), lastUserText() -> string, newChat(), help() */
export function bindShortcuts(hooks) {
  const input = $('message-input');

  document.addEventListener('keydown', (e) => {
    if (e.defaultPrevented || e.isComposing || dialogOpen()) return;
    const key = e.key;
    if (key === 'Escape') {
      if (hooks.stop()) e.preventDefault();
      return;
    }
    if ((e.ctrlKey || e.metaKey) && e.shiftKey && (key === 'O' || key === 'o')) {
      e.preventDefault();
      hooks.newChat();
      return;
    }
    if (typing(e.target) || e.ctrlKey || e.metaKey || e.altKey) return;
    if (key === '/') {
      e.preventDefault();
      input.focus();
    } else if (key === '?') {
      e.preventDefault();
      hooks.help();
    }
  });

  input.addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowUp' || e.shiftKey || e.altKey || e.ctrlKey || e.metaKey || input.value !== '') return;
    const text = hooks.lastUserText();
    if (!text) return;
    e.preventDefault();
    input.value = text;
    input.dispatchEvent(new Event('input'));
    input.setSelectionRange(text.length, text.length);
  });
}
