// Drives Debian's headless Chromium (through playwright-core, which downloads no browser) over a
// running `granary ui`, page by page: waits for each page to render, takes a screenshot, and
// prints a JSON report of what the page shows (the numbers its charts hold, the flagged views,
// search results, console errors) for tests/test_console.py to check against the repository.
//
//   node console_check.mjs <mode> <console url> <screenshot folder>
//   mode: "pages"  every page, with no token
//         "overview"  the first screen only (what it says of the feature server)
//         "token"  a console started with --token: the page asks for it (TOKEN in the
//                  environment is typed in), then shows the registry
// Chromium: $CHROMIUM or /usr/bin/chromium. With $DOCS_DIR set, each page's first screen (the
// viewport, not the whole page) is also saved there: docs/console/*.png come from
// `DOCS_DIR=$PWD/docs/console pytest tests/test_console.py`. Exits 0 after printing the report; 1 on a
// crash of the script itself (the report then is not printed).
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [mode, base, outDir] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const TIMEOUT = 30000;

fs.mkdirSync(outDir, { recursive: true });
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const report = { mode, console_errors: [], failed_requests: [], pages: {} };
const page = context.pages()[0] || (await context.newPage());
page.setDefaultTimeout(TIMEOUT);
page.on('console', (msg) => {
  if (msg.type() === 'error') report.console_errors.push(msg.text());
});
page.on('pageerror', (err) => report.console_errors.push(`page error: ${err.message}`));
page.on('requestfailed', (req) => report.failed_requests.push(`${req.url()}: ${req.failure()?.errorText}`));
// Every request the page makes must stay on the console's own origin (no CDN).
const origins = new Set();
page.on('request', (req) => origins.add(new URL(req.url()).origin));

async function charts() {
  return page.$$eval('figure.chart', (figs) => Object.fromEntries(figs.map((f) => [
    f.dataset.chart,
    { x: JSON.parse(f.dataset.x), series: JSON.parse(f.dataset.series),
      drawn: f.querySelector('canvas') !== null },
  ])));
}

async function visit(name, hash, readySelector) {
  await page.goto(`${base}/#/${hash}`);
  await page.waitForSelector(readySelector);
  // Charts draw after the data arrives: wait for every figure's canvas.
  await page.waitForFunction(() => [...document.querySelectorAll('figure.chart')]
    .every((f) => f.querySelector('canvas')));
  await page.screenshot({ path: path.join(outDir, `${name}.png`), fullPage: true });
  if (process.env.DOCS_DIR) {
    await page.screenshot({ path: path.join(process.env.DOCS_DIR, `${name}.png`) });
  }
  const text = await page.$eval('main', (m) => m.innerText);
  return { text, charts: await charts() };
}

try {
  if (mode === 'pages') {
    const overview = await visit('overview', 'overview', '.freshness-table');
    overview.stale_views = await page.$eval('.stale-alert', (e) => e.dataset.staleViews).catch(() => null);
    overview.stale_rows = await page.$$eval('tr.is-stale', (rows) => rows.map((r) => r.dataset.view));
    overview.health = await page.$eval('[data-health]', (e) => e.dataset.health).catch(() => null);
    report.pages.overview = overview;

    const registry = await visit('registry', 'registry', '[data-page-body=registry] ul.objects');
    registry.objects = await page.$$eval('ul.objects li', (lis) => lis.map((l) => l.dataset.object));
    report.pages.registry = registry;

    const view = await visit('feature_view', 'registry/feature_view/customer_payments_stats', '.detail');
    view.features = await page.$$eval('[data-feature]', (rows) => rows.map((r) => r.dataset.feature));
    report.pages.feature_view = view;

    const lineage = await visit('lineage', 'lineage', 'svg.lineage');
    lineage.nodes = await page.$$eval('[data-node]', (n) => n.map((e) => e.dataset.node));
    lineage.edges = await page.$$eval('[data-edge]', (n) => n.map((e) => e.dataset.edge));
    report.pages.lineage = lineage;

    const history = await visit('history', 'history', '.version');
    history.versions = await page.$$eval('.version', (vs) => vs.map((v) => ({
      version: Number(v.dataset.version),
      changes: [...v.querySelectorAll('li.change')].map((li) => li.innerText.trim()),
    })));
    report.pages.history = history;

    const freshness = await visit('freshness', 'freshness', '.view-card');
    freshness.cards = await page.$$eval('.view-card', (cs) => cs.map((c) => ({
      view: c.dataset.view, stale: c.dataset.stale === 'true',
      badge: c.querySelector('h2 .badge')?.innerText,
      last_push: c.querySelector('.last-push')?.innerText ?? null,
    })));
    report.pages.freshness = freshness;

    const serving = await visit('serving', 'serving', '[data-total-requests]');
    serving.total_requests = Number(await page.$eval('[data-total-requests]', (e) => e.dataset.totalRequests));
    report.pages.serving = serving;

    const data = await visit('data', 'data/customer_payments_stats', '.stats');
    data.rows = Number(await page.$eval('.stats', (e) => e.dataset.rows));
    data.features = await page.$$eval('.feature-card', (cards) => Object.fromEntries(cards.map((c) => [
      c.dataset.feature,
      Object.fromEntries([...c.querySelectorAll('[data-stat]')].map((d) => [d.dataset.stat, d.innerText])),
    ])));
    data.online_rows = await page.$$eval('.online-sample tbody tr', (rows) => rows.map(
      (r) => [...r.querySelectorAll('td')].map((td) => td.innerText.trim())));
    data.online_header = await page.$$eval('.online-sample thead th', (ths) => ths.map((t) => t.innerText));
    report.pages.data = data;

    // Search from the header's box, as a person types.
    await page.goto(`${base}/#/overview`);
    await page.waitForSelector('.freshness-table');
    await page.fill('input.search', 'failure_rate_90');
    await page.waitForSelector('.search-results li');
    await page.screenshot({ path: path.join(outDir, 'search.png'), fullPage: true });
    const results = await page.$$eval('.search-results li', (lis) => lis.map((l) => l.dataset.result));
    await page.click('.search-results li a');
    await page.waitForSelector('.detail');
    report.pages.search = { results, opened: await page.$eval('.detail', (d) => d.dataset.object) };
  } else if (mode === 'overview') {
    // The first screen only: what it says of the feature server.
    await page.goto(`${base}/#/overview`);
    await page.waitForSelector('[data-health]');
    await page.screenshot({ path: path.join(outDir, 'overview-health.png'), fullPage: true });
    report.pages.overview = {
      health: await page.$eval('[data-health]', (e) => e.dataset.health),
      serving: await page.$eval('[data-health]', (e) => e.parentElement.innerText),
    };
  } else if (mode === 'token') {
    await page.goto(`${base}/#/registry`);
    await page.waitForSelector('form.token');
    await page.screenshot({ path: path.join(outDir, 'token.png'), fullPage: true });
    report.pages.token_form = await page.$eval('form.token', (f) => f.innerText);
    await page.fill('form.token input', process.env.TOKEN || '');
    await page.click('form.token button');
    await page.waitForSelector('[data-page-body=registry] ul.objects');
    report.pages.registry_after_token = await page.$$eval('ul.objects li', (lis) => lis.length);
  } else {
    throw new Error(`unknown mode ${mode}: use pages, overview or token`);
  }
  report.origins = [...origins];
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
process.stdout.write(`${JSON.stringify(report)}\n`);
