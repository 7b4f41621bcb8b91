// Service worker: precaches every file of the built app (list written by `edgefm demo build`
// into precache.json, with a version hash) so the app works offline after the first load.
const PRECACHE = "precache.json";
self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const list = await (await fetch(PRECACHE, { cache: "no-store" })).json();
    const cache = await caches.open(`edgefm-${list.version}`);
    await cache.addAll([PRECACHE, ...list.files]);
    await self.skipWaiting();
  })());
});
self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    const list = await (await caches.match(PRECACHE)).json();
    for (const k of await caches.keys()) if (k !== `edgefm-${list.version}`) await caches.delete(k);
    await self.clients.claim();
  })());
});
self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (url.origin !== location.origin || event.request.method !== "GET") return;
  event.respondWith((async () => {
    const hit = await caches.match(event.request, { ignoreSearch: true });
    return hit || fetch(event.request);
  })());
});
