/* pier dashboard: one page, routed on the client (/, /pipelines/NAME,
   /runs/ID), fed by the JSON API (docs/api.md). Every text from the
   server goes in with textContent (the h() helper makes text nodes),
   never as HTML. */
'use strict';

const app = document.getElementById('app');
const live = document.getElementById('live');
let timer = null;       /* the view's refresh */
let logSource = null;   /* the run log's EventSource */
let logPoll = null;     /* or its polling timer */
let viewToken = 0;      /* bumps on navigation; stale refreshes stop */

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const k of kids.flat()) {
    if (k === null || k === undefined || k === false) continue;
    el.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return el;
}

async function api(path, opts) {
  const res = await fetch('/api/' + path, Object.assign({ credentials: 'same-origin', cache: 'no-store' }, opts || {}));
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  if (!res.ok) throw new Error((body && body.error) || (res.status + ' ' + res.statusText));
  return body;
}

function status(s) {
  const word = { InProgress: 'In progress', NotRun: 'Not run' }[s] || s || 'Unknown';
  return h('span', { class: 'status s-' + (s || 'NotRun'), 'data-status': s || '' }, word);
}
function localTime(ms) { return ms ? new Date(ms).toLocaleString() : '–'; }
function age(ms) {
  if (!ms) return '';
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 60) return Math.round(s) + ' s ago';
  if (s < 3600) return Math.round(s / 60) + ' min ago';
  if (s < 86400) return Math.round(s / 3600) + ' h ago';
  return Math.round(s / 86400) + ' d ago';
}
function dur(ms) {
  if (ms === null || ms === undefined) return '';
  if (ms < 1000) return ms + ' ms';
  if (ms < 60000) return (ms / 1000).toFixed(1) + ' s';
  return Math.floor(ms / 60000) + ' min ' + Math.round((ms % 60000) / 1000) + ' s';
}
function short(sha) { return sha ? sha.slice(0, 7) : ''; }
function bytes(n) {
  if (n < 1024) return n + ' B';
  if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
  return (n / 1048576).toFixed(1) + ' MiB';
}
function link(href, ...kids) {
  return h('a', { href, onclick: (ev) => { if (ev.metaKey || ev.ctrlKey) return; ev.preventDefault(); go(href); } }, ...kids);
}
function range(r) {
  const to = h('code', { class: 'sha', title: r.to_commit || '' }, short(r.to_commit) || '?');
  if (!r.from_commit) return h('span', {}, to);
  return h('span', {}, h('code', { class: 'sha', title: r.from_commit }, short(r.from_commit)), ' → ', to);
}
function running(s) { return s === 'InProgress' || s === 'Queued'; }

async function act(what, path, question) {
  if (!window.confirm(question)) return;
  try {
    const r = await api(path, { method: 'POST' });
    go('/runs/' + r.id);
  } catch (e) {
    showError(what + ': ' + e.message);
  }
}
function showError(msg) {
  const old = document.getElementById('error');
  if (old) old.remove();
  app.prepend(h('div', { id: 'error', class: 'notice error', role: 'alert' }, msg));
}

/* ---- views ---- */

function pipelineCard(p) {
  const d = p.last_deployed;
  const lr = p.latest_run;
  return h('section', { class: 'card pipeline', 'data-pipeline': p.name },
    h('h2', {}, link('/pipelines/' + p.name, p.name)),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Branch'), h('dd', {}, h('code', {}, p.branch || '?')),
      h('dt', {}, 'Watches'), h('dd', {}, p.paths.length ? p.paths.join(', ') : 'every path',
        p.exclude.length ? ' (except ' + p.exclude.join(', ') + ')' : ''),
      h('dt', {}, 'Deployed'), h('dd', { class: 'deployed' }, d
        ? [h('code', { class: 'sha', title: d.sha }, d.short_sha || short(d.sha)), ' ',
           d.message || '', d.author ? ' — ' + d.author : '', d.time_ms ? ', ' + age(d.time_ms) : '']
        : h('span', { class: 'muted' }, 'nothing yet')),
      h('dt', {}, 'Site'), h('dd', {}, p.site_url ? h('a', { href: p.site_url, class: 'site', target: '_blank', rel: 'noopener' }, p.site_url) : h('span', { class: 'muted' }, 'no edge')),
      h('dt', {}, 'Latest run'), h('dd', { class: 'latest' }, lr
        ? [link('/runs/' + lr.id, '#' + lr.id), ' ', status(lr.status), ' ', h('span', { class: 'muted' }, lr.trigger + ', ' + age(lr.created_ms)),
           lr.reason ? h('span', { class: 'reason' }, lr.reason) : null]
        : h('span', { class: 'muted' }, 'no runs yet'))),
    h('div', { class: 'actions' },
      h('button', { class: 'primary', 'data-action': 'run-now', onclick: () => act('Run now', 'pipelines/' + p.name + '/runs', 'Start a run of ' + p.name + ' now?') }, 'Run now')));
}

async function viewPipelines(tok) {
  const doc = await api('pipelines');
  if (tok !== viewToken) return;
  document.title = 'pier — pipelines';
  app.replaceChildren(h('h1', {}, 'Pipelines'),
    doc.pipelines.length ? h('div', { class: 'cards' }, doc.pipelines.map(pipelineCard)) : h('p', { class: 'muted' }, 'No pipelines in pier.yml.'));
}

function runRow(r) {
  return h('tr', { 'data-run': r.id },
    h('td', {}, link('/runs/' + r.id, '#' + r.id)),
    h('td', {}, status(r.status), r.reason ? h('span', { class: 'reason' }, r.reason) : null),
    h('td', {}, r.trigger),
    h('td', {}, range(r)),
    h('td', {}, localTime(r.created_ms)),
    h('td', {}, dur(r.duration_ms)));
}

async function viewPipeline(tok, name, before) {
  const q = 'limit=20' + (before ? '&before=' + before : '');
  const [p, page] = await Promise.all([api('pipelines/' + encodeURIComponent(name)), api('pipelines/' + encodeURIComponent(name) + '/runs?' + q)]);
  if (tok !== viewToken) return;
  document.title = 'pier — ' + p.name;
  app.replaceChildren(
    h('h1', {}, 'Pipeline ', p.name),
    pipelineCard(p),
    h('h2', {}, 'Runs'),
    page.runs.length ? h('table', { class: 'runs' },
      h('thead', {}, h('tr', {}, ['Run', 'Status', 'Trigger', 'Commits', 'Started', 'Duration'].map((t) => h('th', {}, t)))),
      h('tbody', {}, page.runs.map(runRow))) : h('p', { class: 'muted' }, 'No runs yet.'),
    h('div', { class: 'pager' },
      before ? link('/pipelines/' + name, 'Newest') : null, ' ',
      page.next_before ? link('/pipelines/' + name + '?before=' + page.next_before, 'Older runs →') : null));
}

function stageItem(s) {
  return h('li', { 'data-stage': s.name, 'data-status': s.status },
    h('span', { class: 'name' }, s.name), status(s.status),
    s.started_ms ? h('span', { class: 'when' }, localTime(s.started_ms), s.duration_ms !== null ? ' · ' + dur(s.duration_ms) : '') : null,
    s.message ? h('span', { class: 'msg' }, s.message) : null);
}

function runDetails(r) {
  const c = r.commit;
  const busy = running(r.status);
  const canRedeploy = !busy && r.to_commit && (r.status === 'Succeeded' || r.status === 'Skipped');
  const files = r.changed_files || [];
  return [
    h('h1', {}, 'Run #' + r.id + ' of ', link('/pipelines/' + r.pipeline, r.pipeline), ' ', h('span', { id: 'run-status' }, status(r.status))),
    r.reason ? h('p', { class: 'reason', id: 'run-reason' }, r.reason) : null,
    h('div', { class: 'card' },
      h('dl', { class: 'facts' },
        h('dt', {}, 'Trigger'), h('dd', { id: 'run-trigger' }, r.trigger),
        h('dt', {}, 'Commits'), h('dd', {}, range(r), c ? [' ', c.message, c.author ? ' — ' + c.author : ''] : ''),
        h('dt', {}, 'Started'), h('dd', {}, localTime(r.started_ms || r.created_ms)),
        h('dt', {}, 'Duration'), h('dd', {}, busy ? 'running…' : dur(r.duration_ms))),
      h('div', { class: 'actions' },
        h('button', { 'data-action': 'retry', disabled: busy, onclick: () => act('Retry', 'runs/' + r.id + '/retry', 'Retry run #' + r.id + ' (commit ' + (short(r.to_commit) || 'tip') + ')?') }, 'Retry this run'),
        h('button', { 'data-action': 'redeploy', disabled: !canRedeploy, onclick: () => act('Redeploy', 'runs/' + r.id + '/redeploy', 'Redeploy commit ' + short(r.to_commit) + ' to ' + r.pipeline + '? The site goes back to this commit.') }, 'Redeploy this commit'))),
    h('ol', { class: 'flow', id: 'stages' }, r.stages.map(stageItem)),
    h('div', { class: 'grid2' },
      h('section', { class: 'card' }, h('h2', {}, 'Changed files (' + files.length + ')'),
        files.length ? h('ul', { class: 'files', id: 'changed-files' }, files.slice(0, 200).map((f) => h('li', {}, h('code', {}, f.path), ' ', h('span', { class: 'muted' }, f.status)))) : h('p', { class: 'muted' }, 'none that the pipeline watches')),
      h('section', { class: 'card' }, h('h2', {}, 'Deploy'),
        r.deploy ? h('dl', { class: 'facts', id: 'deploy' },
          h('dt', {}, 'Uploaded'), h('dd', {}, r.deploy.uploaded + ' (' + bytes(r.deploy.bytes) + ')'),
          h('dt', {}, 'Unchanged'), h('dd', {}, String(r.deploy.skipped)),
          h('dt', {}, 'Deleted'), h('dd', {}, String(r.deploy.deleted))) : h('p', { class: 'muted' }, 'no deploy'),
        h('h2', {}, 'Invalidation'),
        r.invalidation ? h('dl', { class: 'facts', id: 'invalidation' },
          h('dt', {}, 'Id'), h('dd', {}, h('code', {}, r.invalidation.id || '–')),
          h('dt', {}, 'Paths'), h('dd', {}, r.invalidation.paths.join(' '))) : h('p', { class: 'muted' }, 'none'))),
  ];
}

function stopLog() {
  if (logSource) { logSource.close(); logSource = null; }
  if (logPoll) { clearTimeout(logPoll); logPoll = null; }
}

function startLog(id, pre) {
  stopLog();
  let offset = 0;
  let failures = 0;
  const append = (text) => {
    const stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 20;
    pre.append(document.createTextNode(text));
    if (stick) pre.scrollTop = pre.scrollHeight;
  };
  const poll = async () => {
    try {
      const r = await api('runs/' + id + '/log?offset=' + offset);
      if (r.text) append(r.text);
      offset = r.next_offset;
      if (r.done && !r.text) { pre.dataset.done = '1'; return; }
    } catch (e) { /* retried below */ }
    logPoll = setTimeout(poll, 700);
  };
  if (!window.EventSource) { poll(); return; }
  logSource = new EventSource('/api/runs/' + id + '/log/stream?offset=0');
  logSource.onmessage = (ev) => {
    failures = 0;
    append(ev.data + '\n');
    offset = Number(ev.lastEventId) || offset;
  };
  logSource.addEventListener('end', () => { pre.dataset.done = '1'; stopLog(); });
  logSource.onerror = () => {
    if (logSource && logSource.readyState === EventSource.CLOSED) failures = 3;
    if (++failures >= 3) { stopLog(); poll(); } /* polling fallback */
  };
}

let shownRun = null;
async function viewRun(tok, id) {
  const r = await api('runs/' + id);
  if (tok !== viewToken) return;
  document.title = 'pier — run ' + r.id + ' (' + r.status + ')';
  let pre = document.getElementById('log');
  if (shownRun !== id || !pre) {
    pre = h('pre', { class: 'log', id: 'log', 'aria-label': 'build log' });
    shownRun = id;
    app.replaceChildren(h('div', { id: 'run' }), h('h2', {}, 'Log'), pre);
    startLog(id, pre);
  }
  const err = document.getElementById('error');
  document.getElementById('run').replaceChildren(...runDetails(r).filter(Boolean));
  if (err) app.prepend(err);
  return running(r.status);
}

/* ---- routing and refresh ---- */

async function render() {
  const tok = ++viewToken;
  clearTimeout(timer);
  const path = location.pathname;
  const params = new URLSearchParams(location.search);
  let m;
  const refresh = async () => {
    try {
      if ((m = path.match(/^\/runs\/(\d+)$/))) await viewRun(tok, Number(m[1]));
      else { shownRun = null; stopLog(); }
      if ((m = path.match(/^\/pipelines\/([a-z0-9-]+)$/))) await viewPipeline(tok, m[1], params.get('before'));
      else if (path === '/' || path === '/index.html') await viewPipelines(tok);
      else if (!path.startsWith('/runs/')) app.replaceChildren(h('h1', {}, 'Not found'), link('/', 'Pipelines'));
      live.textContent = 'updated ' + new Date().toLocaleTimeString();
    } catch (e) {
      showError(e.message);
    }
    if (tok === viewToken) timer = setTimeout(refresh, 1000);
  };
  await refresh();
}

function go(href) {
  history.pushState(null, '', href);
  render();
}
window.addEventListener('popstate', render);
render();
