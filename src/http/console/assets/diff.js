// jetvault's console: the changes between two versions, or between a version and live
// (the dry-run plan of a restore), unified or side by side. Loaded after app.js, whose
// helpers it uses through window.jetvault, and before actions.js, whose restore dialog
// shows the same changes.
(() => {
'use strict';

const JV = window.jetvault;
const { h, enc, api, envPath, canOperate, actionButton, crumbs, page, short } = JV;

function changeLine(c) {
  const sign = { added: '+', removed: '-', changed: '~' }[c.change] || '?';
  const what = c.change === 'changed'
    ? JSON.stringify(c.from) + ' → ' + JSON.stringify(c.to)
    : JSON.stringify(c.change === 'added' ? c.value : c.value);
  return h('li', { class: c.change }, sign + ' ' + (c.path || '/') + ': ' + short(what));
}

function changesView(changes, view) {
  const counts = { added: 0, removed: 0, changed: 0 };
  for (const c of changes) counts[c.change] = (counts[c.change] || 0) + 1;
  const head = h('p', { class: 'counts', id: 'counts' },
    h('span', { class: 'added' }, counts.added + ' added'),
    h('span', { class: 'removed' }, counts.removed + ' removed'),
    h('span', { class: 'changed' }, counts.changed + ' changed'));
  if (!changes.length) return [head, h('p', {}, 'The two are the same.')];
  if (view === 'side') {
    return [head, h('div', { class: 'scroll' }, h('table', { class: 'side' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Path'), h('th', {}, 'Before'), h('th', {}, 'After'))),
      h('tbody', {}, changes.map((c) => h('tr', { class: c.change },
        h('td', {}, c.path || '/'),
        h('td', {}, c.change === 'added' ? '' : short(JSON.stringify(c.change === 'changed' ? c.from : c.value))),
        h('td', {}, c.change === 'removed' ? '' : short(JSON.stringify(c.change === 'changed' ? c.to : c.value))))))))];
  }
  return [head, h('ul', { class: 'changes', id: 'changes' }, changes.map(changeLine))];
}

async function diff(app, env, a, b, view) {
  const base = '#/e/' + enc(app) + '/' + enc(env);
  crumbs([{ text: 'Environments', href: '#/' }, { text: app + '/' + env, href: base }, { text: 'v' + a + ' → v' + b }]);
  const r = await api('GET', envPath(app, env) + '/diff?a=' + enc(a) + '&b=' + enc(b) + '&format=changes');
  const other = view === 'side' ? 'unified' : 'side';
  page('Changes from v' + r.data.a + ' to v' + r.data.b,
    h('div', { class: 'bar' },
      h('a', { href: base + '/diff/' + a + '/' + b + '/' + other }, other === 'side' ? 'Side by side' : 'Unified')),
    ...changesView(r.data.changes, view));
}

/** What restoring `version` would change in live: the dry-run plan's diff. */
async function liveDiff(app, env, version) {
  const base = '#/e/' + enc(app) + '/' + enc(env);
  crumbs([{ text: 'Environments', href: '#/' }, { text: app + '/' + env, href: base }, { text: 'live → v' + version }]);
  if (!canOperate()) {
    page('Live compared with v' + version, h('p', { class: 'error', role: 'alert' },
      'Reading live needs a token with the role "operate" (it is the dry run of a restore).'));
    return;
  }
  const plan = (await api('POST', envPath(app, env) + '/restore', { json: { source: { version }, dry_run: true } })).data;
  const live = plan.live || {};
  page('Live compared with v' + version,
    h('p', {}, 'Live (', h('code', {}, plan.target), ') is ', live.state + (live.reason ? ': ' + live.reason : ''),
      plan.already_live ? '; it holds v' + version + ' already.' : '.',
      ' The changes below are what restoring v' + version + ' would do to it: "removed" is only in live, "added" only in v' + version + '.'),
    h('div', { class: 'bar' },
      h('a', { href: base + '/v/' + version }, 'Back to v' + version),
      actionButton('Restore v' + version + '…', () => JV.restore(app, env, version), 'secondary')),
    plan.changes ? changesView(plan.changes, 'unified') : h('p', { class: 'muted' }, 'No diff: live is not readable JSON.'));
}

Object.assign(JV, { changesView, diff, liveDiff });
})();
