// Drives the dashboard of a running `pier up` in headless Chromium (see
// test_dashboard_e2e.sh for the setup). Env: DASH (dashboard URL), EDGE
// (edge URL), REPO (the example's work tree), ARTIFACTS, CHROMIUM.
'use strict';
const { chromium } = require('playwright-core');
const { execFileSync } = require('child_process');
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');

const { DASH, EDGE, REPO, ARTIFACTS } = process.env;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

function fail(msg) { throw new Error(msg); }
function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }
async function waitFor(what, fn, timeoutMs = 60000, stepMs = 100) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) fail('timed out waiting for ' + what);
    await sleep(stepMs);
  }
}
function git(...args) { return execFileSync('git', args, { cwd: REPO, encoding: 'utf8' }); }
function commit(file, from, to, msg) {
  const p = path.join(REPO, file);
  fs.writeFileSync(p, fs.readFileSync(p, 'utf8').replace(from, to));
  git('commit', '-qam', msg);
}
function appendCommit(file, text, msg) {
  fs.appendFileSync(path.join(REPO, file), text);
  git('commit', '-qam', msg);
}
async function api(p) {
  const r = await fetch(DASH + 'api/' + p);
  if (!r.ok) fail('GET /api/' + p + ': ' + r.status);
  return r.json();
}
function edgeGet(urlPath) { // through the edge with the site's Host
  const u = new URL(EDGE);
  return new Promise((resolve, reject) => {
    http.get({ host: u.hostname, port: u.port, path: urlPath, headers: { Host: 'web-dev.localhost' } }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    }).on('error', reject);
  });
}
async function latestDev() { return (await api('pipelines/dev')).latest_run; }

(async () => {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'chromium-profile-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = ctx.pages()[0] || await ctx.newPage();
  const dialogs = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); d.accept(); });
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.setDefaultTimeout(60000);
  try {
    // 1. The pipelines page: the first deploy of dev ends Succeeded.
    await page.goto(DASH);
    const card = page.locator('[data-pipeline="dev"]');
    await card.locator('.latest .status[data-status="Succeeded"]').waitFor();
    const first = await latestDev();
    const cardText = await card.innerText();
    for (const want of ['develop', 'frontend/**', 'web-dev.localhost', 'slow build']) {
      if (!cardText.includes(want)) fail('pipeline card lacks ' + want + ': ' + cardText);
    }
    const siteHref = await card.locator('a.site').getAttribute('href');
    if (!/^http:\/\/web-dev\.localhost:\d+\/$/.test(siteHref)) fail('site link ' + siteHref);
    console.log('ok: pipelines page shows dev (branch, paths, deployed commit, site, latest run ' + first.id + ')');

    // 2. A frontend push: the run appears, stages go in order, log streams.
    await page.locator('[data-pipeline="dev"] h2 a').click();
    await page.waitForURL(/\/pipelines\/dev$/);
    commit('frontend/src/index.html', 'version 1', 'version 2', 'frontend: version 2');
    const row = await waitFor('the run of the frontend push on the pipeline page', async () => {
      const ids = await page.locator('tr[data-run]').evaluateAll((trs) => trs.map((t) => Number(t.dataset.run)));
      return ids.find((id) => id > first.id);
    });
    await page.locator(`tr[data-run="${row}"] a`).first().click();
    await page.waitForURL(new RegExp('/runs/' + row + '$'));
    const firstSeen = {};  // stage -> sample index when seen Succeeded
    const seenInProgress = new Set();
    let logWhileBuilding = '';
    let n = 0;
    await waitFor('run ' + row + ' to end', async () => {
      const s = await page.evaluate(() => ({
        run: document.querySelector('#run-status .status')?.dataset.status,
        stages: Object.fromEntries([...document.querySelectorAll('#stages li')].map((li) => [li.dataset.stage, li.dataset.status])),
        log: document.getElementById('log')?.textContent || '',
      }));
      n++;
      for (const [name, st] of Object.entries(s.stages)) {
        if (st === 'InProgress') seenInProgress.add(name);
        if (st === 'Succeeded' && !(name in firstSeen)) firstSeen[name] = n;
      }
      // a partial log: the first step's line is in, the next (3 s later) not yet
      if (s.stages.build === 'InProgress' && s.log.includes('slow-step-1') && !s.log.includes('slow-step-2')) logWhileBuilding = s.log;
      return s.run && s.run !== 'InProgress' && s.run !== 'Queued' ? s : null;
    }, 60000, 100).then((s) => { if (s.run !== 'Succeeded') fail('frontend run ' + row + ': ' + s.run); });
    if (!seenInProgress.has('build')) fail('never saw the build stage In progress');
    const order = ['source', 'build', 'deploy', 'invalidate'];
    for (let i = 0; i < order.length; i++) {
      if (!(order[i] in firstSeen)) fail('stage ' + order[i] + ' never Succeeded');
      if (i > 0 && firstSeen[order[i]] < firstSeen[order[i - 1]]) fail('stages out of order: ' + JSON.stringify(firstSeen));
    }
    if (!logWhileBuilding) fail('no log line streamed while the build ran');
    await page.locator('#log').filter({ hasText: 'run succeeded' }).waitFor();
    const esc = await page.evaluate(() => ({
      text: document.getElementById('log').textContent.includes('<script>window.pwned=1</script><b>not-bold</b>'),
      elements: document.querySelectorAll('#log *').length, pwned: window.pwned }));
    if (!esc.text || esc.elements !== 0 || esc.pwned !== undefined) fail('the log is not shown as text: ' + JSON.stringify(esc));
    await page.locator('#changed-files').filter({ hasText: 'frontend/src/index.html' }).waitFor();
    await page.locator('#deploy').waitFor();
    await page.locator('#invalidation').filter({ hasText: '/index.html' }).waitFor();
    const site = await edgeGet('/');
    if (!site.body.includes('version 2')) fail('the edge does not serve version 2: ' + site.body.slice(0, 200));
    console.log('ok: run ' + row + ' appeared, stages ' + order.join(' -> ') + ' succeeded in order, log streamed during the build, edge serves version 2');
    await page.screenshot({ path: path.join(ARTIFACTS, 'run-desktop.png'), fullPage: true });
    await page.setViewportSize({ width: 375, height: 812 });
    await sleep(300);
    await page.screenshot({ path: path.join(ARTIFACTS, 'run-phone.png'), fullPage: true });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 2) fail('the run page scrolls sideways at 375 px (' + overflow + ' px)');
    await page.setViewportSize({ width: 1280, height: 800 });
    console.log('ok: screenshots ' + path.join(ARTIFACTS, 'run-desktop.png') + ' and run-phone.png (no sideways scroll at 375 px)');

    // 3. A backend-only push: Skipped with its reason.
    appendCommit('backend/README.md', '\nmore\n', 'backend only');
    const skipped = await waitFor('the backend-only run', async () => {
      const r = await latestDev();
      return r.id > row && r.status !== 'InProgress' && r.status !== 'Queued' ? r : null;
    });
    await page.goto(DASH + 'runs/' + skipped.id);
    await page.locator('#run-status .status[data-status="Skipped"]').waitFor();
    const reason = await page.locator('#run-reason').innerText();
    if (!/frontend/.test(reason)) fail('skip reason does not name the paths: ' + reason);
    if (await page.locator('#stages li[data-stage="build"]').getAttribute('data-status') !== 'NotRun') fail('a skipped run built');
    console.log('ok: backend-only push Skipped: ' + reason);

    // 4. A failing build: Failed on the build stage, the command's output in the log.
    commit('frontend/build.sh', 'set -eu\n', 'set -eu\necho BROKEN-BUILD-MARKER >&2; exit 3\n', 'broken build');
    const broken = await waitFor('the broken run', async () => {
      const r = await latestDev();
      return r.id > skipped.id ? r : null;
    });
    await page.goto(DASH + 'runs/' + broken.id);
    await page.locator('#run-status .status[data-status="Failed"]').waitFor();
    await page.locator('#stages li[data-stage="build"][data-status="Failed"]').waitFor();
    await page.locator('#log').filter({ hasText: 'BROKEN-BUILD-MARKER' }).waitFor();
    if ((await edgeGet('/')).body.includes('version 2') !== true) fail('a failed build changed the site');
    console.log('ok: failing build shows Failed on the build stage with its output');

    // 5. Redeploy the first run: version 1 back on the edge.
    await page.goto(DASH + 'runs/' + first.id);
    await page.locator('#run-status .status[data-status="Succeeded"]').waitFor();
    await page.locator('button[data-action="redeploy"]').click();
    await waitFor('the redeploy run page', async () => {
      const m = page.url().match(/\/runs\/(\d+)$/);
      return m && Number(m[1]) > broken.id;
    });
    if (!dialogs.some((d) => d.includes('Redeploy'))) fail('no confirmation for Redeploy');
    // The page routes on the client: wait until it shows the new run (its
    // trigger) before reading its status, or the old run's "Succeeded"
    // still on screen would pass at once.
    await page.locator('#run-trigger').filter({ hasText: 'redeploy' }).waitFor();
    await page.locator('#run-status .status[data-status="Succeeded"]').waitFor();
    const back = await edgeGet('/');
    if (!back.body.includes('version 1')) fail('redeploy did not bring version 1 back: ' + back.body.slice(0, 200));
    console.log('ok: Redeploy of run ' + first.id + ' put version 1 back on the edge');

    // 6. Run now from the pipelines page (nothing changed: Skipped).
    await page.goto(DASH);
    const before = (await latestDev()).id;
    await page.locator('[data-pipeline="dev"] button[data-action="run-now"]').click();
    await waitFor('the run-now run page', async () => {
      const m = page.url().match(/\/runs\/(\d+)$/);
      return m && Number(m[1]) > before;
    });
    await page.locator('#run-trigger').filter({ hasText: 'manual' }).waitFor();
    await page.locator('#run-status .status:not([data-status="InProgress"]):not([data-status="Queued"])').waitFor();
    console.log('ok: Run now started run ' + page.url().split('/').pop() + ' (' + await page.locator('#run-status').innerText() + ')');
    if (pageErrors.length) fail('page errors: ' + pageErrors.join('; '));
  } catch (e) {
    try { await page.screenshot({ path: path.join(ARTIFACTS, 'failure.png'), fullPage: true }); } catch (e2) { /* ignore */ }
    console.error('FAIL: ' + e.message + ' (page ' + page.url() + ')');
    process.exitCode = 1;
  } finally {
    await ctx.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
})();
