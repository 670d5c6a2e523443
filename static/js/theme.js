// Theme (system, light or dark), loaded as a classic script in <head> so the page never
// flashes the wrong colours: it sets <html data-theme> before the first paint. "System"
// follows prefers-color-scheme live. The choice is kept in localStorage. The radio group
// #theme-switch in the settings panel is wired once the document is parsed.
(function theme() {
  const KEY = 'llmchat.theme';
  const CHOICES = ['system', 'light', 'dark'];
  const media = window.matchMedia('(prefers-color-scheme: dark)');

  function choice() {
    const v = localStorage.getItem(KEY);
    return CHOICES.includes(v) ? v : 'system';
  }

  function apply() {
    const c = choice();
    const dark = c === 'dark' || (c === 'system' && media.matches);
    const root = document.documentElement;
    root.dataset.theme = dark ? 'dark' : 'light';
    root.dataset.themeChoice = c;
    // The highlight.js themes are chosen by their media attribute.
    for (const link of document.querySelectorAll('link[href*="hljs-github"]')) {
      const isDark = link.href.includes('github-dark');
      link.media = isDark === dark ? 'all' : 'not all';
    }
    for (const meta of document.querySelectorAll('meta[name=theme-color]')) {
      meta.media = (meta.content === '#15171c') === dark ? 'all' : 'not all';
    }
  }

  function wire() {
    apply();
    for (const r of document.querySelectorAll('input[name=theme]')) {
      r.checked = r.value === choice();
      r.addEventListener('change', () => {
        if (!r.checked) return;
        localStorage.setItem(KEY, r.value);
        apply();
      });
    }
  }

  media.addEventListener('change', apply);
  apply();
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', wire);
  else wire();
}());
