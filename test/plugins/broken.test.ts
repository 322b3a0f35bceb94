import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { discoverPlugins, type PluginEntry } from '../../src/plugins/index.js';
import { infoDoc, osModuleSource, tempDirs, writeInfo, writeModule, writeOsPlugin } from './fixtures.js';

const temp = tempDirs();
afterEach(() => temp.removeAll());

/**
 * Discovers `dir` holding a good plugin plus whatever `setup` wrote as `Bad`,
 * and returns the Bad entry; the good one must survive.
 */
async function discoverBad(setup: (dir: string) => void): Promise<PluginEntry & { dirPath: string }> {
  const dir = temp.make();
  writeOsPlugin(dir, 'Good', [['Good', null, null]]);
  setup(dir);
  const registry = await discoverPlugins([dir]);
  expect(registry.get('Good')?.loaded).toBe(true);
  expect(registry.findOs('Good', '1', 'x86_64')?.entry.id).toBe('Good');
  const bad = registry.get('Bad');
  expect(bad).not.toBeNull();
  expect(bad!.loaded).toBe(false);
  return { ...bad!, dirPath: dir };
}

const osInfo = (fields: Record<string, unknown> = {}) => infoDoc('os', [['Bad', null, null]], fields);

describe('broken plugins are listed with an error instead of stopping discovery', () => {
  it('reports a .info file that is not valid JSON with the parser\'s message', async () => {
    const text = '{"type": "os",, }';
    let parserMessage = '';
    try {
      JSON.parse(text);
    } catch (e) {
      parserMessage = (e as Error).message;
    }

    const bad = await discoverBad((dir) => writeInfo(dir, 'Bad', text));

    expect(bad).toMatchObject({ error: `invalid JSON: ${parserMessage}`, errorCode: 'info_not_json', info: {}, declared: null });
  });

  it('reports a .info file that is JSON but not an object', async () => {
    const bad = await discoverBad((dir) => writeInfo(dir, 'Bad', '[1, 2]'));

    expect(bad.error).toBe('the .info file must hold a JSON object, got array');
  });

  it('reports a missing type and keeps the raw fields it did find', async () => {
    const bad = await discoverBad((dir) => writeInfo(dir, 'Bad', osInfo({ type: undefined })));

    expect(bad).toMatchObject({ error: 'type is required ("os" or "cloud")', errorCode: 'info_invalid', info: { description: 'a os plugin for tests' } });
  });

  it('reports an unknown type', async () => {
    const bad = await discoverBad((dir) => writeInfo(dir, 'Bad', osInfo({ type: 'vm' })));

    expect(bad.error).toBe('type must be "os" or "cloud", got "vm"');
  });

  it('accepts the type in any case, as the original did', async () => {
    const dir = temp.make();
    writeModule(dir, 'os.mjs', osModuleSource('upper'));
    writeInfo(dir, 'Upper', infoDoc('OS' as 'os', [['Upper', null, null]], { module: './os.mjs' }));

    const registry = await discoverPlugins([dir]);

    expect(registry.get('Upper')).toMatchObject({ error: null, loaded: true, info: { type: 'OS' }, declared: { type: 'os' } });
  });

  it('names the element of targets that is wrong', async () => {
    const bad = await discoverBad((dir) =>
      writeInfo(dir, 'Bad', osInfo({ targets: [['Bad', null, null], ['Bad', '40', 64]] })),
    );

    expect(bad).toMatchObject({ error: 'targets[1][2] must be a string or null', errorCode: 'info_invalid' });
  });

  it('lists every problem of targets and the other fields at once', async () => {
    const bad = await discoverBad((dir) =>
      writeInfo(dir, 'Bad', osInfo({ targets: [['', null, null], ['Bad', null], 'Bad'], version: 1, maintainer: { name: 'x', email: 'y' } })),
    );

    expect(bad.error).toBe(
      [
        'targets[0][0] must be a non-empty string',
        'targets[1] must be an array [os, version, arch]',
        'targets[2] must be an array [os, version, arch]',
        'version must be a string',
        'maintainer.url must be a string',
      ].join('; '),
    );
  });

  it('reports empty or missing targets', async () => {
    const empty = await discoverBad((dir) => writeInfo(dir, 'Bad', osInfo({ targets: [] })));
    expect(empty.error).toBe('targets must be a non-empty array of [os, version, arch]');

    const cloud = await discoverBad((dir) => writeInfo(dir, 'Bad', infoDoc('cloud', undefined)));
    expect(cloud.error).toBe('targets must be a non-empty array of [target]');
  });

  it('rejects an os target with an arch but no version, which widening from the right never reaches', async () => {
    const bad = await discoverBad((dir) => writeInfo(dir, 'Bad', osInfo({ targets: [['Bad', null, 'x86_64']] })));

    expect(bad.error).toBe('targets[0][2] must be null when targets[0][1] is null (matching widens from the right)');
  });

  it('rejects a cloud target that is not a single name', async () => {
    const bad = await discoverBad((dir) => writeInfo(dir, 'Bad', infoDoc('cloud', [['ec2', 'us-east-1']])));

    expect(bad.error).toBe('targets[0] must be an array [target]');
  });

  it('reports a module that does not exist, with where it was looked for', async () => {
    const bad = await discoverBad((dir) => writeInfo(dir, 'Bad', osInfo({ module: './missing.mjs' })));

    expect(bad).toMatchObject({
      error: `module "./missing.mjs" not found at ${join(bad.dirPath, 'missing.mjs')}`,
      errorCode: 'module_not_found',
      declared: { module: './missing.mjs' },
    });
  });

  it('reports a module that throws on import, with the thrown message', async () => {
    const bad = await discoverBad((dir) => {
      writeModule(dir, 'throws.mjs', 'throw new Error("no hypervisor here");\nexport default () => ({});\n');
      writeInfo(dir, 'Bad', osInfo({ module: './throws.mjs' }));
    });

    expect(bad).toMatchObject({ error: 'module "./throws.mjs" failed to import: no hypervisor here', errorCode: 'module_import_failed' });
  });

  it('reports a module whose default export is not a function', async () => {
    const bad = await discoverBad((dir) => {
      writeModule(dir, 'object.mjs', 'export default { prepare: {} };\n');
      writeInfo(dir, 'Bad', osInfo({ module: './object.mjs' }));
    });

    expect(bad).toMatchObject({
      error: 'module "./object.mjs": default export must be a function returning an OS plugin, got object',
      errorCode: 'module_invalid',
    });
  });

  it('reports a plugin that lacks a step', async () => {
    const bad = await discoverBad((dir) => {
      writeModule(dir, 'nocustomize.mjs', osModuleSource('bad', { omit: 'customize' }));
      writeInfo(dir, 'Bad', osInfo({ module: './nocustomize.mjs' }));
    });

    expect(bad).toMatchObject({
      error: 'module "./nocustomize.mjs": plugin has no customize step (an object with run and undo functions)',
      errorCode: 'module_invalid',
    });
  });

  it('reports a step whose undo is not a function', async () => {
    const bad = await discoverBad((dir) => {
      const step = '{ run: async () => {}, undo: async () => {} }';
      writeModule(dir, 'noundo.mjs', `export default () => ({ prepare: ${step}, install: { run: async () => {}, undo: 'later' }, customize: ${step} });\n`);
      writeInfo(dir, 'Bad', osInfo({ module: './noundo.mjs' }));
    });

    expect(bad.error).toBe('module "./noundo.mjs": install.undo must be a function');
  });

  it('reports a factory that throws or returns nothing', async () => {
    const threw = await discoverBad((dir) => {
      writeModule(dir, 'factory.mjs', 'export default async () => { throw new Error("missing qemu"); };\n');
      writeInfo(dir, 'Bad', osInfo({ module: './factory.mjs' }));
    });
    expect(threw.error).toBe('module "./factory.mjs": plugin factory threw: missing qemu');

    const empty = await discoverBad((dir) => {
      writeModule(dir, 'empty.mjs', 'export default () => undefined;\n');
      writeInfo(dir, 'Bad', osInfo({ module: './empty.mjs' }));
    });
    expect(empty.error).toBe('module "./empty.mjs": plugin factory must return an object with prepare, install and customize steps, got undefined');
  });

  it('reports a module field that is not a path', async () => {
    const bad = await discoverBad((dir) => writeInfo(dir, 'Bad', osInfo({ module: 42 })));

    expect(bad.error).toBe('module must be a non-empty string (a path relative to the .info file)');
  });
});
