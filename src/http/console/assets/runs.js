// jetvault's console: the restore-all runs (GET /v1/restore-all, GET /v1/restore-all/{run})
// and, for the operate role, undoing or resuming one (POST /v1/restore-all), the undo
// behind its dry-run plan and a typed confirmation. Loaded after app.js, whose helpers it
// uses through window.jetvault.
(() => {
'use strict';

const JV = window.jetvault;
const { h, enc, toast, time, errorBox, api, canOperate, actionButton, dialog, crumbs, page, later } = JV;
const POLL_MS = 2000;
const STATUSES = ['restored', 'unchanged', 'skipped', 'failed', 'pending'];

const runHref = (id) => '#/runs/' + enc(id);

/** What a run restores to, in words. */
function pointText(run) {
  if (run.kind === 'undo') return 'what was live before ' + (run.undoes || 'another run');
  const p = run.point;
  if (!p) return '–';
  if (p === 'current_release') return 'the current releases';
  if (p.at) return ['the snapshots as of ', time(p.at)];
  if (p.release_at) return ['the releases current at ', time(p.release_at)];
  return JSON.stringify(p);
}

function selectionText(s) {
  if (!s) return '–';
  const parts = [];
  if (s.all) parts.push('all');
  if (s.apps && s.apps.length) parts.push('apps ' + s.apps.join(', '));
  if (s.pattern) parts.push('env ' + s.pattern);
  return parts.join('; ') || '–';
}

function countsText(c) {
  return STATUSES.filter((k) => c[k]).map((k) => c[k] + ' ' + k).join(', ') || 'no environments';
}

function stateBadge(finished, running, c) {
  if (running) return h('span', { class: 'badge pre-restore' }, 'running');
  if (finished) return h('span', { class: 'badge release' }, 'finished');
  if (c.failed) return h('span', { class: 'badge restore' }, c.failed + ' failed');
  return h('span', { class: 'badge pre-restore' }, 'incomplete');
}

// ---------------------------------------------------------------- the list

async function runsPage() {
  crumbs([{ text: 'Environments', href: '#/' }, { text: 'Restore runs' }]);
  const runs = [];
  let next = null;
  const body = h('tbody');
  const more = h('button', { type: 'button', class: 'secondary', id: 'older-runs', hidden: true }, 'Older runs');
  const render = () => {
    body.replaceChildren(...runs.map((r) => h('tr', { 'data-run': r.id },
      h('td', {}, h('a', { href: runHref(r.id) }, r.id)),
      h('td', {}, time(r.created_at)),
      h('td', {}, r.kind === 'undo' ? 'undo' : 'restore'),
      h('td', {}, pointText(r)),
      h('td', { class: 'hide-narrow' }, selectionText(r.selection)),
      h('td', {}, stateBadge(r.finished, false, r.counts), ' ', h('span', { class: 'muted' }, countsText(r.counts))))));
  };
  const first = (await api('GET', '/v1/restore-all?limit=20')).data;
  runs.push(...first.runs);
  next = first.next_before;
  more.hidden = !next;
  more.addEventListener('click', async () => {
    const r = (await api('GET', '/v1/restore-all?limit=20&before=' + enc(next))).data;
    runs.push(...r.runs);
    next = r.next_before;
    more.hidden = !next;
    render();
  });
  render();
  page('Restore runs',
    h('p', { class: 'muted' }, 'Platform-wide restores (jetvault restore-all, or POST /v1/restore-all), newest first.'),
    runs.length
      ? h('div', { class: 'scroll' }, h('table', { id: 'runs' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Run'), h('th', {}, 'Started'), h('th', {}, 'Kind'),
          h('th', {}, 'Back to'), h('th', { class: 'hide-narrow' }, 'Selection'), h('th', {}, 'Environments'))),
        body))
      : h('p', { id: 'runs' }, 'No restore-all run yet.'),
    more);
  // Refreshed while the newest page holds a run in progress (one started elsewhere
  // shows at the next refresh, or on coming back to the page).
  const here = location.hash;
  const tick = async () => {
    if (location.hash !== here || !runs.slice(0, 20).some((r) => !r.finished)) return;
    try {
      const r = (await api('GET', '/v1/restore-all?limit=20')).data;
      if (location.hash !== here) return;
      const oldest = r.runs.length ? r.runs[r.runs.length - 1].id : '';
      runs.splice(0, runs.length, ...r.runs, ...runs.filter((x) => x.id < oldest));
      render();
    } catch (e) { if (e.status === 401) return; }
    later(tick, POLL_MS);
  };
  later(tick, POLL_MS);
}

// ---------------------------------------------------------------- one run

async function runPage(id) {
  crumbs([{ text: 'Environments', href: '#/' }, { text: 'Restore runs', href: '#/runs' }, { text: id }]);
  const filter = h('select', { id: 'run-filter' }, h('option', { value: '' }, 'any'),
    STATUSES.map((s) => h('option', { value: s }, s)));
  const head = h('div', { id: 'run-head' });
  const body = h('tbody');
  let last = '';
  let status = null;
  const render = () => {
    const s = status;
    const run = s.run;
    const c = { restored: s.restored, unchanged: s.unchanged, skipped: s.skipped, failed: s.failed, pending: s.pending };
    const undoable = s.restored > 0 && !s.running;
    head.replaceChildren(...[
      h('dl', { class: 'meta' }, [
        ['state', [stateBadge(s.finished, s.running, c), s.running ? ' on this server; refreshed every few seconds' : '']],
        ['kind', run.kind],
        ['back to', pointText(run)],
        run.undoes ? ['undoes', h('a', { href: runHref(run.undoes) }, run.undoes)] : null,
        ['selection', selectionText(run.selection)],
        ['started', time(run.created_at)],
        ['last written', time(run.updated_at)],
        ['by', [run.actor.who, run.actor.via, run.actor.from].filter(Boolean).join(' · ') || '–'],
        ['environments', h('span', { id: 'run-counts' }, Object.keys(run.envs).length + ': ' + countsText(c))],
      ].filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
      h('div', { class: 'bar' },
        actionButton('Undo this run…', () => undo(run, s.restored), 'danger'),
        !s.finished && !s.running ? actionButton('Resume this run', () => resume(run.id), 'secondary') : null),
      !undoable && canOperate()
        ? h('p', { class: 'muted', id: 'undo-why' }, s.running ? 'Undo is possible once the run has stopped.'
          : 'Undo puts back what was live before the run; this run restored no environment.')
        : null,
      s.events.length ? h('p', { class: 'muted' }, 'Events: ', s.events.map((e, i) => [i ? '; ' : '', e.phase + ' ', time(e.at),
        e.phase === 'end' ? ' (' + e.restored + ' restored, ' + e.failed + ' failed)' : ''])) : null,
    ].filter(Boolean));
    const undoButton = head.querySelector('button.danger');
    if (undoButton && !undoable) {
      undoButton.disabled = true;
      if (canOperate()) undoButton.title = s.running ? 'The run is still going' : 'Nothing was restored';
    }
    const f = filter.value;
    const rows = [];
    for (const [name, e] of Object.entries(run.envs)) {
      if (f && e.status !== f) continue;
      const [app, env] = name.split('/');
      const base = '#/e/' + enc(app) + '/' + enc(env);
      rows.push(h('tr', { 'data-env': name, 'data-status': e.status },
        h('td', {}, h('a', { href: base }, name)),
        h('td', {}, h('span', { class: 'badge ' + ({ restored: 'release', failed: 'restore', pending: 'pre-restore' }[e.status] || '') }, e.status)),
        h('td', {}, e.version ? h('a', { href: base + '/v/' + e.version }, 'v' + e.version) : '–'),
        h('td', {}, e.pre_restore ? h('a', { href: base + '/v/' + e.pre_restore, title: 'What was live before: the undo point' }, 'v' + e.pre_restore) : '–'),
        h('td', { class: 'hide-narrow num' }, String(e.attempts || 0)),
        h('td', {}, e.reason || '', e.code ? h('span', { class: 'muted' }, ' (' + e.code + ')') : null)));
    }
    body.replaceChildren(...rows);
  };
  filter.addEventListener('change', render);
  const load = async () => {
    const r = await api('GET', '/v1/restore-all/' + enc(id));
    const text = JSON.stringify(r.data);
    if (text !== last) {
      last = text;
      status = r.data;
      render();
    }
    return r.data;
  };
  const first = await load();
  page('Restore run ' + id, head,
    h('div', { class: 'bar', role: 'search' }, h('label', {}, 'Status', filter)),
    h('div', { class: 'scroll' }, h('table', { id: 'run-envs' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Environment'), h('th', {}, 'Status'), h('th', {}, 'Version'),
        h('th', {}, 'Undo point'), h('th', { class: 'hide-narrow num' }, 'Attempts'), h('th', {}, 'Reason'))),
      body)));
  // Refreshed while it is in progress (here, or in another process: not finished).
  const here = location.hash;
  const tick = async () => {
    if (location.hash !== here) return;
    try {
      const s = await load();
      if (s.finished && !s.running) return;
    } catch (e) { if (e.status === 401) return; }
    if (location.hash === here) later(tick, POLL_MS);
  };
  if (!first.finished || first.running) later(tick, POLL_MS);
}

// ---------------------------------------------------------------- actions

/** Undo: the dry-run plan first, then the run id typed to confirm, then the new run. */
async function undo(run, restored) {
  let plan;
  try {
    plan = (await api('POST', '/v1/restore-all', { json: { undo: run.id, dry_run: true } })).data;
  } catch (e) { toast('Cannot plan the undo: ' + e.message); return; }
  await dialog('Undo run ' + run.id, (close) => {
    const confirm = h('input', { id: 'undo-confirm', type: 'text', autocomplete: 'off' });
    const go = h('button', { type: 'submit', class: 'danger', id: 'undo-submit', disabled: true }, 'Undo the run');
    confirm.addEventListener('input', () => { go.disabled = confirm.value.trim() !== run.id; });
    const out = h('div', { id: 'undo-outcome' });
    const changes = plan.envs.filter((e) => e.decision === 'restore' || e.decision === 'resolved');
    return h('form', {
      onsubmit: async (ev) => {
        ev.preventDefault();
        if (confirm.value.trim() !== run.id) return;
        go.disabled = true;
        try {
          const r = (await api('POST', '/v1/restore-all', { json: { undo: run.id, message: 'undo from the console' } })).data;
          toast('Undo started: run ' + r.run + ', ' + r.todo + ' environments to do');
          close(true);
          location.hash = runHref(r.run);
        } catch (e) { out.replaceChildren(errorBox(e)); go.disabled = false; }
      },
    },
    h('p', {}, 'This run restored ' + restored + ' environments. Undo puts back in each what was live before it ',
      '(its pre-restore snapshot), through the same safe restore: what is live now is saved first.'),
    h('p', { id: 'undo-plan' }, plan.restore + ' to put back, ' + plan.unchanged + ' already as before, '
      + plan.skip + ' skipped, ' + plan.fail + ' failed to plan.'),
    changes.length ? h('ul', { class: 'changes' }, changes.slice(0, 20).map((e) => h('li', {},
      e.env + ' → v' + e.version + (e.changes !== undefined && e.changes !== null ? ' (' + e.changes + ' changes)' : ''))),
    changes.length > 20 ? h('li', { class: 'muted' }, '… and ' + (changes.length - 20) + ' more') : null) : null,
    h('label', { for: 'undo-confirm' }, 'Type the run id, ', h('code', {}, run.id), ', to confirm'), confirm,
    out,
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary dialog-cancel', onclick: () => close(null) }, 'Cancel'), go));
  });
}

async function resume(id) {
  try {
    const r = (await api('POST', '/v1/restore-all', { json: { resume: id } })).data;
    toast('Resumed run ' + r.run + ': ' + r.todo + ' environments to do');
    JV.reload();
  } catch (e) { toast('Cannot resume: ' + e.message); }
}

Object.assign(JV, { runsPage, runPage });
})();
