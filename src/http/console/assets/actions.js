// jetvault's console: the actions (download, back up, upload, release, roll back, restore, pin,
// promote), each a dialog or a call on the JSON API. Loaded after app.js, whose helpers
// it uses through window.jetvault; the server refuses every one of them to a read token
// anyway, and the buttons are disabled for it.
(() => {
'use strict';

const JV = window.jetvault;
const { TOKEN_KEY, h, enc, toast, errorBox, api, envPath, dialog, changesView, historyPage } = JV;

async function download(app, env, version) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const res = await fetch(envPath(app, env) + '/snapshots/' + version + '/config',
    { headers: token ? { Authorization: 'Bearer ' + token } : {} });
  if (!res.ok) { toast('Download failed: HTTP ' + res.status); return; }
  const url = URL.createObjectURL(await res.blob());
  const a = h('a', { href: url, download: app + '-' + env + '-v' + version + '.json' });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

async function backupNow(app, env) {
  try {
    const r = await api('POST', envPath(app, env) + '/backup', { json: {} });
    toast(r.status === 201 ? 'Backed up as v' + r.data.version : 'Unchanged since v' + r.data.version + ': nothing written');
    historyPage(app, env);
  } catch (e) { toast('Backup failed: ' + e.message); }
}

async function upload(app, env) {
  await dialog('Upload a configuration to ' + app + '/' + env, (close) => {
    const file = h('input', { id: 'upload-file', type: 'file', accept: 'application/json,.json', required: true });
    const msg = h('input', { id: 'upload-message', type: 'text' });
    const out = h('div');
    return h('form', {
      onsubmit: async (ev) => {
        ev.preventDefault();
        const f = file.files[0];
        if (!f) return;
        try {
          const text = await f.text();
          const q = msg.value ? '?message=' + enc(msg.value) : '';
          const r = await api('POST', envPath(app, env) + '/snapshots' + q, { body: text });
          toast('Stored as v' + r.data.version);
          close(true);
          historyPage(app, env);
        } catch (e) { out.replaceChildren(errorBox(e)); }
      },
    }, h('label', {}, 'JSON file', file), h('label', {}, 'Message (optional)', msg), out,
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary dialog-cancel', onclick: () => close(null) }, 'Cancel'),
      h('button', { type: 'submit' }, 'Upload')));
  });
}

async function release(app, env, version) {
  // The pointer's ETag as it is now: the release is made over exactly this one.
  let etag = null;
  let current = null;
  try {
    const p = await api('GET', envPath(app, env) + '/release', { headers: { 'Cache-Control': 'no-cache' } });
    etag = p.etag;
    current = p.data;
  } catch (e) { if (e.status !== 404) { toast(e.message); return; } }
  await dialog('Release v' + version + ' of ' + app + '/' + env, (close) => {
    const label = h('input', { id: 'release-label', type: 'text', placeholder: 'default: the next number' });
    const notes = h('textarea', { id: 'release-notes', rows: 3 });
    const out = h('div');
    return h('form', {
      onsubmit: async (ev) => {
        ev.preventDefault();
        try {
          const headers = etag ? { 'If-Match': etag } : { 'If-None-Match': '*' };
          const r = await api('POST', envPath(app, env) + '/release', {
            headers, json: { version, label: label.value || undefined, notes: notes.value || undefined },
          });
          toast('Released v' + r.data.version + ' as ' + r.data.label);
          close(true);
          historyPage(app, env);
        } catch (e) {
          if (e.status === 412) {
            out.replaceChildren(h('p', { class: 'error', role: 'alert' },
              'Someone else released meanwhile, so nothing was changed. Close this, look at the current release and try again. (',
              e.message, ')'));
          } else out.replaceChildren(errorBox(e));
        }
      },
    },
    h('p', {}, current ? 'It replaces ' + current.label + ' (v' + current.version + ').' : 'It is the first release.'),
    h('label', {}, 'Label', label), h('label', {}, 'Notes', notes), out,
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary dialog-cancel', onclick: () => close(null) }, 'Cancel'),
      h('button', { type: 'submit', id: 'release-submit' }, 'Release')));
  });
}

async function rollback(app, env) {
  let etag = null;
  let current = null;
  try {
    const p = await api('GET', envPath(app, env) + '/release', { headers: { 'Cache-Control': 'no-cache' } });
    etag = p.etag;
    current = p.data;
  } catch (e) { toast(e.message); return; }
  await dialog('Roll back ' + app + '/' + env, (close) => {
    const out = h('div');
    return h('form', {
      onsubmit: async (ev) => {
        ev.preventDefault();
        try {
          const r = await api('POST', envPath(app, env) + '/rollback', { headers: { 'If-Match': etag }, json: {} });
          toast('Rolled back to v' + r.data.version + ' (' + r.data.label + ')');
          close(true);
          historyPage(app, env);
        } catch (e) { out.replaceChildren(errorBox(e)); }
      },
    }, h('p', {}, 'The current release is ' + current.label + ' (v' + current.version + '). Roll back to the one before it?'), out,
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary dialog-cancel', onclick: () => close(null) }, 'Cancel'),
      h('button', { type: 'submit', id: 'rollback-submit' }, 'Roll back')));
  });
}

async function restore(app, env, version) {
  const path = envPath(app, env) + '/restore';
  let plan;
  try {
    plan = (await api('POST', path, { json: { source: { version }, dry_run: true } })).data;
  } catch (e) { toast('Cannot plan the restore: ' + e.message); return; }
  await dialog('Restore v' + version + ' to ' + app + '/' + env + ' live', (close) => {
    const confirm = h('input', { id: 'restore-confirm', type: 'text', autocomplete: 'off' });
    const go = h('button', { type: 'submit', class: 'danger', id: 'restore-submit', disabled: true }, 'Restore');
    confirm.addEventListener('input', () => { go.disabled = confirm.value !== env; });
    const out = h('div', { id: 'restore-outcome' });
    const live = plan.live || {};
    const form = h('form', {
      onsubmit: async (ev) => {
        ev.preventDefault();
        if (confirm.value !== env) return;
        go.disabled = true;
        try {
          const r = (await api('POST', path, {
            json: { source: { version }, allow_missing_live: live.state === 'missing' },
          })).data;
          const undo = (r.undo || []).find((u) => u.action === 'restore');
          out.replaceChildren(h('p', { class: 'notice', role: 'status' },
            'Restored v' + r.restored.version + ' to ' + r.target + '; read back: ' + JSON.stringify(r.verified) + '.'),
          undo ? h('button', { type: 'button', class: 'secondary', id: 'restore-undo',
            onclick: () => { close(true); restore(app, env, undo.version); } }, 'Undo: restore v' + undo.version + ' (what was live before)') : null,
          h('button', { type: 'button', onclick: () => { close(true); historyPage(app, env); } }, 'Done'));
          const done = out.querySelector('button');
          if (done) done.focus();
        } catch (e) { out.replaceChildren(errorBox(e)); go.disabled = false; }
      },
    },
    h('p', {}, 'Live (' + plan.target + ') is ', live.state === 'present' ? 'present' : live.state + (live.reason ? ': ' + live.reason : ''),
      plan.already_live ? '; it already holds v' + version + '.' : '. What is live is saved as a snapshot first.'),
    plan.changes ? changesView(plan.changes, 'unified') : h('p', { class: 'muted' }, 'No diff against live (live is not readable JSON).'),
    h('label', { for: 'restore-confirm' }, 'Type the environment\'s name, ', h('code', {}, env), ', to confirm'), confirm,
    out,
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary dialog-cancel', onclick: () => close(null) }, 'Cancel'), go));
    return form;
  });
}

async function pin(app, env, version, on) {
  try {
    await api(on ? 'POST' : 'DELETE', envPath(app, env) + '/pins/' + version);
    toast((on ? 'Pinned v' : 'Unpinned v') + version + (on ? ': prune keeps it' : ': prune may delete it by the policy'));
    JV.reload();
  } catch (e) { toast((on ? 'Pinning' : 'Unpinning') + ' failed: ' + e.message); }
}

/** Copies a version of this environment into another of the same app, and optionally
 *  releases it there over the target pointer's current ETag. */
async function promote(app, from, version) {
  let others = [];
  try {
    const r = await api('GET', '/v1/envs?app=' + enc(app));
    others = r.data.envs.map((e) => e.env).filter((e) => e !== from);
  } catch (e) { toast(e.message); return; }
  if (!others.length) { toast(app + ' has no other environment to promote to'); return; }
  await dialog('Promote from ' + app + '/' + from, (close) => {
    const to = h('select', { id: 'promote-to' }, others.map((e) => h('option', { value: e }, e)));
    const ver = h('input', { id: 'promote-version', type: 'number', min: 1, required: true });
    if (version) ver.value = String(version);
    const rel = h('input', { id: 'promote-release', type: 'checkbox' });
    const label = h('input', { id: 'promote-label', type: 'text', placeholder: 'default: the next number' });
    const notes = h('textarea', { id: 'promote-notes', rows: 2 });
    const out = h('div', { id: 'promote-outcome' });
    return h('form', {
      onsubmit: async (ev) => {
        ev.preventDefault();
        const target = to.value;
        const headers = {};
        if (rel.checked) {
          // Released over the target's pointer as it is now: a release made meanwhile
          // is a conflict, never overwritten.
          try {
            const p = await api('GET', envPath(app, target) + '/release', { headers: { 'Cache-Control': 'no-cache' } });
            headers['If-Match'] = p.etag;
          } catch (e) { if (e.status !== 404) { out.replaceChildren(errorBox(e)); return; } }
        }
        try {
          const r = await api('POST', '/v1/apps/' + enc(app) + '/promote', {
            headers,
            json: {
              from, to: target, version: { version: Number(ver.value) }, release: rel.checked,
              label: rel.checked && label.value ? label.value : undefined,
              notes: rel.checked && notes.value ? notes.value : undefined,
            },
          });
          const snap = r.data.snapshot;
          const what = (snap.outcome === 'created' ? 'Copied as v' : 'Unchanged: ' + target + ' already has it as v') + snap.version;
          const released = r.data.release ? '; released as ' + r.data.release.release.label : '';
          toast('Promoted v' + r.data.source.version + ' to ' + target + '. ' + what + released);
          close(true);
          location.hash = '#/e/' + enc(app) + '/' + enc(target);
        } catch (e) {
          if (e.status === 412) {
            out.replaceChildren(h('p', { class: 'error', role: 'alert' },
              'Someone else released in ' + target + ' meanwhile, so nothing was released. (', e.message, ')'));
          } else out.replaceChildren(errorBox(e));
        }
      },
    },
    h('label', {}, 'To environment', to), h('label', {}, 'Version of ' + from, ver),
    h('label', { class: 'check' }, rel, ' Also release it there'),
    h('label', {}, 'Release label', label), h('label', {}, 'Release notes', notes), out,
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary dialog-cancel', onclick: () => close(null) }, 'Cancel'),
      h('button', { type: 'submit', id: 'promote-submit' }, 'Promote')));
  });
}

Object.assign(JV, { download, backupNow, upload, release, rollback, restore, pin, promote });
})();
