/**
 * The inspector page against a daemon with its defaults (HTTPS, OAuth), in
 * headless Chromium: it asks for a consumer key and secret, then signs every
 * request (the event stream in its query), and shows builds live. A wrong
 * secret brings the form back with the daemon's reason.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signRequest } from '../../src/api/auth/sign.js';
import { launchChromium, watchPage } from '../inspector/helpers.js';
import { file, itWithTools } from '../tools.js';
import { template } from './helpers.js';
import { CONSUMER, request, secureHome, startLive, type LiveDaemon } from './live.js';

let home: ReturnType<typeof secureHome>;
let daemon: LiveDaemon;
let browser: Browser | undefined;

beforeAll(async () => {
  home = secureHome();
  daemon = await startLive(home.config, '--verbose');
});

afterAll(async () => {
  await browser?.close();
  await daemon?.stop();
  home?.remove();
});

describe('the inspector page with OAuth on', () => {
  itWithTools([file(process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', 'chromium')], 'asks for a key and secret, then signs every request and follows builds live; a wrong secret brings the form back', async () => {
    browser = await launchChromium();
    // The daemon's transient certificate is not one the browser knows.
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const watched = await watchPage(page, daemon.url);
    const res = await page.goto(`${daemon.url}/inspector`);
    expect(res?.status()).toBe(200);
    await page.locator('#login:not([hidden])').waitFor();
    expect(await page.locator('#connection').getAttribute('data-state')).toBe('signed-out');

    // A wrong secret: the form comes back, with the daemon's reason.
    await page.fill('#login-key', CONSUMER.key);
    await page.fill('#login-secret', 'not-the-secret');
    await page.click('#login button[type=submit]');
    await page.locator('#login:not([hidden])').waitFor();
    await expect.poll(() => page.locator('#login-why').textContent()).toContain('the OAuth signature does not match');

    await page.fill('#login-key', CONSUMER.key);
    await page.fill('#login-secret', CONSUMER.secret);
    await page.selectOption('#login-method', 'HMAC-SHA256');
    await page.click('#login button[type=submit]');
    await page.locator('#connection[data-state="live"]').waitFor({ timeout: 15_000 });
    expect(await page.locator('#login').isHidden()).toBe(true);

    // A build submitted elsewhere appears live, through the signed event stream.
    const list = `${daemon.url}/imagefactory/base_images`;
    const posted = await request(list, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: signRequest({ method: 'POST', url: list, consumer: CONSUMER }).header },
      body: JSON.stringify({ base_image: { template: template('ok') } }),
    });
    expect(posted.status).toBe(202);
    const id = posted.json().base_image.id as string;
    await page.locator(`#build-list a[data-id="${id}"]`).waitFor({ timeout: 15_000 });
    await page.locator(`#build-list a[data-id="${id}"]`).click();
    await expect.poll(() => page.locator('#d-status').textContent(), { timeout: 15_000 }).toBe('COMPLETE');

    // Every data request was signed: the stream in its query, the rest in a header (the log says which consumer).
    expect(watched.requests.some((u) => u.includes('/imagefactory/events?') && u.includes('oauth_signature='))).toBe(true);
    const consumers = daemon.logs().filter((l) => l.msg === 'request' && String(l.path).startsWith('/imagefactory/') && l.status === 200).map((l) => l.consumer);
    expect(consumers.length).toBeGreaterThan(3);
    expect(new Set(consumers)).toEqual(new Set([CONSUMER.key]));
    expect(watched.offOrigin).toEqual([]);
    // The secret is in the tab's session storage only; never in the daemon's log.
    expect(daemon.output()).not.toContain(CONSUMER.secret);
    expect(watched.errors.filter((e) => !/401|Unauthorized|status of 401/.test(e))).toEqual([]);
    await context.close();
  }, 90_000);
});
