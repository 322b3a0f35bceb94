import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { mergeTargetContent, parseTargetContent, targetContentFor } from '../../src/clouds/target-content.js';
import { SHIPPED_PLUGINS } from '../../src/compose.js';
import { baseCacheKey } from '../../src/engine/cache-key.js';
import { parseTdlOrThrow } from '../../src/tdl/index.js';
import { describeWithTools, tool } from '../tools.js';
import { TEST_PLUGINS, testEngine, testTemplate, waitFor, waitForPhase } from './helpers.js';

/**
 * Target builds through the engine with the shipped cloud plugins and real
 * qemu-img, from the test OS plugin's small raw disks: the wiring (context,
 * checksum, records, cache, merge, deletion) on targets that need nothing
 * inside the image. The formats themselves are the cloud tests' (test/clouds/).
 */

const CONTENT = `<template_includes>
  <include target="ec2" os="TestOS"><packages><package name="cloud-init"/><package name="amazon-ec2-utils"/></packages></include>
</template_includes>`;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function started(more: Parameters<typeof testEngine>[0] = {}) {
  const t = await testEngine({ pluginDirs: [TEST_PLUGINS, SHIPPED_PLUGINS], ...more });
  const contentPath = join(t.root, 'target_content.xml');
  writeFileSync(contentPath, CONTENT);
  // The same storage with the target content file: what a daemon configured with `target_content` has.
  await t.engine.shutdown();
  const engine = await t.restart({ targetContentPath: contentPath });
  cleanups.push(() => t.cleanup(engine));
  return { ...t, engine, contentPath, restart: (m: Parameters<typeof t.restart>[0] = {}) => t.restart({ targetContentPath: contentPath, ...m }) };
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const qemuInfo = (file: string) => JSON.parse(execFileSync('qemu-img', ['info', '--output=json', file]).toString()) as { format: string; 'virtual-size': number };
/** What is in the warehouse besides the catalog and the logs: bodies, partial bodies, temp files. */
const bodiesIn = (storage: string) => readdirSync(storage).filter((f) => !/^(catalog|logs|secret|\.tmp|lock)/.test(f));

describeWithTools([tool('qemu-img')], 'target builds through the engine', () => {
  it('converts a base with the target\'s plugin: body checksummed, frozen, recorded with its conversion; the base untouched', async () => {
    const { engine, leftovers, opts } = await started();
    const base = await waitFor(engine, engine.submitBaseImage({ template: testTemplate('ok') }).id, ['COMPLETE']);
    const baseSha = sha256(base.bodyPath!);
    const target = engine.submitTargetImage({ target: 'qcow2', baseImageId: base.id });
    const done = await waitFor(engine, target.id, ['COMPLETE', 'FAILED']);
    expect(done.error).toBeNull();
    expect(engine.transitions(target.id).map((t) => t.to)).toEqual(['waiting_for_base', 'queued', 'adapting', 'converting', 'complete']);
    expect(done.percentComplete).toBe(100);
    expect(done.bodyPath).toBe(join(opts.storagePath, `${target.id}.body`));
    expect(qemuInfo(done.bodyPath!)).toMatchObject({ format: 'qcow2', 'virtual-size': 4 * 1024 * 1024 });
    expect(done.properties).toMatchObject({
      sha256: sha256(done.bodyPath!),
      size: statSync(done.bodyPath!).size,
      format: 'qcow2',
      disk_format: 'qcow2',
      base_sha256: base.properties.sha256,
      cloud_plugin: { id: 'Formats', version: '1.0' },
      conversion: { format: 'qcow2', qemu_format: 'qcow2', commands: [expect.stringMatching(/^qemu-img convert .*-O qcow2/)] },
      adaptation: { booted: false },
    });
    expect(done.baseImageId).toBe(base.id);
    expect(statSync(done.bodyPath!).mode & 0o222).toBe(0);
    expect(sha256(base.bodyPath!)).toBe(baseSha);
    expect(base.properties.sha256).toBe(baseSha);
    expect(leftovers()).toEqual([]);
  });

  it('checks the target\'s parameters with its plugin at submission: nothing is built for a bad one', async () => {
    const { engine } = await started();
    const base = await waitFor(engine, engine.submitBaseImage({ template: testTemplate('ok') }).id, ['COMPLETE']);
    const before = engine.listImages().length;
    expect(() => engine.submitTargetImage({ target: 'rhevm', baseImageId: base.id, parameters: { rhevm_image_format: 'vmdk' } })).toThrowError(
      expect.objectContaining({ code: 'bad_parameter', message: expect.stringContaining('rhevm_image_format') }),
    );
    expect(() => engine.submitTargetImage({ target: 'ec2', template: testTemplate('ok'), parameters: { ec2_virt_type: 'paravirtual' } })).toThrowError(expect.objectContaining({ code: 'not_supported' }));
    expect(engine.listImages()).toHaveLength(before);
    // rhevm takes its format's default from the configuration (rhevm_image_format).
    const raw = await waitFor(engine, engine.submitTargetImage({ target: 'rhevm', baseImageId: base.id, parameters: { rhevm_image_format: 'raw' } }).id, ['COMPLETE', 'FAILED']);
    expect(qemuInfo(raw.bodyPath!).format).toBe('raw');
  });

  it('from a template, merges the target content into the base template (kept for a restart) and builds the chain', async () => {
    const t = await started({ timeoutSeconds: 120 });
    const target = t.engine.submitTargetImage({ target: 'ec2', template: testTemplate('slow'), parameters: { skip_ec2_modifications: true } });
    const baseId = target.baseImageId!;
    const content = { packages: ['cloud-init', 'amazon-ec2-utils'], repositories: [] };
    expect(t.engine.getImage(baseId)!.properties.target_content).toEqual({ target: 'ec2', ...content });
    // A restart in the middle of the base: the resumed build merges the same content again.
    await waitForPhase(t.engine, baseId, 'installing');
    await t.engine.shutdown();
    const again = await t.restart();
    cleanups.push(() => again.shutdown());
    const done = await waitFor(again, target.id, ['COMPLETE', 'FAILED']);
    expect(done.error).toBeNull();
    const base = again.getImage(baseId)!;
    const merged = mergeTargetContent(parseTdlOrThrow(testTemplate('slow')), content);
    expect(merged.packages.map((p) => p.name)).toEqual(['cloud-init', 'amazon-ec2-utils']);
    expect(base.properties.cache_key).toBe(baseCacheKey(merged, { id: 'TestOS', version: '1.0' }, { skip_ec2_modifications: true }));
    expect(base.template).toBe(testTemplate('slow'));
    expect(done.properties).toMatchObject({ format: 'raw', adaptation: { reason: 'the target needs nothing in the image' } });
    expect(qemuInfo(done.bodyPath!).format).toBe('raw');
    expect(readFileSync(done.bodyPath!).equals(readFileSync(base.bodyPath!))).toBe(true);
  });

  it('answers an identical target at once from the cache (a hard link), builds again with rebuild=true or other parameters', async () => {
    const { engine } = await started();
    const first = await waitFor(engine, engine.submitTargetImage({ target: 'vmdk', template: testTemplate('ok') }).id, ['COMPLETE']);
    const t0 = Date.now();
    const again = await waitFor(engine, engine.submitTargetImage({ target: 'vmdk', template: testTemplate('ok') }).id, ['COMPLETE', 'FAILED']);
    expect(Date.now() - t0).toBeLessThan(2000);
    // Its base was a cache hit too, so its base body's sha256 is the same: the target's key matches.
    expect(engine.transitions(again.baseImageId!).map((t) => t.event)).toContain('cache_hit');
    expect(engine.transitions(again.id).map((t) => [t.to, t.event]).slice(-2)).toEqual([['adapting', 'ADMIT'], ['complete', 'cache_hit']]);
    expect(again.properties).toMatchObject({ sha256: first.properties.sha256, size: first.properties.size, conversion: first.properties.conversion, cache_hit_of: first.id, cache_key: first.properties.cache_key });
    expect(statSync(again.bodyPath!).ino).toBe(statSync(first.bodyPath!).ino);

    const forced = await waitFor(engine, engine.submitTargetImage({ target: 'vmdk', baseImageId: first.baseImageId!, parameters: { rebuild: true } }).id, ['COMPLETE']);
    expect(engine.transitions(forced.id).map((t) => t.to)).toContain('converting');
    const other = await waitFor(engine, engine.submitTargetImage({ target: 'vhd', baseImageId: first.baseImageId! }).id, ['COMPLETE']);
    expect(other.properties.cache_hit_of).toBeUndefined();
  });

  it('refuses to delete a base with targets (conflict); a cascade leaves nothing of either on disk', async () => {
    const { engine, opts, leftovers } = await started();
    const target = await waitFor(engine, engine.submitTargetImage({ target: 'vhdx', template: testTemplate('ok') }).id, ['COMPLETE']);
    const base = engine.getImage(target.baseImageId!)!;
    expect(bodiesIn(opts.storagePath).sort()).toEqual([`${base.id}.body`, `${target.id}.body`].sort());
    expect(() => engine.deleteImage(base.id)).toThrowError(expect.objectContaining({ code: 'conflict', details: { children: [target.id] } }));
    const gone = new Promise<void>((resolve) => engine.subscribe((e) => e.type === 'deleted' && e.image.id === base.id && resolve()));
    engine.deleteImage(base.id, { cascade: true });
    await gone;
    expect([engine.getImage(base.id), engine.getImage(target.id)]).toEqual([null, null]);
    expect(bodiesIn(opts.storagePath)).toEqual([]);
    expect(leftovers()).toEqual([]);
  });

  it('answers an invalid template, when asked to, with the image FAILED at once and the precise error in its record', async () => {
    const { engine } = await started();
    const bad = '<template>\n<name>x</name>\n<os><name>D</name><version>1</version><arch>sparc</arch><install type="url"><url>http://m/</url></install></os></template>';
    expect(() => engine.submitTargetImage({ target: 'ec2', template: bad })).toThrowError(expect.objectContaining({ code: 'template_invalid' }));
    const failed = engine.submitTargetImage({ target: 'ec2', template: bad, parameters: { a: 1 } }, { invalidTemplate: 'fail' });
    expect(failed).toMatchObject({ kind: 'TargetImage', status: 'FAILED', phase: 'failed', target: 'ec2', template: bad, parameters: { a: 1 }, baseImageId: null });
    expect(failed.error).toMatchObject({ code: 'template_invalid', message: expect.stringMatching(/^line 3, col 39: \/template\/os\/arch/), details: { errors: [expect.objectContaining({ line: 3 })] } });
    expect(engine.transitions(failed.id).map((t) => [t.from, t.to, t.event])).toEqual([[null, 'failed', 'template_invalid']]);
    expect(engine.listImages()).toHaveLength(1);
  });
});

describe('target content selection at submission', () => {
  it('is the file the engine is configured with, read again when it changes', async () => {
    const file = parseTargetContent(CONTENT);
    expect(targetContentFor(file, 'ec2', parseTdlOrThrow(testTemplate('ok')))).toEqual({ packages: ['cloud-init', 'amazon-ec2-utils'], repositories: [] });
    const t = await started();
    writeFileSync(t.contentPath, CONTENT.replace('amazon-ec2-utils', 'cloud-guest-utils') + '\n');
    const target = t.engine.submitTargetImage({ target: 'ec2', template: testTemplate('ok'), parameters: { skip_ec2_modifications: true } });
    expect(t.engine.getImage(target.baseImageId!)!.properties.target_content).toMatchObject({ packages: ['cloud-init', 'cloud-guest-utils'] });
    writeFileSync(t.contentPath, '<template_includes><include target="ec2"><oops/></include></template_includes>');
    expect(() => t.engine.submitTargetImage({ target: 'ec2', template: testTemplate('ok') })).toThrowError(expect.objectContaining({ code: 'target_content_invalid' }));
    await waitFor(t.engine, target.id, ['COMPLETE', 'FAILED']);
  });
});
