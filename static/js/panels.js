// The settings panel (streaming transport, connection status, theme, account) and the
// keyboard-shortcuts dialog. Both are <dialog>s: Esc and the Close button close them and
// the focus returns to the control that opened them.
const $ = (id) => document.getElementById(id);

class Panel {
  constructor(dialogId, closeId) {
    this.dlg = $(dialogId);
    this.opener = null;
    $(closeId).addEventListener('click', () => this.close());
    this.dlg.addEventListener('close', () => {
      if (this.opener && this.opener.isConnected) this.opener.focus();
      this.opener = null;
    });
  }

  get isOpen() { return this.dlg.open; }

  open() {
    if (this.dlg.open) return;
    this.opener = document.activeElement;
    this.dlg.showModal();
    this.dlg.querySelector('input:checked, button')?.focus();
  }

  close() { if (this.dlg.open) this.dlg.close(); }
}

/** hooks: setMode(mode) */
export class SettingsPanel extends Panel {
  constructor(hooks) {
    super('app-settings', 'app-settings-close');
    $('open-settings').addEventListener('click', () => this.open());
    for (const r of document.querySelectorAll('input[name=mode]')) {
      r.addEventListener('change', () => { if (r.checked) hooks.setMode(r.value); });
    }
  }

  showMode(mode) { $(`mode-${mode}`).checked = true; }
}

export class ShortcutsDialog extends Panel {
  constructor(settings) {
    super('shortcuts-dialog', 'shortcuts-close');
    $('open-shortcuts').addEventListener('click', () => { settings.close(); this.open(); });
  }
}

/** Marks the settings button when the connection is down, so the hidden dots still show it. */
export function showConnection({ down }) {
  $('open-settings').dataset.conn = down ? 'down' : 'up';
  $('conn-banner').hidden = !down;
}
