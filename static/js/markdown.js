// Markdown -> sanitized DOM, with highlighted code blocks and copy buttons.
// Raw HTML in a reply is shown as text, never parsed; DOMPurify then sanitizes the whole
// output (no event handlers, no javascript: URLs, a short list of tags) as a second wall.
import { Marked } from '/static/vendor/marked.esm.js';
import hljs from '/static/vendor/highlight.es.min.js';
import { mathExtension, renderMath } from './math.js';

const DOMPurify = window.DOMPurify;

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => (
  { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));

const md = new Marked({ gfm: true, breaks: false, async: false });
md.use(mathExtension);
md.use({
  renderer: {
    // Raw HTML (block or inline) is displayed literally.
    html({ text }) { return escapeHtml(text); },
    // Images are not loaded (no tracking pixels, no exfiltration through URLs): shown as links.
    image({ href, text }) {
      const label = text || href || 'image';
      return `<a href="${escapeHtml(href || '')}">🖼 ${escapeHtml(label)}</a>`;
    },
  },
});

const ALLOWED_TAGS = [
  'a', 'b', 'blockquote', 'br', 'code', 'del', 'em', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'hr',
  'i', 'input', 'kbd', 'li', 'ol', 'p', 'pre', 's', 'span', 'strong', 'sub', 'sup', 'table',
  'tbody', 'td', 'th', 'thead', 'tr', 'ul',
];
const ALLOWED_ATTR = ['href', 'title', 'class', 'align', 'start', 'type', 'checked', 'disabled', 'colspan', 'rowspan'];
const SAFE_URL = /^(?:https?:|mailto:|#|\/(?!\/))/i;

if (DOMPurify) {
  DOMPurify.addHook('afterSanitizeAttributes', (node) => {
    if (node.nodeName === 'A') {
      const href = node.getAttribute('href');
      if (!href || !SAFE_URL.test(href.trim())) {
        node.removeAttribute('href');
      } else {
        node.setAttribute('target', '_blank');
        node.setAttribute('rel', 'noopener noreferrer nofollow');
      }
    }
    if (node.nodeName === 'INPUT' && node.getAttribute('type') !== 'checkbox') node.remove();
  });
}

function sanitize(html) {
  if (!DOMPurify || !DOMPurify.isSupported) {
    // Without the sanitizer, never inject HTML: show the source as text.
    const frag = document.createDocumentFragment();
    const p = document.createElement('p');
    p.textContent = html;
    frag.append(p);
    return frag;
  }
  return DOMPurify.sanitize(html, {
    ALLOWED_TAGS, ALLOWED_ATTR, ADD_ATTR: ['target', 'rel'],
    ALLOW_DATA_ATTR: false, RETURN_DOM_FRAGMENT: true,
  });
}

function decorateCode(frag) {
  for (const pre of frag.querySelectorAll('pre')) {
    const code = pre.querySelector('code');
    if (!code) continue;
    const m = /(?:^|\s)language-([\w+#.-]+)/.exec(code.className || '');
    const lang = m ? m[1].toLowerCase() : '';
    if (lang && hljs.getLanguage(lang)) {
      // highlight() escapes the source; its output holds only <span class="hljs-…"> elements.
      code.innerHTML = hljs.highlight(code.textContent, { language: lang, ignoreIllegals: true }).value;
      code.classList.add('hljs');
    }
    const block = document.createElement('div');
    block.className = 'code-block';
    const head = document.createElement('div');
    head.className = 'code-head';
    const label = document.createElement('span');
    label.className = 'code-lang';
    label.textContent = lang || 'text';
    const btn = document.createElement('button');
    btn.type = 'button';
    btn.className = 'copy-btn';
    btn.dataset.testid = 'copy-code';
    btn.setAttribute('aria-label', `Copy ${lang || 'code'} to clipboard`);
    btn.textContent = 'Copy';
    head.append(label, btn);
    pre.replaceWith(block);
    block.append(head, pre);
  }
}

/** A link whose address the sanitizer removed is shown as its plain text, not as a dead link. */
function unwrapDeadLinks(frag) {
  for (const a of frag.querySelectorAll('a:not([href])')) {
    const span = document.createElement('span');
    span.className = 'link-removed';
    span.title = 'Link removed: its address is not allowed';
    span.append(...a.childNodes);
    a.replaceWith(span);
  }
}

/** Renders Markdown text into a sanitized DocumentFragment. */
export function renderMarkdown(text) {
  let html;
  try {
    html = md.parse(text || '');
  } catch {
    html = `<p>${escapeHtml(text)}</p>`;
  }
  const frag = sanitize(html);
  unwrapDeadLinks(frag);
  decorateCode(frag);
  renderMath(frag);
  return frag;
}

/** Copies a code block's text (clipboard API, with a fallback for older browsers). */
export async function copyCode(button) {
  const code = button.closest('.code-block')?.querySelector('code');
  if (!code) return;
  const text = code.textContent;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const ta = document.createElement('textarea');
    ta.value = text;
    ta.setAttribute('readonly', '');
    ta.style.position = 'fixed';
    ta.style.opacity = '0';
    document.body.append(ta);
    ta.select();
    try { document.execCommand('copy'); } catch { /* ignore */ }
    ta.remove();
  }
  button.textContent = 'Copied';
  button.dataset.copied = 'true';
  setTimeout(() => { button.textContent = 'Copy'; delete button.dataset.copied; }, 1500);
}
