// History-API routing: the path names the page, the query holds its view (the jobs filter).

const ROUTES = [
  { name: 'jobs', pattern: /^\/(?:jobs\/?)?$/ },
  { name: 'job', pattern: /^\/jobs\/(\d{1,20})\/?$/, keys: ['id'] },
  { name: 'submit', pattern: /^\/submit\/?$/ },
  { name: 'queues', pattern: /^\/queues\/?$/ },
  { name: 'triggers', pattern: /^\/triggers\/?$/ },
];

export function parseLocation(loc = window.location) {
  const path = loc.pathname;
  const query = Object.fromEntries(new URLSearchParams(loc.search));
  for (const route of ROUTES) {
    const match = route.pattern.exec(path);
    if (match) {
      const params = {};
      (route.keys || []).forEach((key, i) => {
        params[key] = match[i + 1];
      });
      return { name: route.name, path, params, query };
    }
  }
  return { name: 'notfound', path, params: {}, query };
}

/**
 * Starts routing: `onRoute(route)` now and after every navigation (links, back/forward).
 * Returns navigate(url, {replace}).
 */
export function startRouter(onRoute) {
  function navigate(url, { replace = false } = {}) {
    const target = new URL(url, location.href);
    const current = location.pathname + location.search;
    const next = target.pathname + target.search;
    if (next === current && !target.hash) return;
    if (replace) history.replaceState(null, '', next);
    else history.pushState(null, '', next);
    onRoute(parseLocation());
  }
  window.addEventListener('popstate', () => onRoute(parseLocation()));
  // Same-origin links navigate in place; modified clicks (new tab) keep the browser's way.
  document.addEventListener('click', (event) => {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const link = event.target.closest && event.target.closest('a[href]');
    if (!link || link.target || link.hasAttribute('download')) return;
    const url = new URL(link.href, location.href);
    if (url.origin !== location.origin || url.pathname.startsWith('/v1/') || url.pathname.startsWith('/static/')) return;
    event.preventDefault();
    navigate(url.pathname + url.search);
  });
  onRoute(parseLocation());
  return navigate;
}
