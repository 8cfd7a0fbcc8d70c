'use strict';
// Drives the admin interface in headless Chromium (Debian's, through playwright-core) while a
// real centrifuge-js client is connected, and prints one JSON line with what it observed;
// tests/browser/test_admin_ui.py asserts on it. Screenshots of every page go to --artifacts.
//
// Arguments: --admin-url --api-url --api-key --ws-url --token --user --password --channel
//            --chromium --artifacts --secrets (comma-separated strings the pages must never show)

const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');
const { Centrifuge } = require('centrifuge');
const WebSocket = require('ws');

const WAIT_MS = 10000;

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || argv[i + 1] === undefined) {
      throw new Error(`bad argument ${argv[i]}`);
    }
    args[argv[i].slice(2)] = argv[i + 1];
  }
  return args;
}

function waitFor(predicate, what, ms = WAIT_MS) {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + ms;
    const poll = () => {
      if (predicate()) {
        resolve();
      } else if (Date.now() > deadline) {
        reject(new Error(`timed out waiting for ${what}`));
      } else {
        setTimeout(poll, 20);
      }
    };
    poll();
  });
}

/** Connect the SDK client and subscribe it; resolves once subscribed. */
async function connectSdk(args, record) {
  const client = new Centrifuge(args['ws-url'], {
    websocket: WebSocket,
    token: args.token,
    minReconnectDelay: 100,
    maxReconnectDelay: 500,
  });
  client.on('connected', (ctx) => { record.sdkClientId = ctx.client; });
  client.on('disconnected', (ctx) => record.sdkDisconnected.push({ code: ctx.code, reason: ctx.reason }));
  const sub = client.newSubscription(args.channel);
  sub.on('publication', (ctx) => record.sdkPublications.push(ctx.data));
  const subscribed = new Promise((resolve) => sub.once('subscribed', resolve));
  sub.subscribe();
  client.connect();
  await subscribed;
  return client;
}

async function main(args, result) {
  result.sdkDisconnected = [];
  result.sdkPublications = [];
  result.consoleErrors = [];
  result.screenshots = [];
  fs.mkdirSync(args.artifacts, { recursive: true });
  const secrets = args.secrets.split(',').filter(Boolean);

  const sdk = await connectSdk(args, result);
  const browser = await chromium.launch({
    executablePath: args.chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    page.on('console', (msg) => {
      // Chromium also logs every non-2xx answer ("Failed to load resource"); the scenario
      // provokes 400/401 on purpose, so only script errors and CSP violations count.
      if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) {
        result.consoleErrors.push(msg.text());
      }
    });
    page.on('pageerror', (err) => result.consoleErrors.push(String(err)));
    page.on('dialog', (dialog) => dialog.accept());
    const byId = (id) => page.locator(`[data-testid="${id}"]`);
    const shot = async (name) => {
      const file = path.join(args.artifacts, `${name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      result.screenshots.push(file);
    };
    const pageSecrets = async () => {
      const html = await page.content();
      return secrets.filter((secret) => html.includes(secret));
    };

    // ---- login: a wrong password is refused, the right one opens the status page
    await page.goto(args['admin-url']);
    await byId('login').waitFor();
    await shot('01-login');
    await byId('login-password').fill('not-the-password');
    await byId('login-submit').click();
    await page.waitForFunction(() => {
      const el = document.querySelector('[data-testid="login-error"]');
      return el && el.textContent.trim() !== '';
    });
    result.wrongPasswordMessage = (await byId('login-error').textContent()).trim();
    result.tokenAfterWrongPassword = await page.evaluate(() => localStorage.getItem('centrifugo-fast-admin-token'));
    await shot('02-login-wrong-password');

    await byId('login-password').fill(args.password);
    await byId('login-submit').click();
    await byId('node-row').first().waitFor();
    await page.waitForFunction(() => {
      const cell = document.querySelector('[data-testid="node-clients"]');
      return cell && cell.textContent.trim() === '1';
    });
    result.nodeNames = await byId('node-name').allTextContents();
    result.nodeClients = await byId('node-clients').allTextContents();
    result.statusSecrets = await pageSecrets();
    await shot('03-status');

    // ---- channels: the SDK client's channel is listed with its subscriber; the filter works
    await byId('nav-channels').click();
    const row = page.locator(`[data-testid="channel-row"][data-channel="${args.channel}"]`);
    await row.waitFor();
    result.channelSubscribers = (await row.locator('[data-testid="channel-subscribers"]').textContent()).trim();
    await shot('04-channels');
    await byId('channels-filter').fill('nomatch-*');
    await byId('channels-filter').press('Enter');
    await row.waitFor({ state: 'detached' });
    result.filterHidesChannel = true;
    await byId('channels-filter').fill(`${args.channel.split(':')[0]}:*`);
    await byId('channels-filter').press('Enter');
    await row.waitFor();

    // ---- channel view: presence shows the SDK client, the live tail shows publications
    await row.locator('a').click();
    await page.waitForFunction(() => {
      const el = document.querySelector('[data-testid="tail-state"]');
      return el && el.textContent === 'following';
    });
    const presenceRow = page.locator(`[data-testid="presence-row"][data-user="${args.user}"]`);
    await presenceRow.waitFor();
    result.presenceClient = await presenceRow.getAttribute('data-client');
    result.presenceStats = (await byId('presence-stats').textContent()).trim();

    const fromUi = { text: 'published from the admin page', n: 1 };
    await byId('publish-data').fill(JSON.stringify(fromUi));
    await byId('publish-submit').click();
    await byId('tail-item').filter({ hasText: 'published from the admin page' }).waitFor();
    result.publishResult = (await byId('publish-result').textContent()).trim();

    // A publication made elsewhere (the server API) appears in the tail as it happens.
    const response = await fetch(`${args['api-url']}/publish`, {
      method: 'POST',
      headers: { 'X-API-Key': args['api-key'], 'Content-Type': 'application/json' },
      body: JSON.stringify({ channel: args.channel, data: { text: 'published by the backend' }, tags: { kind: 'api' } }),
    });
    result.apiPublishStatus = response.status;
    await byId('tail-item').filter({ hasText: 'published by the backend' }).waitFor();
    result.tailTexts = (await byId('tail-data').allTextContents()).map((t) => JSON.parse(t));
    await waitFor(() => result.sdkPublications.length >= 2, 'the SDK client to get both publications');

    await byId('history-load').click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="history-item"]').length >= 2);
    result.historyCount = await byId('history-item').count();
    await shot('05-channel');

    // ---- disconnect the SDK client from its presence row
    await presenceRow.locator('[data-testid="presence-disconnect"]').click();
    await waitFor(() => result.sdkDisconnected.length > 0, 'the SDK client to be disconnected');
    await presenceRow.waitFor({ state: 'detached' });
    result.presenceAfterDisconnect = await byId('presence-row').count();
    await shot('06-channel-after-disconnect');

    // ---- actions: JSON validation and a clear error for a failed action
    await byId('nav-actions').click();
    await byId('action-publish-channel').fill('nowhere:room');
    await byId('action-publish-data').fill('{"broken": ');
    result.invalidJsonMessage = (await byId('action-publish-data-error').textContent()).trim();
    await byId('action-publish-submit').click();
    result.invalidJsonResult = (await byId('action-publish-result').textContent()).trim();
    await byId('action-publish-data').fill('{"ok": true}');
    await byId('action-publish-submit').click();
    await page.waitForFunction(() => {
      const el = document.querySelector('[data-testid="action-publish-result"]');
      return el && el.textContent.trim() !== '';
    });
    result.unknownChannelResult = (await byId('action-publish-result').textContent()).trim();
    result.unknownChannelClass = await byId('action-publish-result').getAttribute('class');
    await byId('action-publish-channel').fill(args.channel);
    await byId('action-publish-submit').click();
    await page.waitForFunction(() => {
      const el = document.querySelector('[data-testid="action-publish-result"]');
      return el && el.classList.contains('ok');
    });
    result.publishActionResult = (await byId('action-publish-result').textContent()).trim();
    await shot('07-actions');

    // ---- config: secrets are masked
    await byId('nav-config').click();
    await byId('config-json').waitFor();
    result.configSecrets = await pageSecrets();
    result.configMasked = (await byId('config-json').textContent()).includes('********');
    await shot('08-config');

    // ---- a phone-sized screen
    await page.setViewportSize({ width: 390, height: 844 });
    await byId('nav-status').click();
    await byId('node-row').first().waitFor();
    await shot('09-status-phone');
    await page.setViewportSize({ width: 1280, height: 900 });

    // ---- logout: back to the login form, the old token is refused from then on
    const token = await page.evaluate(() => JSON.parse(localStorage.getItem('centrifugo-fast-admin-token')).token);
    await byId('logout').click();
    await byId('login').waitFor();
    result.afterLogoutStatus = await page.evaluate(async (old) => {
      const answer = await fetch('admin/api/info', { method: 'POST', headers: { Authorization: `token ${old}` }, body: '{}' });
      return answer.status;
    }, token);
    result.done = true;
  } finally {
    await browser.close();
    sdk.disconnect();
  }
}

const args = parseArgs(process.argv.slice(2));
const result = {};
const timer = setTimeout(() => {
  result.timedOut = true;
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(1));
}, 90000);
main(args, result)
  .then(() => {
    clearTimeout(timer);
    process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
  })
  .catch((err) => {
    clearTimeout(timer);
    result.fatal = err && err.stack ? err.stack : String(err);
    process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(1));
  });
