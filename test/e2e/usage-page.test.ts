/**
 * The usage page of `npm start`, in a real browser: headless Chromium (Debian's package, driven by
 * playwright-core) loads it against a running local stack; the numbers it shows must equal the query
 * API's. `TALLY_SCREENSHOT=docs/usage-page.png npx jest test/e2e/usage-page` refreshes the README's picture.
 *
 * Without Chromium the test is skipped with a warning, except in CI (`CI` set), where `.ci/run` installs it.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { startLocalStack, type LocalStack } from '../../local/stack';
import { PrintSink } from '../../src/sink/print';

jest.setTimeout(120_000);

// The callbacks given to page.waitForFunction run in the browser; the project's types have no DOM.
declare const document: { querySelector(s: string): { textContent: string | null } | null; querySelectorAll(s: string): { length: number } };
declare const location: { hash: string };

const CHROMIUM = process.env.TALLY_CHROMIUM ?? '/usr/bin/chromium';
const KEY = 'tally_page_key_0123456789';
const auth = { authorization: `Bearer ${KEY}` };
const haveBrowser = existsSync(CHROMIUM);
if (!haveBrowser && process.env.CI) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (.ci/run does)`);
if (!haveBrowser) console.warn(`usage page test skipped: no Chromium at ${CHROMIUM} (apt-get install -y chromium)`);
const maybe = haveBrowser ? describe : describe.skip;

maybe('usage page (headless Chromium)', () => {
  let stack: LocalStack;
  let browser: Browser;
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tally-page-'));
    stack = await startLocalStack({ port: 0, apiKey: KEY, sink: new PrintSink(join(dir, 'posthog.jsonl'), () => undefined), batchWindowMs: 100, windowSeconds: 10, graceSeconds: 4, staleSeconds: 4, rollupIntervalMs: 500 });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  const api = async <T>(path: string): Promise<T> => {
    const r = await fetch(`${stack.url}${path}`, { headers: auth });
    expect(r.status).toBe(200);
    return (await r.json()) as T;
  };

  it('shows the same totals, events and top users as the query API, and the batch events sent', async () => {
    const batch = [
      ...Array.from({ length: 30 }, () => ({ distinctId: 'acme', event: 'api_call' })),
      ...Array.from({ length: 12 }, () => ({ distinctId: 'globex', event: 'api_call' })),
      ...Array.from({ length: 5 }, () => ({ distinctId: 'initech', event: 'api_call' })),
      ...Array.from({ length: 7 }, () => ({ distinctId: 'acme', event: 'export' })),
    ];
    const r = await fetch(`${stack.url}/v1/usage`, { method: 'POST', headers: auth, body: JSON.stringify({ batch }) });
    expect(r.status).toBe(202);
    await stack.settle(30_000);

    const page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(`${stack.url}/#key=${KEY}`);
    // The key leaves the address bar (it stays in the tab's session).
    await page.waitForFunction(() => !location.hash.includes('key='));

    const now = Date.now();
    const usage = await api<{ total: number }>(`/v1/usage?event=api_call&granularity=hour&from=${now - 24 * 3600e3}&to=${now}`);
    expect(usage.total).toBe(47);
    await page.waitForFunction((want) => document.querySelector('[data-testid="total"]')?.textContent === want, '47');

    const events = await api<{ events: Array<{ event: string; calls: number }> }>('/v1/usage/events');
    const shownEvents = await page.$$eval('[data-testid="events"] tbody tr', (rows) => rows.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
    expect(shownEvents).toEqual(events.events.map((e) => [e.event, e.calls.toLocaleString('en-US')]));

    const users = await api<{ users: Array<{ distinctId: string; calls: number }> }>(`/v1/usage/users?event=api_call&granularity=day&from=${now}&to=${now}&limit=10`);
    expect(users.users.map((u) => u.distinctId)).toEqual(['acme', 'globex', 'initech']);
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="users"] tbody tr').length === 3);
    const shownUsers = await page.$$eval('[data-testid="users"] tbody tr', (rows) => rows.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
    expect(shownUsers).toEqual(users.users.map((u) => [u.distinctId, String(u.calls)]));

    // Choosing another event charts it.
    await page.selectOption('[data-testid="event"]', 'export');
    await page.waitForFunction((want) => document.querySelector('[data-testid="total"]')?.textContent === want, '7');
    expect(await page.locator('[data-testid="chart"] canvas').count()).toBeGreaterThan(0);

    // Once the window is rolled up, the batch events PostHog got appear, live.
    await stack.rolledUp(60_000, { delivered: true });
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="batch"] tbody tr').length >= 4, undefined, { timeout: 10_000 });
    const shownBatch = await page.$$eval('[data-testid="batch"] tbody tr', (rows) => rows.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
    const calls = shownBatch.reduce((s, row) => s + Number(row[3]), 0);
    expect(calls).toBe(54);

    await page.selectOption('[data-testid="event"]', 'api_call');
    await page.waitForFunction((want) => document.querySelector('[data-testid="total"]')?.textContent === want, '47');
    if (process.env.TALLY_SCREENSHOT) await page.screenshot({ path: process.env.TALLY_SCREENSHOT, fullPage: true });
    expect(errors).toEqual([]);
  });

  it('asks for the key when it has none, and the data routes refuse a wrong one', async () => {
    const page = await browser.newPage();
    await page.goto(stack.url);
    await page.waitForSelector('[data-testid="key"]', { state: 'visible' });
    const r = await fetch(`${stack.url}/local/recent`, { headers: { authorization: 'Bearer wrong-key-0123' } });
    expect(r.status).toBe(401);
    const csp = (await fetch(stack.url)).headers.get('content-security-policy');
    expect(csp).toContain("script-src 'self'");
    await page.fill('[data-testid="key"]', KEY);
    await page.click('button');
    await page.waitForFunction(() => /updated/.test(document.querySelector('[data-testid="status"]')?.textContent ?? ''));
  });
});
