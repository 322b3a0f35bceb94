import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT, VERSION } from '../../src/version.js';
import { cli, requireFreshBuild, scratch, template } from './helpers.js';

beforeAll(requireFreshBuild);

/** A loopback port nothing listens on: connections are refused at once. */
const DEAD_URL = 'http://127.0.0.1:9';

describe('imagefactory usage errors, an unreachable daemon, and offline validate', () => {
  it('exits 3 with the URL in the message when the daemon cannot be reached, for every daemon command', async () => {
    const tdl = scratch().file('ok.tdl', template('ok'));
    for (const args of [['base_image', tdl], ['images'], ['plugins'], ['watch', 'x'], ['cancel', 'x'], ['delete', 'x'], ['target_image', 'ec2', '--id', 'x']]) {
      const r = await cli([...args, '--url', DEAD_URL]);
      expect(r.code, `${args.join(' ')}: ${r.err}`).toBe(3);
      expect(r.err).toContain(`cannot reach the imagefactory daemon at ${DEAD_URL}`);
    }
  });

  it.each([
    ['a missing argument', ['base_image'], /Insufficient arguments/],
    ['an unknown command', ['bake'], /Invalid command: bake/],
    ['no command', [], /No command specified/],
    ['an unknown option', ['images', '--colour'], /unknown option --colour/],
    ['a stray argument', ['cancel', 'a', 'b'], /unexpected argument b/],
    ['both --id and --template', ['target_image', 'ec2', '--id', 'x', '--template', 'y.tdl'], /exactly one of --id and --template/],
    ['neither --id nor --template', ['provider_image', 'ec2', '@p', 'creds.xml'], /exactly one of --id and --template/],
    ['an unreadable template', ['base_image', '/nonexistent/t.tdl'], /TEMPLATE: cannot read \/nonexistent\/t\.tdl: no such file/],
    ['--parameters on a command that builds nothing', ['images', '--parameters', 'x.json'], /unknown option --parameters/],
    ['--parameter with one value', ['base_image', 't.tdl', '--parameter', 'only-name'], /--parameter needs two values/],
    ['--parameter on a command that builds nothing', ['images', '--parameter', 'a', 'b'], /only apply to build, base_image/],
    ['a bad --output', ['images', '--output', 'yaml'], /--output must be log or json/],
    ['a URL that is not http(s)', ['images', '--url', 'ftp://host/'], /only http:\/\/ and https:\/\//],
    ['an OAuth key without its secret', ['images', '--key', 'k'], /the OAuth key k was given without its secret/],
    ['an OAuth secret without its key', ['images', '--secret', 's'], /an OAuth secret was given without its key/],
    ['an unknown signature method', ['images', '--signature-method', 'PLAINTEXT'], /--signature-method must be one of HMAC-SHA1, HMAC-SHA256/],
    ['a client configuration that cannot be read', ['images', '--config', '/nonexistent/client.json'], /client configuration \/nonexistent\/client\.json: cannot read it: no such file/],
    ['a JSON query that is not an object', ['images', '"COMPLETE"'], /QUERY must be a JSON object/],
  ])('%s is a usage error: exit 2 and a message on stderr, nothing sent', async (_what, args, message) => {
    const r = await cli(args.includes('--url') ? args : [...args, '--url', DEAD_URL]);
    expect(r.code, r.err).toBe(2);
    expect(r.err).toMatch(message);
    expect(r.err).not.toContain('cannot reach');
  });

  it('reads --parameters as a JSON object, and refuses other JSON with exit 2', async () => {
    const files = scratch();
    const tdl = files.file('ok.tdl', template('ok'));
    const list = files.file('list.json', '[1,2]');
    const broken = files.file('broken.json', '{"a":');
    for (const [file, message] of [
      [list, 'the file must hold a JSON object'],
      [broken, 'not valid JSON'],
      ['/nonexistent/p.json', 'cannot read /nonexistent/p.json'],
    ] as const) {
      const r = await cli(['base_image', tdl, '--parameters', file, '--url', DEAD_URL]);
      expect(r.code).toBe(2);
      expect(r.err).toContain(message);
    }
  });

  it('--help lists the commands, and each command’s --help its options', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    for (const c of ['base_image', 'target_image', 'provider_image', 'images', 'delete', 'cancel', 'watch', 'plugins', 'validate']) expect(help.out).toContain(c);
    const base = await cli(['base_image', '--help']);
    for (const o of ['--parameters', '--parameter', '--file-parameter', '--wait', '--url', '--output', '--key', '--secret', '--signature-method', '--config', '--ca', '--insecure']) expect(base.out).toContain(o);
  });

  it('validate still works offline: 0 for a valid template, 1 for an invalid one, 2 without a file', async () => {
    const files = scratch();
    const good = await cli(['validate', join(PROJECT_ROOT, 'examples', 'fedora-40.tdl'), '--url', DEAD_URL]);
    expect(good.code, good.err).toBe(0);
    expect(good.out).toContain('ok');
    const bad = files.file('bad.tdl', '<template><name>x</name></template>');
    const invalid = await cli(['validate', bad]);
    expect(invalid.code).toBe(1);
    expect((await cli(['validate'])).code).toBe(2);
    const two = await cli(['validate', '--json', join(PROJECT_ROOT, 'examples', 'debian-12.tdl'), bad]);
    expect(two.code).toBe(1);
    expect(JSON.parse(two.out).files).toHaveLength(2);
  });

  it('puts the command first when options come before it', () => {
    const r = spawnSync(process.execPath, [join(PROJECT_ROOT, 'dist', 'src', 'cli', 'imagefactory.js'), '--insecure', '--url', DEAD_URL, 'images'], { encoding: 'utf8' });
    expect(r.status).toBe(3);
  });
});

describe('the commands npm installs', () => {
  // tsc writes new files 0644 and keeps the mode of files it overwrites, so a
  // developer's old dist/ can hide what a fresh clone gets: `npx imagefactory`
  // then fails with "Permission denied". The build sets the mode itself.
  it('every bin of package.json is an executable node script after the build', () => {
    const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(Object.keys(pkg.bin).sort()).toEqual(['imagefactory', 'imagefactoryd']);
    for (const [name, file] of Object.entries(pkg.bin)) {
      const path = join(PROJECT_ROOT, file);
      expect(statSync(path).mode & 0o111, `${name} (${file}) is not executable`).toBe(0o111);
      expect(readFileSync(path, 'utf8').split('\n')[0], name).toBe('#!/usr/bin/env node');
    }
  });

  it('npx imagefactory runs the built command from the project root, as the README does', () => {
    const r = spawnSync('npx', ['--no-install', 'imagefactory', '--version'], { cwd: PROJECT_ROOT, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(`imagefactory, ${VERSION}`);
  });
});
