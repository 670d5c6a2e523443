// Math in replies: $…$ (inline) and $$…$$ (display) rendered by the vendored KaTeX.
// marked only marks the TeX source (<span class="math-inline">, <p class="math-display">,
// as escaped text), the sanitizer passes it like any text, and KaTeX then builds its own
// DOM from that text: no HTML string from KaTeX is ever parsed, and KaTeX sets its styles
// through the CSSOM, which a strict CSP allows. Bad TeX shows as the source, in red.

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => (
  { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));

// $x$ needs a non-space after the opening and before the closing $, and no digit right after
// it, so "$5 and $10" stays text.
const INLINE = /^\$(?!\s)((?:\\.|[^\\$\n])+?)(?<!\s)\$(?!\d)/;
const BLOCK = /^\$\$\n?([\s\S]+?)\n?\$\$(?:\n|$)/;

export const mathExtension = {
  extensions: [
    {
      name: 'mathBlock',
      level: 'block',
      start(src) { return src.match(/\$\$/)?.index; },
      tokenizer(src) {
        const m = BLOCK.exec(src);
        if (m) return { type: 'mathBlock', raw: m[0], text: m[1].trim() };
        return undefined;
      },
      renderer(token) { return `<p class="math-display">${escapeHtml(token.text)}</p>\n`; },
    },
    {
      name: 'mathInline',
      level: 'inline',
      start(src) { return src.match(/\$/)?.index; },
      tokenizer(src) {
        const block = /^\$\$([^$]+?)\$\$/.exec(src);
        if (block) return { type: 'mathInline', raw: block[0], text: block[1].trim(), display: true };
        const m = INLINE.exec(src);
        if (m) return { type: 'mathInline', raw: m[0], text: m[1], display: false };
        return undefined;
      },
      renderer(token) {
        const cls = token.display ? 'math-inline math-wide' : 'math-inline';
        return `<span class="${cls}">${escapeHtml(token.text)}</span>`;
      },
    },
  ],
};

/** Replaces every marked TeX source in the fragment with KaTeX's rendering. */
export function renderMath(frag) {
  const katex = window.katex;
  if (!katex) return; // not loaded: the TeX source stays readable
  for (const el of frag.querySelectorAll('.math-inline, .math-display')) {
    const tex = el.textContent;
    try {
      el.replaceChildren();
      katex.render(tex, el, {
        displayMode: el.classList.contains('math-display') || el.classList.contains('math-wide'),
        throwOnError: false, trust: false, strict: 'ignore', maxSize: 20, maxExpand: 200,
      });
      el.dataset.tex = tex;
    } catch {
      el.textContent = tex;
      el.classList.add('math-error');
    }
  }
}
