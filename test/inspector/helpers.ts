import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { PROJECT_ROOT } from '../../src/version.js';

export { daemonHome, startDaemon, type Daemon } from '../../bench/daemon-process.js';
export { getImage, postBase, template, TEST_PLUGINS, waitPhase, waitStatus } from '../daemon/helpers.js';

/** Chromium from the distribution (a downloaded browser is not an option here), as ENVIRONMENT.md says. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

export interface Watched {
  /** Requests to anything but the daemon's origin: refused, and recorded here. */
  offOrigin: string[];
  /** Every request the page made. */
  requests: string[];
  /** Console errors, uncaught exceptions and CSP violations. */
  errors: string[];
  /** Documents loaded in the page (1 = the first load and no reload; hash changes do not count). */
  loads: () => number;
}

/** Cuts the page off from every origin but the daemon's, and records what it asks for and what goes wrong. */
export async function watchPage(page: Page, origin: string): Promise<Watched> {
  const allowed = new URL(origin).origin;
  const w = { offOrigin: [] as string[], requests: [] as string[], errors: [] as string[] };
  let loads = 0;
  await page.route('**/*', async (route) => {
    const url = route.request().url();
    if (new URL(url).origin === allowed) return route.continue();
    w.offOrigin.push(url);
    return route.abort('blockedbyclient');
  });
  page.on('request', (r) => w.requests.push(r.url()));
  page.on('console', (m) => {
    if (m.type() === 'error') w.errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => w.errors.push(`pageerror: ${e.message}`));
  page.on('websocket', (ws) => w.offOrigin.push(`websocket ${ws.url()}`));
  page.on('domcontentloaded', () => loads++);
  return { ...w, loads: () => loads };
}

export const ARTIFACTS = join(PROJECT_ROOT, 'test-artifacts');

export function artifactPath(name: string): string {
  mkdirSync(ARTIFACTS, { recursive: true });
  return join(ARTIFACTS, name);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The name of the state the chart highlights as current, or null. */
export function currentState(page: Page): Promise<string | null> {
  return page.evaluate(() => document.querySelector('#chart svg g.node.current > title')?.textContent ?? null);
}

/** The classes of a state's node in the chart. */
export function stateClasses(page: Page, name: string): Promise<string[]> {
  return page.evaluate((n) => {
    const node = [...document.querySelectorAll('#chart svg g.node')].find((g) => g.querySelector(':scope > title')?.textContent === n);
    return node ? [...node.classList] : [];
  }, name);
}
