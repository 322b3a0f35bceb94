import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_KEYS, DAEMON_OPTIONS, describeType, SCHEMA } from '../../src/config/index.js';
import { VERSION } from '../../src/version.js';

const shipped = JSON.parse(readFileSync('conf/imagefactory.conf', 'utf8')) as Record<string, unknown>;
const docs = readFileSync('docs/configuration.md', 'utf8');
/** The rows of the key table: `| \`key\` | type | default | option | meaning |`. */
const rows = new Map(
  docs
    .split('\n')
    .filter((l) => /^\| `[^`]+` \|/.test(l))
    .map((l) => {
      const cells = l.split(' | ').map((c) => c.replace(/^\|\s*|\s*\|$/g, '').trim());
      return [cells[0]!.replace(/`/g, ''), cells] as const;
    }),
);

describe('shipped configuration and documentation', () => {
  it('conf/imagefactory.conf has every key of the table with its default, in table order', () => {
    expect(Object.keys(shipped)).toEqual(CONFIG_KEYS);
    for (const key of CONFIG_KEYS) expect(shipped[key], key).toEqual(SCHEMA[key].default);
  });

  it('every key of conf/imagefactory.conf is in the table', () => {
    for (const key of Object.keys(shipped)) expect(CONFIG_KEYS, key).toContain(key);
  });

  it('docs/configuration.md documents every key with its default and option, and nothing else', () => {
    expect([...rows.keys()]).toEqual(CONFIG_KEYS);
    for (const key of CONFIG_KEYS) {
      const [, type, dflt, option] = rows.get(key)!;
      expect(type, key).toBeTruthy();
      expect(JSON.parse(dflt!.replace(/`/g, '')), key).toEqual(SCHEMA[key].default);
      expect(option!.replace(/`/g, ''), key).toBe(SCHEMA[key].flag ?? '—');
    }
  });

  it('every key has a description and a type that can be worded', () => {
    for (const key of CONFIG_KEYS) {
      expect(SCHEMA[key].description.length, key).toBeGreaterThan(10);
      expect(describeType(SCHEMA[key].type), key).toMatch(/^(a|an|one of) /);
    }
  });

  it('every key with a flag has a daemon option, and the reverse', () => {
    const withFlag = CONFIG_KEYS.filter((k) => SCHEMA[k].flag !== undefined);
    expect(DAEMON_OPTIONS.filter((o) => o.key !== undefined).map((o) => o.key).sort()).toEqual([...withFlag].sort());
  });

  it('VERSION is the version of package.json', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    expect(VERSION).toBe(pkg.version);
  });
});
