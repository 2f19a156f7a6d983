// Service worker: keeps the editor's files so a document page also (re)loads
// while offline; its content comes from IndexedDB (src/storage.js).
const CACHE = 'weft-shell-v2';  // a new name when SHELL changes; older caches are deleted
const SHELL = ['/index.html', '/app.js', '/style.css', '/weft_core.wasm'];

self.addEventListener('install', (e) => {
  e.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});
self.addEventListener('activate', (e) => e.waitUntil(
  caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim())));

self.addEventListener('fetch', (e) => {
  const url = new URL(e.request.url);
  if (e.request.method !== 'GET' || url.origin !== location.origin) return;
  if (url.pathname.startsWith('/api/') || url.pathname === '/metrics' || url.pathname === '/healthz') return;
  // The cluster page is live monitoring, never the editor shell: a navigation
  // to it must not be stored as /index.html nor answered from the cache.
  if (url.pathname.startsWith('/cluster')) return;
  const key = e.request.mode === 'navigate' ? '/index.html' : url.pathname;
  // Network first (fresh files when online), the cache when offline.
  e.respondWith(
    fetch(e.request)
      .then((res) => {
        if (res.ok && SHELL.includes(key)) {
          const copy = res.clone();
          caches.open(CACHE).then((c) => c.put(key, copy));
        }
        return res;
      })
      .catch(() => caches.match(key).then((hit) => hit ?? Response.error())),
  );
});
