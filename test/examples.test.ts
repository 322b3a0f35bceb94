import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHIPPED_PLUGINS } from '../src/compose.js';
import { mmdebstrapArgs, basePackages } from '../src/os/debian/bootstrap.js';
import { placeRepositories } from '../src/os/debian/repositories.js';
import { ARCHIVE_KEYRINGS, releaseOf } from '../src/os/debian/releases.js';
import { parseTdl } from '../src/tdl/index.js';
import { PROJECT_ROOT } from '../src/version.js';
import { testEngine, waitFor } from './engine/helpers.js';

/**
 * Every template in examples/ either builds on the shipped plugins or says,
 * in its own first lines and in the README's table, what it needs and how it
 * ends without it; this holds each to what it announces. (debian-12.tdl is
 * built for real, exactly as the README says, by test/e2e/readme.test.ts.)
 */

const EXAMPLES = join(PROJECT_ROOT, 'examples');
const README = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8');
const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.tdl'));
const text = (f: string) => readFileSync(join(EXAMPLES, f), 'utf8');

let env: Awaited<ReturnType<typeof testEngine>>;
beforeAll(async () => {
  env = await testEngine({ pluginDirs: [SHIPPED_PLUGINS] });
});
afterAll(async () => env.cleanup());

describe.each(files)('examples/%s', (file) => {
  it('is a valid template', () => {
    const parsed = parseTdl(text(file));
    expect(parsed.ok ? [] : parsed.errors).toEqual([]);
  });

  it('has a row in the README that says whether it builds here', () => {
    expect(README).toMatch(new RegExp(`^\\| \`examples/${file.replace('.', '\\.')}\` \\| .+ \\|$`, 'm'));
  });
});

it('covers every example file in the README table, and nothing else', () => {
  const rows = [...README.matchAll(/^\| `examples\/([^`]+\.tdl)` \|/gm)].map((m) => m[1]);
  expect(rows.sort()).toEqual([...files].sort());
});

describe.each(['fedora-40.tdl', 'rhel-9.tdl'])('examples/%s, announced as needing a plugin not shipped', (file) => {
  it('says so in its first lines and in the README, and ends FAILED plugin_missing, as announced', async () => {
    expect(text(file).split('\n').slice(0, 4).join('\n')).toMatch(/Needs an OS plugin for \S+.*not ship/s);
    expect(README).toMatch(new RegExp(`\`examples/${file.replace('.', '\\.')}\` \\| no: .*\`FAILED plugin_missing\``));
    const { id } = env.engine.submitBaseImage({ template: text(file) });
    const image = await waitFor(env.engine, id, ['FAILED', 'COMPLETE', 'CANCELLED']);
    expect(image.status).toBe('FAILED');
    expect(image.error).toMatchObject({ code: 'plugin_missing' });
    expect(image.error!.message).toMatch(/no OS plugin can build (Fedora 40|RHEL-9 4) x86_64 \(loaded OS plugins: .*Debian.*\)/);
  });
});

describe('examples/ubuntu-22.04.tdl, announced as building where the Ubuntu archive is reachable', () => {
  it('is matched by the shipped Ubuntu plugin and planned as an mmdebstrap of jammy from archive.ubuntu.com', () => {
    const parsed = parseTdl(text('ubuntu-22.04.tdl'));
    if (!parsed.ok) throw new Error('invalid');
    const t = parsed.template;
    const release = releaseOf(t.os.name, t.os.version)!;
    expect(release).toMatchObject({ distro: 'Ubuntu', suite: 'jammy' });
    const hostRepositories = placeRepositories(t, release.suite).filter((p) => p.where === 'host').map((p) => p.repo);
    const args = mmdebstrapArgs({
      template: t,
      release,
      mirror: 'http://archive.ubuntu.com/ubuntu',
      tree: '/tree',
      packageCache: null,
      packages: [...basePackages(release, t.os.arch), ...t.packages.map((p) => p.name)],
      hostRepositories,
      keyring: ARCHIVE_KEYRINGS.Ubuntu,
      sourcesDir: '/work/apt-sources',
    });
    expect(args).toContain('--keyring=/usr/share/keyrings/ubuntu-archive-keyring.gpg');
    expect(args.slice(-3)).toEqual(['jammy', '/tree', 'http://archive.ubuntu.com/ubuntu']);
    expect(args).toContain('--components=main,universe');
    expect(env.engine.plugins().map((p) => p.id)).toContain('Ubuntu');
    expect(text('ubuntu-22.04.tdl').split('\n').slice(0, 5).join('\n')).toContain('archive.ubuntu.com');
  });
});
