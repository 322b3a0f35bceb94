import { afterEach, describe, expect, it } from 'vitest';
import { engineSetupOf } from '../../src/compose.js';
import { defaultConfig } from '../../src/config/schema.js';
import { DEFAULT_CONTENT_FETCH } from '../../src/os/content-fetch.js';
import { testEngine } from './helpers.js';

/** The configuration's file_url_dirs reach the parser the engine uses, at submission and when a step parses again. */

const withFile = (url: string) =>
  `<template><name>f</name><os><name>TestOS</name><version>1</version><arch>x86_64</arch><install type="url"><url>http://mirror.example.com/</url></install></os><files><file name="/etc/x" type="url">${url}</file></files></template>`;

let env: Awaited<ReturnType<typeof testEngine>> | undefined;
afterEach(async () => {
  await env?.cleanup();
  env = undefined;
});

describe('file: URL contents through the composition root', () => {
  it('maps the configuration keys to the content-fetch options', () => {
    const config = { ...defaultConfig(), file_url_dirs: ['/srv/templates'], content_fetch_max_mb: 2, content_fetch_timeout_seconds: 7, content_fetch_max_redirects: 1 };
    expect(engineSetupOf(config).contentFetch).toEqual({ fileUrlDirs: ['/srv/templates'], maxBytes: 2 * 1024 * 1024, timeoutMs: 7000, maxRedirects: 1 });
    expect(engineSetupOf(defaultConfig()).contentFetch?.fileUrlDirs).toEqual([]);
  });

  it('refuses file:///etc/shadow at submission by default', async () => {
    env = await testEngine();
    expect(() => env!.engine.submitBaseImage({ template: withFile('file:///etc/shadow') })).toThrow(expect.objectContaining({ code: 'template_invalid', message: expect.stringContaining('file_url_dirs') }));
  });

  it('accepts a file under an allowed directory, and still nothing outside it', async () => {
    env = await testEngine({ contentFetch: { ...DEFAULT_CONTENT_FETCH, fileUrlDirs: ['/srv/templates'] } });
    expect(env.engine.submitBaseImage({ template: withFile('file:///srv/templates/motd') }).status).toBeDefined();
    expect(() => env!.engine.submitBaseImage({ template: withFile('file:///etc/shadow') })).toThrow(expect.objectContaining({ code: 'template_invalid' }));
  });
});
