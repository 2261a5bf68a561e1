// jetvault's console: a client of the JSON API under /v1. No framework, no build step.
// The bearer token lives in sessionStorage and goes out as Authorization, never as a
// cookie. Every text from the server is inserted as text, or escaped (esc) where a big
// table is built as one string of HTML.
(() => {
'use strict';

// Shared with actions.js (the dialogs), which adds its functions here.
const JV = window.jetvault = {};
const TOKEN_KEY = 'jetvault-token';
const PAGE = 50;
const POLL_MS = 3000;

// ---------------------------------------------------------------- helpers

/** Builds an element: h('a', {href: '#/'}, 'text', child, ...). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const $ = (sel, root) => (root || document).querySelector(sel);
const enc = encodeURIComponent;

function toast(text) {
  const t = $('#toast');
  t.textContent = text;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.textContent = ''; }, 6000);
}

// What toLocaleString() shows, with one formatter made once (it is slow to make).
const LOCAL = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
const utc = (d) => 'UTC: ' + d.toISOString().replace('.000Z', 'Z');

/** A time in local time, with UTC on hover. */
function time(iso) {
  if (!iso) return h('span', { class: 'muted' }, '–');
  const d = new Date(iso);
  return h('time', { datetime: iso, title: utc(d) }, LOCAL.format(d));
}

/** Text made safe to put in HTML, in text or in a quoted attribute. */
function esc(v) {
  return String(v).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

/** time() as HTML. */
function timeHtml(iso) {
  if (!iso) return '<span class="muted">–</span>';
  const d = new Date(iso);
  return '<time datetime="' + esc(iso) + '" title="' + esc(utc(d)) + '">' + esc(LOCAL.format(d)) + '</time>';
}

function age(iso) {
  const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 90) return Math.round(s) + ' s ago';
  if (s < 5400) return Math.round(s / 60) + ' min ago';
  if (s < 129600) return Math.round(s / 3600) + ' h ago';
  return Math.round(s / 86400) + ' days ago';
}

function bytes(n) {
  if (n < 1024) return n + ' B';
  if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
  return (n / 1048576).toFixed(1) + ' MiB';
}

function errorBox(e) {
  return h('p', { class: 'error', role: 'alert' }, e.message || String(e),
    e.hint ? h('span', {}, ' — ', e.hint) : null);
}

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || 'HTTP ' + status);
    this.status = status;
    this.code = err.code || 'http_' + status;
    this.hint = err.hint;
  }
}

/** Calls the API: {status, etag, data}; throws ApiError for a non-2xx answer. */
async function api(method, path, opts) {
  const o = opts || {};
  const headers = Object.assign({ Accept: 'application/json' }, o.headers || {});
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = 'Bearer ' + token;
  let body;
  if (o.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(o.json);
  } else if (o.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = o.body;
  }
  const res = await fetch(path, { method, headers, body, cache: 'no-store' });
  const text = o.raw ? null : await res.text();
  let data = null;
  if (text) { try { data = JSON.parse(text); } catch (_) { data = text; } }
  if (!res.ok) {
    if (res.status === 401 && !o.noSignIn) showSignIn(new ApiError(res.status, data));
    throw new ApiError(res.status, data);
  }
  return { status: res.status, etag: res.headers.get('ETag'), data, text, res };
}

const envPath = (app, env) => '/v1/apps/' + enc(app) + '/envs/' + enc(env);

// ---------------------------------------------------------------- session

const session = { role: 'read', token: null, auth: 'tokens' };
const canOperate = () => session.role === 'operate';

async function loadSession() {
  const r = await api('GET', '/v1/session', { noSignIn: true });
  Object.assign(session, r.data, { loaded: true });
  $('#who').textContent = (session.token ? session.token + ' · ' : '') + 'role: ' + session.role;
  $('#signout').hidden = !sessionStorage.getItem(TOKEN_KEY);
}

function showSignIn(err) {
  stopPolling();
  const main = $('#main');
  const input = h('input', { id: 'token', type: 'password', autocomplete: 'off', required: true });
  const form = h('form', {
    class: 'signin',
    onsubmit: async (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      try {
        await loadSession();
        route();
      } catch (e) {
        sessionStorage.removeItem(TOKEN_KEY);
        showSignIn(e);
      }
    },
  },
  h('h1', {}, 'Sign in'),
  h('p', {}, 'Paste a token from the service config\'s [[server.tokens]]. It is kept in this tab only.'),
  err ? errorBox(err) : null,
  h('label', { for: 'token' }, 'Token'), ' ', input, ' ',
  h('button', { type: 'submit' }, 'Sign in'));
  main.replaceChildren(form);
  crumbs([]);
  input.focus();
}

// ---------------------------------------------------------------- layout

function crumbs(parts) {
  const nav = $('#crumbs');
  nav.replaceChildren(...parts.flatMap((p, i) => [
    i ? h('span', { 'aria-hidden': 'true' }, '/') : null,
    p.href ? h('a', { href: p.href }, p.text) : h('span', { 'aria-current': 'page' }, p.text),
  ]).filter(Boolean));
}

function page(title, ...children) {
  const main = $('#main');
  main.replaceChildren(h('h1', {}, title), ...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  document.title = title + ' · jetvault';
}

function actionButton(label, onclick, cls) {
  return h('button', {
    type: 'button', class: cls || '', onclick,
    disabled: !canOperate(),
    title: canOperate() ? null : 'Needs a token with the role "operate"',
  }, label);
}

/** A modal dialog; `build(close)` returns its content. Resolves when closed. */
function dialog(title, build) {
  return new Promise((resolve) => {
    const d = h('dialog', { 'aria-labelledby': 'dialog-title' });
    const close = (v) => { d.close(); d.remove(); resolve(v); };
    d.append(h('h2', { id: 'dialog-title' }, title), build(close));
    d.addEventListener('cancel', () => close(null));
    document.body.append(d);
    d.showModal();
    const first = d.querySelector('input, textarea, select, button');
    if (first) first.focus();
  });
}

// ---------------------------------------------------------------- overview

let pollTimer = null;
function stopPolling() { clearTimeout(pollTimer); pollTimer = null; }
/** Calls `fn` after `ms` unless the page changes first. */
function later(fn, ms) { clearTimeout(pollTimer); pollTimer = setTimeout(fn, ms); }

/** The overview's first request, sent with the session's (see start). */
let prefetched = null;

async function overview() {
  crumbs([{ text: 'Environments' }]);
  const holder = h('div', { class: 'scroll' });
  page('Environments', h('p', { class: 'muted' }, 'Every environment in the config or the store. Refreshes every few seconds.'), holder);
  let last = '';
  const tick = async () => {
    try {
      const first = prefetched;
      prefetched = null;
      const r = (first && await first) || await api('GET', '/v1/envs');
      if (r.text !== last) {
        last = r.text;
        // For bench/console.sh: when the overview's data first arrived, parsed.
        if (!performance.getEntriesByName('jetvault:overview-data').length) performance.mark('jetvault:overview-data');
        envTable(holder, r.data.envs);
        // For bench/console.sh: when the overview first became usable.
        if (!performance.getEntriesByName('jetvault:overview').length) performance.mark('jetvault:overview');
      }
    } catch (e) {
      if (e.status === 401) return;
      holder.replaceChildren(errorBox(e));
    }
    if (location.hash === '' || location.hash === '#/') pollTimer = setTimeout(tick, POLL_MS);
  };
  await tick();
}

/** The overview's table, into `holder`. With 1,000 environments and more, the rows are
 *  one string of escaped HTML parsed at once: far quicker than an element at a time. */
function envTable(holder, envs) {
  if (!envs.length) {
    holder.replaceChildren(h('p', {}, 'No environments yet: add one to the config, or back one up.'));
    return;
  }
  const rows = envs.map((e) => {
    const base = '#/e/' + enc(e.app) + '/' + enc(e.env);
    const name = esc(e.app + '/' + e.env);
    return '<tr data-env="' + name + '"><td><a href="' + esc(base) + '">' + name + '</a>'
      + (e.configured ? '' : ' <span class="badge">store only</span>') + '</td><td>'
      + (e.latest
        ? '<a href="' + esc(base + '/v/' + e.latest.version) + '">v' + esc(e.latest.version) + '</a> <span class="muted" title="'
          + esc(e.latest.created_at) + '">' + esc(age(e.latest.created_at)) + '</span>'
        : '<span class="muted">no snapshot</span>')
      + '</td><td class="release">'
      + (e.release ? '<span class="badge release">' + esc(e.release.label) + '</span> v' + esc(e.release.version) : '<span class="muted">–</span>')
      + '</td><td class="hide-narrow schedule">' + scheduleCell(e)
      + '</td><td class="hide-narrow verify">' + verifyCell(e.last_verify)
      + '</td><td class="hide-narrow">' + (e.pins.length ? esc(e.pins.map((p) => 'v' + p).join(', ')) : '–')
      + '</td><td class="hide-narrow mono">' + esc(e.live || '–') + '</td></tr>';
  });
  const table = holder.querySelector('#envs');
  if (table) {
    table.tBodies[0].innerHTML = rows.join('');
    return;
  }
  holder.innerHTML = '<table id="envs"><thead><tr><th>Environment</th><th>Latest</th><th>Release</th>'
    + '<th class="hide-narrow">Scheduled backup</th><th class="hide-narrow">Last verify</th>'
    + '<th class="hide-narrow">Pins</th><th class="hide-narrow">Live</th></tr></thead><tbody>'
    + rows.join('') + '</tbody></table>';
}

function verifyCell(v) {
  if (!v) return '<span class="muted">never</span>';
  const what = v.checked + (v.sampled ? ' of ' + v.total : '') + ' checked';
  if (v.ok) return '<span class="badge release">ok ' + timeHtml(v.at) + '</span> <span class="muted">' + esc(what) + '</span>';
  return '<span class="badge restore">failed ' + timeHtml(v.at) + '</span> <span>' + esc(v.bad + ' bad, ' + v.gaps + ' gaps of ' + what)
    + '</span>' + (v.problem ? '<div class="error">' + esc(v.problem) + '</div>' : '');
}

function scheduleCell(e) {
  if (!e.schedule) return '<span class="muted">none</span>';
  const last = e.last_scheduled;
  return (last ? (last.outcome === 'failed' || last.outcome === 'rejected'
    ? '<span class="badge restore" title="' + esc(last.error || '') + '">failed ' + timeHtml(last.at) + '</span>'
    : '<span class="badge release">ok ' + timeHtml(last.at) + '</span>')
    : '<span class="muted">not run yet</span>')
    + (e.next_run ? '<span class="muted"> · next ' + timeHtml(e.next_run) + '</span>' : '')
    + (last && last.error ? '<div class="error">' + esc(last.error) + '</div>' : '');
}

// ---------------------------------------------------------------- history

async function historyPage(app, env) {
  const base = '#/e/' + enc(app) + '/' + enc(env);
  crumbs([{ text: 'Environments', href: '#/' }, { text: app + '/' + env }]);
  const [snaps, releases, summary] = await Promise.all([
    api('GET', envPath(app, env) + '/snapshots?limit=' + PAGE).catch((e) => e),
    api('GET', envPath(app, env) + '/releases?limit=1000').catch(() => ({ data: { releases: [] } })),
    api('GET', '/v1/envs?app=' + enc(app) + '&env=' + enc(env)).then((r) => r.data.envs[0] || null).catch(() => null),
  ]);
  const labels = new Map();
  for (const r of (releases.data.releases || releases.data || [])) {
    if (!labels.has(r.version)) labels.set(r.version, []);
    labels.get(r.version).push(r.label);
  }
  const current = summary && summary.release;
  const pins = new Set((summary && summary.pins) || []);
  const rows = snaps instanceof Error ? [] : snaps.data.snapshots;
  let next = snaps instanceof Error ? null : snaps.data.next_before;
  performance.mark('jetvault:history-data');

  const trigger = h('select', { id: 'f-trigger' }, h('option', { value: '' }, 'any'),
    ['manual', 'schedule', 'api', 'upload', 'pre-restore', 'restore', 'promote'].map((t) => h('option', { value: t }, t)));
  const author = h('input', { id: 'f-author', type: 'search' });
  const text = h('input', { id: 'f-text', type: 'search' });
  const body = h('tbody');
  const more = h('button', { type: 'button', class: 'secondary', id: 'older' }, 'Older versions');
  const selected = [];
  const compare = h('button', { type: 'button', class: 'secondary', id: 'compare', disabled: true,
    onclick: () => { location.hash = base + '/diff/' + Math.min(...selected) + '/' + Math.max(...selected); } },
  'Compare the two selected');

  const render = () => {
    const f = { t: trigger.value, a: author.value.toLowerCase(), m: text.value.toLowerCase() };
    body.replaceChildren(...rows.filter((s) => (!f.t || s.trigger === f.t)
      && (!f.a || (s.author || '').toLowerCase().includes(f.a))
      && (!f.m || (s.message || '').toLowerCase().includes(f.m))).map((s) => snapshotRow(app, env, s, {
      labels: labels.get(s.version) || [], pinned: pins.has(s.version), current, selected, compare,
      live: summary && summary.live,
    })));
  };
  for (const el of [trigger, author, text]) el.addEventListener('input', render);
  more.addEventListener('click', async () => {
    const r = await api('GET', envPath(app, env) + '/snapshots?limit=' + PAGE + '&before=' + next);
    rows.push(...r.data.snapshots);
    next = r.data.next_before;
    more.hidden = !next;
    render();
  });
  more.hidden = !next;

  page(app + '/' + env,
    h('p', {},
      current ? ['Released: ', h('span', { class: 'badge release' }, current.label), ' v' + current.version + ' ', time(current.released_at)]
        : h('span', { class: 'muted' }, 'Not released yet.')),
    h('div', { class: 'bar' },
      actionButton('Back up now', () => JV.backupNow(app, env)),
      actionButton('Upload a JSON file', () => JV.upload(app, env)),
      actionButton('Roll back the release', () => JV.rollback(app, env), 'secondary'),
      actionButton('Promote…', () => JV.promote(app, env, current ? current.version : rows[0] && rows[0].version), 'secondary'),
      h('a', { href: base + '/events' }, 'Audit events')),
    snaps instanceof Error ? errorBox(snaps) : null,
    h('div', { class: 'bar', role: 'search' },
      h('label', {}, 'Trigger', trigger), h('label', {}, 'Author', author), h('label', {}, 'Message', text), compare),
    h('div', { class: 'scroll' }, h('table', { id: 'history' },
      h('thead', {}, h('tr', {}, h('th', {}, h('span', { class: 'sr' }, 'Select')), h('th', {}, 'Version'), h('th', {}, 'Taken'),
        h('th', {}, 'Trigger'), h('th', { class: 'hide-narrow' }, 'Author'), h('th', {}, 'Message'),
        h('th', { class: 'hide-narrow num' }, 'Size'), h('th', {}, 'Actions'))),
      body)),
    more);
  render();
  performance.mark('jetvault:history-rendered');
}

function snapshotRow(app, env, s, ctx) {
  const base = '#/e/' + enc(app) + '/' + enc(env);
  const box = h('input', { type: 'checkbox', 'aria-label': 'Select v' + s.version + ' to compare' });
  box.checked = ctx.selected.includes(s.version);
  box.addEventListener('change', () => {
    const i = ctx.selected.indexOf(s.version);
    if (box.checked && i < 0) ctx.selected.push(s.version);
    if (!box.checked && i >= 0) ctx.selected.splice(i, 1);
    while (ctx.selected.length > 2) ctx.selected.shift();
    ctx.compare.disabled = ctx.selected.length !== 2;
  });
  const badges = [
    ...ctx.labels.map((l) => h('span', { class: 'badge release', title: 'Release label' },
      l + (ctx.current && ctx.current.label === l ? ' (current)' : ''))),
    ctx.pinned ? h('span', { class: 'badge pin' }, 'pinned') : null,
    s.trigger === 'pre-restore' || s.trigger === 'restore' ? h('span', { class: 'badge ' + s.trigger }, s.trigger) : null,
  ];
  return h('tr', { 'data-version': s.version },
    h('td', {}, box),
    h('td', {}, h('a', { href: base + '/v/' + s.version }, 'v' + s.version), ' ', badges),
    h('td', {}, time(s.created_at)),
    h('td', {}, s.trigger),
    h('td', { class: 'hide-narrow' }, s.author || '–'),
    h('td', {}, s.message || ''),
    h('td', { class: 'hide-narrow num' }, bytes(s.size)),
    h('td', { class: 'row-actions' },
      actionButton('Release', () => JV.release(app, env, s.version), 'secondary'), ' ',
      actionButton('Restore', () => JV.restore(app, env, s.version), 'secondary'), ' ',
      pinButton(app, env, s.version, ctx.pinned), ' ',
      liveButton(app, env, s.version, ctx.live)));
}

/** Pin or unpin a version (prune keeps pinned ones). */
function pinButton(app, env, version, pinned) {
  return actionButton(pinned ? 'Unpin' : 'Pin', () => JV.pin(app, env, version, !pinned), 'secondary pin-toggle');
}

/** Opens the diff of a version against live (the dry-run restore plan: operate only). */
function liveButton(app, env, version, live) {
  const b = actionButton('Compare with live', () => {
    location.hash = '#/e/' + enc(app) + '/' + enc(env) + '/live/' + version;
  }, 'secondary live-diff');
  if (!live) { b.disabled = true; b.title = 'No live target in the config'; }
  return b;
}

// ---------------------------------------------------------------- snapshot

async function snapshot(app, env, version) {
  const base = '#/e/' + enc(app) + '/' + enc(env);
  crumbs([{ text: 'Environments', href: '#/' }, { text: app + '/' + env, href: base }, { text: 'v' + version }]);
  const [meta, content, summary] = await Promise.all([
    api('GET', envPath(app, env) + '/snapshots/' + version),
    api('GET', envPath(app, env) + '/snapshots/' + version + '/config'),
    api('GET', '/v1/envs?app=' + enc(app) + '&env=' + enc(env)).then((r) => r.data.envs[0] || null).catch(() => null),
  ]);
  const pinned = !!summary && summary.pins.includes(version);
  const m = meta.data;
  const search = h('input', { id: 'tree-search', type: 'search' });
  const tree = h('div', { class: 'tree', id: 'tree' }, jsonTree(content.data, null, 0));
  search.addEventListener('input', () => highlight(tree, search.value));
  page(app + '/' + env + ' v' + version,
    h('dl', { class: 'meta' }, [
      ['version', 'v' + m.version], ['taken', time(m.created_at)], ['trigger', m.trigger],
      ['author', m.author || '–'], ['message', m.message || '–'], ['source', m.source || '–'],
      ['sha256', h('code', {}, m.sha256)], ['size', bytes(m.size) + ' (' + bytes(m.stored_size) + ' stored)'],
    ].map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
    h('div', { class: 'bar' },
      h('button', { type: 'button', class: 'secondary', onclick: () => JV.download(app, env, version) }, 'Download the JSON'),
      m.version > 1 ? h('a', { class: 'button', href: base + '/diff/' + (m.version - 1) + '/' + m.version }, 'Changes from v' + (m.version - 1)) : null,
      liveButton(app, env, version, summary && summary.live),
      actionButton('Release', () => JV.release(app, env, version), 'secondary'),
      actionButton('Restore', () => JV.restore(app, env, version), 'secondary'),
      pinButton(app, env, version, pinned),
      actionButton('Promote…', () => JV.promote(app, env, version), 'secondary')),
    pinned ? h('p', {}, h('span', { class: 'badge pin' }, 'pinned'), ' Prune keeps this version whatever the policy.') : null,
    h('h2', {}, 'Configuration'),
    h('div', { class: 'bar', role: 'search' }, h('label', {}, 'Search keys and values', search)),
    tree);
}

function jsonTree(value, key, depth) {
  const label = key === null ? [] : [h('span', { class: 'key' }, key), ': '];
  if (value !== null && typeof value === 'object') {
    const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);
    const kind = Array.isArray(value) ? '[' + entries.length + ']' : '{' + entries.length + '}';
    const d = h('details', { open: depth < 2 }, h('summary', {}, ...label, h('span', { class: 'muted' }, kind)));
    // Children are built when first opened: a 5 MB document stays quick to show.
    const fill = () => {
      if (d.dataset.filled) return;
      d.dataset.filled = '1';
      d.append(...entries.map(([k, v]) => jsonTree(v, k, depth + 1)));
    };
    if (depth < 2) fill(); else d.addEventListener('toggle', fill, { once: true });
    d.fill = fill;
    return d;
  }
  return h('div', { class: 'leaf' }, ...label, h('span', { class: 'val' }, JSON.stringify(value)));
}

function highlight(tree, needle) {
  for (const m of tree.querySelectorAll('mark')) m.replaceWith(m.textContent);
  if (needle.length < 2) return;
  const n = needle.toLowerCase();
  // Fill and open every branch, then mark the matching keys and values.
  let pending = [...tree.querySelectorAll('details')];
  while (pending.length) {
    const d = pending.pop();
    if (d.fill) d.fill();
    pending.push(...[...d.children].filter((c) => c.tagName === 'DETAILS' && !c.dataset.seen));
    d.dataset.seen = '1';
  }
  let hits = 0;
  for (const el of tree.querySelectorAll('.key, .val')) {
    const t = el.textContent;
    const i = t.toLowerCase().indexOf(n);
    if (i < 0) continue;
    hits += 1;
    el.replaceChildren(t.slice(0, i), h('mark', {}, t.slice(i, i + needle.length)), t.slice(i + needle.length));
    for (let p = el.parentElement; p && p !== tree; p = p.parentElement) if (p.tagName === 'DETAILS') p.open = true;
  }
  toast(hits + ' match' + (hits === 1 ? '' : 'es'));
}

function short(s) { return s.length > 300 ? s.slice(0, 300) + '…' : s; }

// ---------------------------------------------------------------- events

async function events(app, env) {
  const base = '#/e/' + enc(app) + '/' + enc(env);
  crumbs([{ text: 'Environments', href: '#/' }, { text: app + '/' + env, href: base }, { text: 'Audit events' }]);
  const r = await api('GET', envPath(app, env) + '/events?limit=200');
  page('Audit events of ' + app + '/' + env, h('div', { class: 'scroll' }, h('table', { id: 'events' },
    h('thead', {}, h('tr', {}, h('th', {}, 'When'), h('th', {}, 'Action'), h('th', {}, 'Version'),
      h('th', {}, 'Who'), h('th', { class: 'hide-narrow' }, 'Details'))),
    h('tbody', {}, r.data.map((e) => h('tr', {},
      h('td', {}, time(e.at)), h('td', {}, e.action), h('td', {}, e.version ? 'v' + e.version : '–'),
      h('td', {}, [e.actor.who, e.actor.via, e.actor.from].filter(Boolean).join(' · ')),
      h('td', { class: 'hide-narrow mono' }, e.details && Object.keys(e.details).length ? short(JSON.stringify(e.details)) : '')))))));
}

// ---------------------------------------------------------------- router

async function route() {
  stopPolling();
  const hash = decodeURIComponent(location.hash.slice(1) || '/');
  const p = hash.split('/').filter(Boolean);
  try {
    if (p.length === 0) await overview();
    else if (p[0] === 'e' && p.length === 3) await historyPage(p[1], p[2]);
    else if (p[0] === 'e' && p[3] === 'v' && p.length === 5) await snapshot(p[1], p[2], Number(p[4]));
    else if (p[0] === 'e' && p[3] === 'diff' && p.length >= 6) await JV.diff(p[1], p[2], p[4], p[5], p[6] || 'unified');
    else if (p[0] === 'e' && p[3] === 'events') await events(p[1], p[2]);
    else if (p[0] === 'e' && p[3] === 'live' && p.length === 5) await JV.liveDiff(p[1], p[2], Number(p[4]));
    else if (p[0] === 'runs' && p.length <= 2) await (p[1] ? JV.runPage(p[1]) : JV.runsPage());
    else page('Not found', h('p', {}, 'No such page. '), h('a', { href: '#/' }, 'Back to the environments'));
  } catch (e) {
    if (e.status !== 401) page('Error', errorBox(e));
  }
  $('#main').focus({ preventScroll: true });
}

async function start() {
  $('#signout').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    session.loaded = false;
    location.hash = '#/';
    showSignIn(null);
  });
  window.addEventListener('hashchange', () => {
    if (session.loaded) route();
  });
  // The overview's data is asked for with the session, not after it.
  if (location.hash === '' || location.hash === '#/') prefetched = api('GET', '/v1/envs', { noSignIn: true }).catch(() => null);
  try {
    await loadSession();
  } catch (e) {
    if (e.status === 401) { showSignIn(null); return; }
    page('Error', errorBox(e));
    return;
  }
  route();
}

Object.assign(JV, {
  TOKEN_KEY, h, $, enc, toast, time, errorBox, api, envPath, canOperate, actionButton, dialog, historyPage,
  crumbs, page, later, short,
  reload: route,
});
document.addEventListener('DOMContentLoaded', start);
})();
