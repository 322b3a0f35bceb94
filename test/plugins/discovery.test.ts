import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { OsPlugin, StepContext } from '../../src/os/plugin.js';
import { discoverPlugins, type PluginRegistry } from '../../src/plugins/index.js';
import { infoDoc, MAINTAINER, osModuleSource, tempDirs, writeInfo, writeModule, writeOsPlugin } from './fixtures.js';

const temp = tempDirs();
afterEach(() => temp.removeAll());

/** Runs `prepare.run` of a plugin with a context that only records log lines. */
async function logOfPrepare(plugin: OsPlugin): Promise<string[]> {
  const lines: string[] = [];
  await plugin.prepare.run({ log: (line: string) => lines.push(line) } as unknown as StepContext);
  return lines;
}

function errorOf(registry: PluginRegistry, id: string): string | null | undefined {
  return registry.list().find((entry) => entry.id === id)?.error;
}

describe('plugin discovery', () => {
  it('lists a good os plugin with its .info fields and loads its module', async () => {
    const dir = temp.make();
    writeOsPlugin(dir, 'Fedora', [['Fedora', null, null]]);

    const registry = await discoverPlugins([dir]);

    expect(registry.list()).toEqual([
      {
        id: 'Fedora',
        info: infoDoc('os', [['Fedora', null, null]], { module: './Fedora.mjs' }),
        dir,
        infoPath: join(dir, 'Fedora.info'),
        declared: {
          type: 'os',
          targets: [['Fedora', null, null]],
          description: 'a os plugin for tests',
          maintainer: MAINTAINER,
          version: '1.0',
          license: 'Apache-2.0',
          module: './Fedora.mjs',
        },
        error: null,
        errorCode: null,
        loaded: true,
      },
    ]);
    expect(registry.get('Fedora')?.loaded).toBe(true);
    const found = registry.findOs('Fedora', '40', 'x86_64');
    expect(found?.entry.id).toBe('Fedora');
    expect(await logOfPrepare(found!.plugin)).toEqual(['Fedora:prepare:run']);
  });

  it('awaits a factory that returns a promise', async () => {
    const dir = temp.make();
    writeModule(dir, 'debian.mjs', osModuleSource('debian', { async: true }));
    writeInfo(dir, 'Debian', infoDoc('os', [['Debian', '12', null]], { module: './debian.mjs' }));

    const found = (await discoverPlugins([dir])).findOs('Debian', '12', 'aarch64');

    expect(found?.entry.id).toBe('Debian');
    expect(await logOfPrepare(found!.plugin)).toEqual(['debian:prepare:run']);
  });

  it('finds nothing in a missing directory and still reads the other directories', async () => {
    const dir = temp.make();
    writeOsPlugin(dir, 'Fedora', [['Fedora', null, null]]);

    const registry = await discoverPlugins([join(dir, 'does-not-exist'), dir]);

    expect(registry.list().map((entry) => [entry.id, entry.error])).toEqual([['Fedora', null]]);
  });

  it('ignores files that are not .info files and dotfiles', async () => {
    const dir = temp.make();
    writeOsPlugin(dir, 'Fedora', [['Fedora', null, null]]);
    writeModule(dir, 'README.md', '# not a plugin');
    writeModule(dir, 'Fedora.info~', '{');
    writeInfo(dir, '.hidden', '{');

    expect((await discoverPlugins([dir])).list().map((entry) => entry.id)).toEqual(['Fedora']);
  });

  it('keeps the first plugin of an id and lists a later directory\'s one as a broken duplicate', async () => {
    const first = temp.make();
    const second = temp.make();
    writeOsPlugin(first, 'Fedora', [['Fedora', null, null]], 'first');
    writeOsPlugin(second, 'Fedora', [['Fedora', null, null]], 'second');

    const registry = await discoverPlugins([first, second]);

    expect(registry.list().map((entry) => [entry.id, entry.dir, entry.loaded, entry.error])).toEqual([
      ['Fedora', first, true, null],
      ['Fedora', second, false, `duplicate plugin id "Fedora": already declared in ${first}`],
    ]);
    expect(registry.list()[1]!.info).toEqual(infoDoc('os', [['Fedora', null, null]], { module: './Fedora.mjs' }));
    expect(registry.get('Fedora')?.dir).toBe(first);
    expect(await logOfPrepare(registry.findOs('Fedora', '40', 'x86_64')!.plugin)).toEqual(['first:prepare:run']);
  });

  it('resolves the module of a symlinked .info file beside the real file, as plugins.d symlinks were used', async () => {
    const pluginHome = temp.make();
    const pluginsD = temp.make();
    writeOsPlugin(pluginHome, 'Fedora', [['Fedora', null, null]], 'linked');
    symlinkSync(join(pluginHome, 'Fedora.info'), join(pluginsD, 'Fedora.info'));

    const registry = await discoverPlugins([pluginsD]);

    expect(registry.get('Fedora')).toMatchObject({ dir: pluginsD, error: null, loaded: true });
    expect(await logOfPrepare(registry.findOs('Fedora', '40', 'x86_64')!.plugin)).toEqual(['linked:prepare:run']);
  });

  it('resolves an os plugin without a module through the built-in plugins', async () => {
    const dir = temp.make();
    writeInfo(dir, 'Builtin', infoDoc('os', [['Ubuntu', null, null]]));
    writeInfo(dir, 'Unknown', infoDoc('os', [['Alpine', null, null]]));
    const step = { run: async (ctx: StepContext) => ctx.log('builtin:prepare:run'), undo: async () => {} };
    const builtins = { Builtin: async (): Promise<OsPlugin> => ({ prepare: step, install: step, customize: step }) };

    const registry = await discoverPlugins([dir], { builtins });

    expect(await logOfPrepare(registry.findOs('Ubuntu', '24.04', 'x86_64')!.plugin)).toEqual(['builtin:prepare:run']);
    expect(errorOf(registry, 'Unknown')).toBe('no module given, and there is no built-in plugin "Unknown"');
    expect(registry.findOs('Alpine', '3.20', 'x86_64')).toBeNull();
  });
});

describe('os plugin matching', () => {
  it('lets a plugin for (Fedora, null, null) match any Fedora version and arch', async () => {
    const dir = temp.make();
    writeOsPlugin(dir, 'AnyFedora', [['Fedora', null, null]]);

    const registry = await discoverPlugins([dir]);

    expect(registry.findOs('Fedora', '40', 'x86_64')?.entry.id).toBe('AnyFedora');
    expect(registry.findOs('Fedora', '39', 'aarch64')?.entry.id).toBe('AnyFedora');
  });

  it('prefers the most specific target, widening from the right, whatever the discovery order', async () => {
    const dir = temp.make();
    // File names sort the general plugins first, so order cannot be what picks the specific one.
    writeOsPlugin(dir, 'A-Fedora', [['Fedora', null, null]]);
    writeOsPlugin(dir, 'B-Fedora40', [['Fedora', '40', null]]);
    writeOsPlugin(dir, 'C-Fedora40x86', [['Fedora', '40', 'x86_64']]);

    const registry = await discoverPlugins([dir]);

    expect(registry.findOs('Fedora', '40', 'x86_64')?.entry.id).toBe('C-Fedora40x86');
    expect(registry.findOs('Fedora', '40', 'aarch64')?.entry.id).toBe('B-Fedora40');
    expect(registry.findOs('Fedora', '41', 'x86_64')?.entry.id).toBe('A-Fedora');
  });

  it('gives the plugin discovered first a target that two plugins declare', async () => {
    const dir = temp.make();
    writeOsPlugin(dir, 'First', [['Fedora', null, null]]);
    writeOsPlugin(dir, 'Second', [['Fedora', null, null], ['CentOS', null, null]]);

    const registry = await discoverPlugins([dir]);

    expect(registry.findOs('Fedora', '40', 'x86_64')?.entry.id).toBe('First');
    expect(registry.findOs('CentOS', '9', 'x86_64')?.entry.id).toBe('Second');
  });

  it('returns null when no target matches, comparing names case-sensitively', async () => {
    const dir = temp.make();
    writeOsPlugin(dir, 'Fedora40', [['Fedora', '40', 'x86_64']]);

    const registry = await discoverPlugins([dir]);

    expect(registry.findOs('Debian', '12', 'x86_64')).toBeNull();
    expect(registry.findOs('fedora', '40', 'x86_64')).toBeNull();
    expect(registry.findOs('Fedora', '41', 'x86_64')).toBeNull();
    expect(registry.findOs('Fedora', '40', 'aarch64')).toBeNull();
  });

  it('never matches a broken plugin or a cloud plugin', async () => {
    const dir = temp.make();
    writeInfo(dir, 'Broken', infoDoc('os', [['Fedora', null, null]], { module: './missing.mjs' }));
    writeModule(dir, 'cloud.mjs', 'export default { name: "Fedora cloud" };\n');
    writeInfo(dir, 'FedoraCloud', infoDoc('cloud', [['Fedora']], { module: './cloud.mjs' }));

    const registry = await discoverPlugins([dir]);

    expect(registry.findOs('Fedora', '40', 'x86_64')).toBeNull();
  });
});

describe('cloud plugin matching', () => {
  it('finds a cloud plugin by target and keeps its module\'s default export', async () => {
    const dir = temp.make();
    writeModule(dir, 'ec2.mjs', 'export default { pushes: "ec2" };\n');
    writeInfo(dir, 'EC2', infoDoc('cloud', [['ec2']], { module: './ec2.mjs' }));
    writeModule(dir, 'openstack.mjs', 'export default class OpenStack {}\n');
    writeInfo(dir, 'OpenStack', infoDoc('cloud', [['openstack-kvm'], ['openstack']], { module: './openstack.mjs' }));

    const registry = await discoverPlugins([dir]);

    expect(registry.findCloud('ec2')).toMatchObject({ entry: { id: 'EC2', loaded: true }, plugin: { pushes: 'ec2' } });
    expect(registry.findCloud('openstack')?.entry.id).toBe('OpenStack');
    expect(typeof registry.findCloud('openstack-kvm')?.plugin).toBe('function');
    expect(registry.findCloud('gce')).toBeNull();
    expect(registry.findCloud('EC2')).toBeNull();
  });

  it('loads the shipped cloud plugins as built-ins: one .info per cloud, matched by target name', async () => {
    const registry = await discoverPlugins([new URL('../../conf/plugins.d', import.meta.url).pathname]);
    const ids = Object.fromEntries(['ec2', 'openstack-kvm', 'gce', 'hyperv', 'azure', 'vsphere', 'ova', 'rhevm', 'ovirt', 'libvirt', 'docker', 'raw', 'qcow2', 'vmdk', 'vhd', 'vhdx'].map((t) => [t, registry.findCloud(t)?.entry.id]));
    expect(ids).toEqual({ ec2: 'EC2', 'openstack-kvm': 'OpenStack', gce: 'GCE', hyperv: 'HyperV', azure: 'HyperV', vsphere: 'VSphere', ova: 'OVA', rhevm: 'RHEVM', ovirt: 'RHEVM', libvirt: 'Libvirt', docker: 'Docker', raw: 'Formats', qcow2: 'Formats', vmdk: 'Formats', vhd: 'Formats', vhdx: 'Formats' });
    const ec2 = registry.findCloud('ec2')!.plugin as { check: unknown; adapt: { run: unknown; undo: unknown }; convert: { run: unknown; undo: unknown } };
    expect([typeof ec2.check, typeof ec2.adapt.run, typeof ec2.adapt.undo, typeof ec2.convert.run, typeof ec2.convert.undo]).toEqual(['function', 'function', 'function', 'function', 'function']);
    expect(registry.list().filter((e) => e.error !== null)).toEqual([]);
  });

  it('lists a cloud plugin without a module, or whose module has no default export, as broken', async () => {
    const dir = temp.make();
    writeInfo(dir, 'NoModule', infoDoc('cloud', [['gce']]));
    writeModule(dir, 'named.mjs', 'export const push = () => {};\n');
    writeInfo(dir, 'NoDefault', infoDoc('cloud', [['vsphere']], { module: './named.mjs' }));

    const registry = await discoverPlugins([dir]);

    expect(errorOf(registry, 'NoModule')).toBe('no module given, and there is no built-in cloud plugin "NoModule"');
    expect(errorOf(registry, 'NoDefault')).toBe('module "./named.mjs" has no default export');
    expect(registry.findCloud('gce')).toBeNull();
    expect(registry.findCloud('vsphere')).toBeNull();
  });
});
