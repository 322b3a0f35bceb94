import type { Browser, Page } from 'playwright-core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  artifactPath,
  currentState,
  daemonHome,
  launchChromium,
  postBase,
  sleep,
  startDaemon,
  stateClasses,
  template,
  TEST_PLUGINS,
  watchPage,
  type Daemon,
  type Watched,
} from './helpers.js';

let home: ReturnType<typeof daemonHome> | undefined;
let daemon: Daemon | undefined;
let browser: Browser | undefined;

beforeEach(async () => {
  home = daemonHome(TEST_PLUGINS);
  daemon = await startDaemon(home.config);
});

afterEach(async () => {
  await browser?.close();
  await daemon?.stop();
  home?.remove();
  browser = daemon = home = undefined;
});

async function openInspector(path = '/inspector'): Promise<{ page: Page; watched: Watched }> {
  const page = await browser!.newPage({ viewport: { width: 1440, height: 1080 } });
  const watched = await watchPage(page, daemon!.url);
  const res = await page.goto(`${daemon!.url}${path}`);
  expect(res?.status()).toBe(200);
  await page.locator('#connection[data-state="live"]').waitFor();
  return { page, watched };
}

/** Polls the highlighted state until `last` is highlighted; returns every distinct state seen, in order. */
async function followHighlight(page: Page, last: string, onState: (state: string) => Promise<void> = async () => undefined, timeoutMs = 30_000): Promise<string[]> {
  const seen: string[] = [];
  const end = Date.now() + timeoutMs;
  for (;;) {
    const current = await currentState(page);
    if (current !== null && seen[seen.length - 1] !== current) {
      seen.push(current);
      await onState(current);
    }
    if (current === last) return seen;
    if (Date.now() > end) throw new Error(`the chart never highlighted ${last}; saw ${seen.join(' → ') || 'nothing'}`);
    await sleep(25);
  }
}

const postTarget = async (url: string, body: Record<string, unknown>) => {
  const res = await fetch(`${url}/imagefactory/target_images`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ target_image: body }) });
  expect(res.status).toBe(202);
  return ((await res.json()) as { target_image: { id: string } }).target_image;
};

describe('the inspector page in headless Chromium, cut off from every other origin', () => {
  beforeEach(async () => {
    browser = await launchChromium();
  });

  it('draws a running build’s machine and moves the highlight with its transitions, without reloading', async () => {
    const { page, watched } = await openInspector();
    await page.evaluate(() => Object.assign(window, { sameDocument: true }));

    const { status, body } = await postBase(daemon!.url, template('slow'));
    expect(status).toBe(202);
    const id = body.base_image.id as string;

    // The list learns of the build from the event stream, and a click selects it.
    const row = page.locator(`#build-list a[data-id="${id}"]`);
    await row.waitFor({ timeout: 5000 });
    await row.click();
    await page.locator('#chart svg').waitFor({ timeout: 10_000 });

    // A picture of the build in flight, too (the slow install takes 2 s).
    const seen = await followHighlight(page, 'complete', async (state) => {
      if (state === 'installing') await page.screenshot({ path: artifactPath('inspector-running.png') });
    });
    expect(new Set(seen).size, seen.join(' → ')).toBeGreaterThanOrEqual(2);
    expect(seen[seen.length - 1]).toBe('complete');
    // Highlights only ever move forward along the machine.
    const order = ['queued', 'validating', 'preparing', 'installing', 'customizing', 'snapshotting', 'complete'];
    expect(seen.map((s) => order.indexOf(s))).toEqual([...seen.map((s) => order.indexOf(s))].sort((a, b) => a - b));

    // The whole machine is drawn: every state of a base build, with the transitions' event names.
    const titles = await page.$$eval('#chart svg g.node > title', (ts) => ts.map((t) => t.textContent));
    for (const state of [...order, 'failing', 'cancelling', 'failed', 'cancelled']) expect(titles, state).toContain(state);
    const edgeText = await page.$$eval('#chart svg g.edge text', (ts) => ts.map((t) => t.textContent).join(' '));
    for (const label of ['ADMIT', 'CANCEL', 'TIMEOUT', 'done: step', 'error: step', 'done: compensate']) expect(edgeText, label).toContain(label);

    // The final state is marked, the path to it is marked visited, the rest is not.
    expect(await stateClasses(page, 'complete')).toEqual(expect.arrayContaining(['current', 'st-complete']));
    for (const state of order.slice(0, -1)) expect(await stateClasses(page, state), state).toContain('visited');
    for (const state of ['failing', 'failed', 'cancelling', 'cancelled']) expect(await stateClasses(page, state), state).not.toContain('visited');
    expect(await page.locator('#chart svg g.edge.taken').count()).toBe(order.length - 1);

    // Status, progress, timeline with durations, log tail: all live.
    await expect.poll(() => page.textContent('#d-status')).toBe('COMPLETE');
    expect(await page.textContent('#d-percent')).toBe('100%');
    const rows = await page.$$eval('#timeline-body tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
    expect(rows.map((r) => r[1])).toEqual(['(start) → queued', 'queued → validating', 'validating → preparing', 'preparing → installing', 'installing → customizing', 'customizing → snapshotting', 'snapshotting → complete']);
    const installing = rows.find((r) => r[1] === 'preparing → installing')!;
    // The slow TestOS install sleeps 2 s.
    expect(installing[4]).toMatch(/^\d+\.\d s$/);
    expect(parseFloat(installing[4]!)).toBeGreaterThanOrEqual(1.9);
    await expect.poll(() => page.textContent('#log'), { timeout: 5000 }).toContain('state snapshotting -> complete');
    expect(await page.isHidden('#d-error')).toBe(true);

    // One document all along, and nothing asked of any other origin.
    expect(await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument)).toBe(true);
    expect(watched.loads()).toBe(1);
    expect(watched.offOrigin).toEqual([]);
    expect(watched.requests.length).toBeGreaterThan(5);
    for (const url of watched.requests) expect(new URL(url).origin).toBe(new URL(daemon!.url).origin);
    expect(watched.errors).toEqual([]);

    await page.screenshot({ path: artifactPath('inspector.png'), fullPage: true });
  });

  it('links a target build to its base and back, filters the list, and shows the error of a failed build', async () => {
    // A target image from a template: the daemon builds the base first; with no cloud plugin for the target it then fails.
    const target = await postTarget(daemon!.url, { target: 'nosuchcloud', template: template('ok') });
    await expect
      .poll(async () => ((await (await fetch(`${daemon!.url}/imagefactory/target_images/${target.id}`)).json()) as { target_image: { status: string } }).target_image.status, { timeout: 30_000, interval: 100 })
      .toBe('FAILED');

    // A deep link to the target.
    const { page, watched } = await openInspector(`/inspector#/target_images/${target.id}`);
    await page.locator('#chart svg').waitFor();
    expect(await page.textContent('#d-kind')).toBe('target image');
    await expect.poll(() => currentState(page)).toBe('failed');
    expect(await stateClasses(page, 'failed')).toEqual(expect.arrayContaining(['current', 'st-failed']));
    for (const state of ['waiting_for_base', 'queued', 'adapting', 'failing']) expect(await stateClasses(page, state), state).toContain('visited');
    await expect.poll(() => page.textContent('#d-error')).toMatch(/no cloud plugin handles the target "nosuchcloud"/);
    expect(await page.isVisible('#d-error')).toBe(true);

    // Parent link: to the base image, in the same document.
    const parent = page.locator('#d-links a.link-parent');
    await parent.waitFor();
    const baseId = await parent.getAttribute('data-id');
    expect(baseId).toBeTruthy();
    await parent.click();
    await expect.poll(() => page.evaluate(() => location.hash)).toBe(`#/base_images/${baseId}`);
    await expect.poll(() => page.textContent('#d-id')).toBe(baseId);
    expect(await page.textContent('#d-kind')).toBe('base image');
    await expect.poll(() => currentState(page)).toBe('complete');

    // Child link: back to the target.
    const child = page.locator(`#d-links a.link-child[data-id="${target.id}"]`);
    await child.waitFor();
    await child.click();
    await expect.poll(() => page.textContent('#d-id')).toBe(target.id);

    // Filters: by kind, then by status.
    const listed = () => page.$$eval('#build-list a', (as) => as.map((a) => a.getAttribute('data-id')));
    await expect.poll(async () => (await listed()).sort()).toEqual([baseId, target.id].sort());
    await page.selectOption('#filter-kind', 'TargetImage');
    expect(await listed()).toEqual([target.id]);
    await page.selectOption('#filter-kind', '');
    await page.selectOption('#filter-status', 'COMPLETE');
    expect(await listed()).toEqual([baseId]);
    await page.selectOption('#filter-status', 'BUILDING');
    expect(await listed()).toEqual([]);
    expect(await page.textContent('#build-list-empty')).toMatch(/No build matches/);

    expect(watched.loads()).toBe(1);
    expect(watched.offOrigin).toEqual([]);
    expect(watched.errors).toEqual([]);
  });
});

describe('GET /inspector over HTTP', () => {
  it('serves the page, its script and stylesheet, and Graphviz from the daemon, under a CSP that forbids other origins', async () => {
    const res = await fetch(`${daemon!.url}/inspector`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self' 'wasm-unsafe-eval'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toMatch(/https?:|\*|unsafe-inline|'unsafe-eval'/);
    const html = await res.text();
    const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    expect(refs).toEqual(['data:,', '/inspector/assets/inspector.css', '/inspector/assets/inspector.js']);

    for (const [path, type] of [
      ['/inspector/assets/inspector.js', 'text/javascript; charset=utf-8'],
      ['/inspector/assets/inspector.css', 'text/css; charset=utf-8'],
      ['/inspector/assets/viz.js', 'text/javascript; charset=utf-8'],
    ] as const) {
      const r = await fetch(`${daemon!.url}${path}`);
      expect(r.status, path).toBe(200);
      expect(r.headers.get('content-type'), path).toBe(type);
      const text = await r.text();
      if (path !== '/inspector/assets/viz.js') expect(text, path).not.toMatch(/https?:\/\//);
      else expect(text).toContain('export { engines, formats, graphvizVersion, instance }');
      // Revalidation instead of a second download.
      const again = await fetch(`${daemon!.url}${path}`, { headers: { 'if-none-match': r.headers.get('etag')! } });
      expect(again.status, path).toBe(304);
    }
    // The script is the compiled page module, without a source map reference.
    const script = await (await fetch(`${daemon!.url}/inspector/assets/inspector.js`)).text();
    expect(script).toContain('export function drawMachine');
    expect(script).not.toContain('sourceMappingURL');
    expect((await fetch(`${daemon!.url}/inspector/assets/nope.js`)).status).toBe(404);
    // A client that takes only JSON gets 406 for the page.
    expect((await fetch(`${daemon!.url}/inspector`, { headers: { accept: 'application/json' } })).status).toBe(406);
  });
});
