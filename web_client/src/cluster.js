// The cluster page (/cluster): polls this node's GET /api/cluster every second
// and draws the cluster's links from the link state every node gossips, this
// node's own detailed view of its links, and its routes. Plain DOM, no
// dependencies. Test hooks: data-node / data-link (+ data-state) in the
// picture, data-peer (+ data-state) on table rows, data-testid on banners.

const POLL_MS = 1000;
const TIMEOUT_MS = 3000;  // no answer within this: the node counts as unreachable
const QUIET_S = 10;       // a node whose gossiped state is older than this has gone quiet

const SVG = 'http://www.w3.org/2000/svg';
const $ = (id) => document.getElementById(id);

/** Element with attributes (a value of null or undefined is left out) and children (strings become text). */
function el(ns, tag, attrs, children) {
  const e = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) if (v != null) e.setAttribute(k, String(v));
  e.append(...children.filter((c) => c != null && c !== false));
  return e;
}
const h = (tag, attrs, ...children) => el(null, tag, attrs, children);
const s = (tag, attrs, ...children) => el(SVG, tag, attrs, children);

const has = (v) => v !== undefined && v !== null;
const fmtLagMs = (ms) => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);
const fmtSeconds = (sec) => (sec < 10 ? sec.toFixed(1) : Math.round(sec)) + ' s';
function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
const clock = (ms) => new Date(ms).toLocaleTimeString();
/** ok below 1 s of lag, slow up to max_lag_s, bad past it. */
const lagClass = (lagS, maxS) => (lagS < 1 ? 'ok' : lagS <= maxS ? 'slow' : 'bad');
const pairKey = (a, b) => (a < b ? `${a}-${b}` : `${b}-${a}`);

/** Nodes to place and lines to draw, from the gossiped link state and this node's own links. */
function picture(c) {
  const reported = new Map();  // node -> Map(neighbour -> lag_ms that node sees)
  for (const n of c.nodes ?? []) reported.set(n.node, new Map((n.links ?? []).map((l) => [l.node, l.lag_ms])));
  const names = new Set([c.node, ...reported.keys()]);
  const down = new Map();  // peer -> this node's record of the down link
  for (const l of c.links ?? []) {
    if (!l.peer) continue;  // dialled but never reached: no name to draw
    names.add(l.peer);
    if (l.state !== 'up') down.set(l.peer, l);
  }
  const edges = [];
  for (const [a, peers] of reported) {
    for (const [b, lagA] of peers) {
      if (!(a < b)) continue;  // each pair once, from its smaller name
      const lagB = reported.get(b)?.get(a);
      if (lagB === undefined) continue;  // only one end says up: not a link (yet, or any more)
      if ((a === c.node && down.has(b)) || (b === c.node && down.has(a))) continue;
      edges.push({ a, b, state: 'up', lagMs: Math.max(lagA, lagB) });
    }
  }
  for (const [p, l] of down) {
    const [a, b] = c.node < p ? [c.node, p] : [p, c.node];
    edges.push({ a, b, state: 'down', downS: l.down_s });
  }
  const now = Date.now();
  const quiet = new Map();  // node -> seconds since its gossiped state was made
  for (const n of c.nodes ?? []) {
    const age = (now - n.version) / 1000;
    if (n.node !== c.node && age > QUIET_S) quiet.set(n.node, age);
  }
  return { names: [...names].sort(), edges, quiet };
}

function drawMap(c, { names, edges, quiet }) {
  const W = 640, H = 380, cx = W / 2, cy = H / 2 - 6;
  const r = names.length > 1 ? 130 : 0;
  const pos = new Map(names.map((n, i) => {
    const t = -Math.PI / 2 + (2 * Math.PI * i) / names.length;
    return [n, { x: cx + r * Math.cos(t), y: cy + r * Math.sin(t) }];
  }));
  const maxS = c.max_lag_s;
  const lines = edges.map((e) => {
    const p = pos.get(e.a), q = pos.get(e.b);
    const cls = e.state === 'up' ? lagClass(e.lagMs / 1000, maxS) : 'down';
    const label = e.state === 'up' ? fmtLagMs(e.lagMs) : has(e.downS) ? `down ${fmtSeconds(e.downS)}` : 'down';
    return s('g', { 'data-link': pairKey(e.a, e.b), 'data-state': e.state },
      s('title', {}, `${e.a} – ${e.b}: ${e.state === 'up' ? `up, lag ${fmtLagMs(e.lagMs)}` : label}`),
      s('line', { class: cls, x1: p.x, y1: p.y, x2: q.x, y2: q.y }),
      s('text', { class: `lag ${cls}`, x: (p.x + q.x) / 2, y: (p.y + q.y) / 2 }, label));
  });
  const nodes = names.map((n) => {
    const { x, y } = pos.get(n);
    const self = n === c.node;
    const q = quiet.get(n);
    // The note goes outside the circle, away from the centre (and the lines).
    const ux = r ? (x - cx) / r : 0, uy = r ? (y - cy) / r : 1;
    const note = (text) => s('text', { class: 'note', x: x + ux * 36, y: y + uy * 40,
      style: `text-anchor: ${ux > 0.3 ? 'start' : ux < -0.3 ? 'end' : 'middle'}` }, text);
    return s('g', { class: `node${self ? ' self' : ''}${has(q) ? ' quiet' : ''}`, 'data-node': n, 'data-self': self ? '' : null },
      s('title', {}, self ? `${n} (this node, ${c.key})` : has(q) ? `${n}: no news for ${Math.round(q)} s` : n),
      s('circle', { cx: x, cy: y, r: 26 }),
      s('text', { class: 'name', x, y }, n.length > 6 ? n.slice(0, 5) + '…' : n),
      self ? note('this node') : has(q) ? note(`quiet ${Math.round(q)} s`) : null);
  });
  $('map').replaceChildren(...lines, ...nodes);
}

function drawLinks(c) {
  const now = Date.now();
  const maxS = c.max_lag_s;
  const cols = ['peer', 'state', 'direction', 'last contact', 'RTT', 'lag s / batches', 'queue',
    'bytes sent / received', 'duplicates', 'errors', 'reconnects', 'error'];
  const numeric = new Set(['last contact', 'RTT', 'lag s / batches', 'queue', 'bytes sent / received',
    'duplicates', 'errors', 'reconnects']);
  const cell = (text, cls) => h('td', { class: cls }, text ?? '–');
  const rows = (c.links ?? []).map((l) => {
    const up = l.state === 'up';
    const lagCls = up && has(l.lag_s) ? lagClass(l.lag_s, maxS) : null;
    return h('tr', { 'data-peer': l.peer || l.url, 'data-state': l.state },
      h('td', {}, h('b', {}, l.peer || '(unknown)'), l.url ? h('span', { class: 'url' }, l.url) : null),
      h('td', {}, h('span', { class: `state ${l.state}` }, l.state),
        !up && has(l.down_s) ? h('span', { class: `url ${l.down_s > maxS ? 'bad' : ''}` }, `for ${fmtSeconds(l.down_s)}`) : null),
      cell(l.direction || null),
      cell(has(l.last_contact_ms) ? `${fmtSeconds(Math.max(0, (now - l.last_contact_ms) / 1000))} ago` : null, 'num'),
      cell(has(l.rtt_ms) ? `${l.rtt_ms.toFixed(1)} ms` : null, 'num'),
      cell(has(l.lag_s) ? `${l.lag_s.toFixed(3)} / ${l.lag_batches}` : null, `num ${lagCls ?? ''}`),
      cell(l.queue, 'num'),
      cell(has(l.bytes_sent) ? `${fmtBytes(l.bytes_sent)} / ${fmtBytes(l.bytes_received)}` : null, 'num'),
      cell(l.duplicates, 'num'),
      cell(l.errors, `num ${l.errors > 0 ? 'bad' : ''}`),
      cell(l.reconnects, 'num'),
      cell(l.error || '', 'err'));
  });
  $('links-title').textContent = `Links of node ${c.node}`;
  $('links').replaceChildren(rows.length
    ? h('table', { 'data-testid': 'links' },
      h('thead', {}, h('tr', {}, ...cols.map((t) => h('th', { class: numeric.has(t) ? 'num' : null }, t)))),
      h('tbody', {}, ...rows))
    : h('p', { class: 'meta', style: 'padding: 0 14px' }, 'no links: this node was started without --peer and no peer has dialled it'));
}

function drawRoutes(c) {
  const routes = Object.entries(c.routes ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  $('routes').replaceChildren(routes.length
    ? h('table', { class: 'routes', 'data-testid': 'routes' },
      h('thead', {}, h('tr', {}, h('th', {}, 'origin'), h('th', {}, 'received via'))),
      h('tbody', {}, ...routes.map(([origin, via]) => h('tr', { 'data-origin': origin }, h('td', {}, origin), h('td', {}, via)))))
    : h('p', { class: 'meta', style: 'padding: 0 14px' }, 'none: no link is up'));
}

/** What makes the cluster degraded: this node's links past max_lag_s (as /healthz says), and gossiped lags past it. */
function degraded(c, edges) {
  const maxS = c.max_lag_s;
  const why = [];
  for (const l of c.links ?? []) {
    const name = l.peer || l.url;
    if (l.state === 'up' && l.lag_s > maxS) why.push(`link ${c.node} – ${name}: lag ${l.lag_s.toFixed(1)} s`);
    if (l.state !== 'up' && l.down_s > maxS) why.push(`link ${c.node} – ${name}: down for ${fmtSeconds(l.down_s)}${l.error ? ` (${l.error})` : ''}`);
  }
  for (const e of edges) {
    if (e.state === 'up' && e.a !== c.node && e.b !== c.node && e.lagMs / 1000 > maxS)
      why.push(`link ${e.a} – ${e.b}: lag ${fmtLagMs(e.lagMs)}`);
  }
  return why;
}

function banner(kind, title, items) {
  return h('div', { class: `banner ${kind}`, 'data-testid': `banner-${kind}`, role: 'alert' },
    title, items.length ? h('ul', {}, ...items.map((t) => h('li', {}, t))) : null);
}

let lastOk = null, failingSince = null, lastDegraded = [];

function render(c) {
  if (!c.node) {  // a server without replication answers {}
    $('summary').textContent = 'replication is not set up on this node';
    return;
  }
  const pic = picture(c);
  lastDegraded = degraded(c, pic.edges);
  document.title = `weft cluster · ${c.node}`;
  $('summary').textContent = `node ${c.node} (${c.key}) · topology ${c.topology}${c.hub ? `, hub ${c.hub}` : ''}` +
    ` · ${pic.names.length} nodes · degraded past ${c.max_lag_s} s`;
  $('max-lag').textContent = c.max_lag_s;
  drawMap(c, pic);
  drawLinks(c);
  drawRoutes(c);
}

function renderStatus(error) {
  const up = !error;
  document.body.dataset.state = up ? 'live' : 'unreachable';
  const status = $('status');
  status.className = `status ${up ? 'online' : 'offline'}`;
  status.textContent = up ? `live · ${clock(lastOk)}` : 'unreachable';
  const banners = [];
  if (!up) {
    banners.push(banner('unreachable',
      `Node unreachable since ${clock(failingSince)}: ${error}. ` +
      (lastOk ? `The picture below is from ${clock(lastOk)}.` : 'Nothing has been received from it yet.'), []));
  }
  if (lastDegraded.length)
    banners.push(banner('degraded', `Replication degraded${up ? '' : ' (at the last answer)'}:`, lastDegraded));
  $('banners').replaceChildren(...banners);
}

async function poll() {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), TIMEOUT_MS);
  try {
    const res = await fetch('/api/cluster', { cache: 'no-store', signal: ctrl.signal });
    if (!res.ok) throw new Error(`GET /api/cluster answered HTTP ${res.status}`);
    const c = await res.json();
    lastOk = Date.now();
    failingSince = null;
    render(c);
    renderStatus(null);
  } catch (e) {
    failingSince ??= Date.now();
    renderStatus(e.name === 'AbortError' ? `no answer within ${TIMEOUT_MS / 1000} s`
      : e instanceof TypeError ? `cannot connect (${e.message})` : e.message);
  } finally {
    clearTimeout(timer);
    setTimeout(poll, POLL_MS);
  }
}

poll();
