import { afterEach, describe, expect, it } from 'vitest';
import { discoverPlugins, toApiPlugin } from '../../src/plugins/index.js';
import { infoDoc, tempDirs, writeInfo, writeOsPlugin } from './fixtures.js';

const temp = tempDirs();
afterEach(() => temp.removeAll());

describe('plugins over REST', () => {
  it('shows a loaded plugin as its .info fields plus _type, id and href, without error', async () => {
    const dir = temp.make();
    writeOsPlugin(dir, 'Fedora', [['Fedora', null, null]]);
    const entry = (await discoverPlugins([dir])).get('Fedora')!;

    expect(toApiPlugin(entry, 'http://localhost:8075')).toEqual({
      ...infoDoc('os', [['Fedora', null, null]], { module: './Fedora.mjs' }),
      _type: 'plugin',
      id: 'Fedora',
      href: 'http://localhost:8075/imagefactory/plugins/Fedora',
    });
  });

  it('adds the error of a broken plugin and ignores a trailing slash of the base href', async () => {
    const dir = temp.make();
    writeInfo(dir, 'Broken', infoDoc('os', [['Fedora', null, null]], { module: './missing.mjs', id: 'spoofed', error: 'spoofed' }));
    const entry = (await discoverPlugins([dir])).get('Broken')!;

    const shown = toApiPlugin(entry, 'https://factory.example/');

    expect(shown).toMatchObject({ _type: 'plugin', id: 'Broken', href: 'https://factory.example/imagefactory/plugins/Broken', type: 'os' });
    expect(shown.error).toMatch(/^module "\.\/missing\.mjs" not found at /);
  });

  it('leaves out an error field a loaded plugin\'s .info happens to carry', async () => {
    const dir = temp.make();
    writeOsPlugin(dir, 'Fedora', [['Fedora', null, null]]);
    writeInfo(dir, 'Fedora', infoDoc('os', [['Fedora', null, null]], { module: './Fedora.mjs', error: 'not really' }));
    const entry = (await discoverPlugins([dir])).get('Fedora')!;

    expect(toApiPlugin(entry, 'http://h')).not.toHaveProperty('error');
  });
});
