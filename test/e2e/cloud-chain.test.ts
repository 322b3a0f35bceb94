import { createHash } from 'node:crypto';
import { createReadStream, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../../bench/providers/fault-proxy.js';
import { startMoto, type Moto } from '../../bench/providers/moto.js';
import { PROJECT_ROOT } from '../../src/version.js';
import { motoCredentialsXml, motoReader, nonZeroBlockHashes, type MotoReader } from '../clouds/providers/moto-readback.js';
import { daemonHome, readEvents, startDaemon, type Daemon } from '../daemon/helpers.js';
import { describeWithTools, tool } from '../tools.js';
import { expectNothingLeftOf } from './faults-helpers.js';

/**
 * The whole pipeline on a live daemon, from one request as the original's
 * clients send it: a provider image with a template builds a real Debian 12
 * base (the ec2 target content merged into its template, so cloud-init is
 * installed by the bootstrap), an `ec2` target from it (adapted without a
 * boot, converted to raw, checksummed) and an AMI in moto through the EBS
 * direct APIs — three machines, linked in their GETs. Then a second push of
 * the same target cancelled mid-upload, an identical target answered from
 * the cache, DELETE from the provider, and a cascade that leaves nothing.
 * One real base for the whole file (the template has no packages of its own).
 */

const ROOTPW = 'chain-Secret-pw';
const TEMPLATE = `<template>
  <name>cloud-chain</name>
  <description>imagefactory base, target and provider from one request</description>
  <os>
    <name>Debian</name><version>12</version><arch>x86_64</arch>
    <install type="url"><url>http://deb.debian.org/debian</url></install>
    <rootpw>${ROOTPW}</rootpw>
  </os>
  <disk><size>2GiB</size></disk>
</template>`;
const BUILD_MS = 30 * 60_000;

type Image = Record<string, any>;
let dir: string;
let moto: Moto;
let reader: MotoReader;
let home: ReturnType<typeof daemonHome>;
let daemon: Daemon;
let credentials: string;
let providerDoc: Record<string, string>;
/** The provider image of the one request, and when it was posted. */
let chain: { id: string; posted: number; events: Promise<{ event: string; data: any }[]> };

const get = async (collection: string, id: string): Promise<{ status: number; image: Image }> => {
  const res = await fetch(`${daemon.url}/imagefactory/${collection}/${id}`);
  const body = (await res.json()) as Record<string, Image>;
  return { status: res.status, image: body[collection.slice(0, -1)] ?? body };
};
const post = async (collection: string, body: unknown) => {
  const res = await fetch(`${daemon.url}/imagefactory/${collection}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, Image> };
};
async function until(collection: string, id: string, done: (i: Image) => boolean, timeoutMs: number): Promise<Image> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const { status, image } = await get(collection, id);
    if (status === 200 && done(image)) return image;
    if (status === 404) throw new Error(`${collection}/${id} is gone`);
    if (Date.now() > end) throw new Error(`${collection}/${id} is ${image.status}/${image.phase} (${image.status_detail?.error})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
const finished = (i: Image) => ['COMPLETE', 'FAILED', 'CANCELLED'].includes(i.status);
async function gone(collection: string, id: string, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while ((await fetch(`${daemon.url}/imagefactory/${collection}/${id}`)).status !== 404) {
    if (Date.now() > end) throw new Error(`${collection}/${id} is still there`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
const body = (id: string) => join(home.dirs.storage, `${id}.body`);

describeWithTools(
  [tool('moto_server', ['--help']), tool('mmdebstrap'), tool('qemu-img'), tool('qemu-storage-daemon'), tool('debugfs', ['-V']), tool('sfdisk')],
  'base → target (ec2) → provider (moto) from one request, on a live daemon',
  () => {
    beforeAll(async () => {
      mkdirSync('/var/tmp/wire', { recursive: true });
      dir = mkdtempSync('/var/tmp/wire/e2e-chain-');
      moto = await startMoto(dir);
      reader = motoReader(moto);
      credentials = motoCredentialsXml(moto);
      providerDoc = { name: 'ec2-us-east-1', endpoint: moto.url };
      home = daemonHome({ target_content: join(PROJECT_ROOT, 'conf', 'target_content.xml'), push_parallel_requests: 4 });
      daemon = await startDaemon(home.config);
      const posted = await post('provider_images', { provider_image: { target: 'ec2', provider: providerDoc, credentials, template: TEMPLATE } });
      expect(posted.status).toBe(202);
      const id = posted.body.provider_image!.id as string;
      chain = { id, posted: Date.now(), events: readEvents(`${daemon.url}/imagefactory/events?id=${id}`, (evs) => evs.some((e) => e.event === 'transition' && ['complete', 'failed'].includes(e.data.transition?.to))) };
    }, 120_000);

    afterAll(async () => {
      reader?.destroy();
      await daemon?.stop();
      await moto?.stop();
      try {
        // No credential in anything the daemon wrote or said.
        if (home && moto) {
          // The warehouse (catalog, its WAL, logs, bodies' records), the work and temp directories; not the cached root trees.
          const files = [home.dirs.storage, home.dirs.imgdir, home.dirs.tmpdir].flatMap((d) =>
            readdirSync(d, { recursive: true, encoding: 'utf8' })
              .map((f) => join(d, f))
              .filter((f) => lstatSync(f).isFile() && !f.endsWith('.body')),
          );
          expect(files.some((f) => f.endsWith('catalog.sqlite'))).toBe(true);
          for (const file of [...files.map((f) => readFileSync(f, 'latin1')), daemon?.output() ?? '']) {
            expect(file.includes(moto.secretAccessKey)).toBe(false);
            expect(file.includes(moto.accessKeyId)).toBe(false);
          }
        }
      } finally {
        home?.remove();
        if (dir) rmSync(dir, { recursive: true, force: true });
      }
    });

    it(
      'completes all three, each its own machine, linked in their GETs; the AMI\'s snapshot holds the raw target\'s non-zero blocks',
      async () => {
        const provider = await until('provider_images', chain.id, finished, BUILD_MS);
        expect(provider.status_detail.error).toBeNull();
        expect(provider.status).toBe('COMPLETE');
        const events = await chain.events;
        // The push's progress fed percent_complete while it uploaded.
        const percents = events.filter((e) => e.data.image.phase === 'uploading').map((e) => e.data.image.percent_complete as number);
        expect(percents.some((p) => p > 0 && p < 90)).toBe(true);

        const target = (await get('target_images', provider.target_image_id)).image;
        const base = (await get('base_images', target.base_image_id)).image;
        // The links, as the original showed them.
        expect(provider.target_image).toMatchObject({ _type: 'TargetImage', id: target.id, href: `${daemon.url}/imagefactory/target_images/${target.id}` });
        expect(target.base_image).toMatchObject({ _type: 'BaseImage', id: base.id });
        expect(target.provider_images.provider_images.map((p: Image) => p.provider_image.id)).toEqual([provider.id]);
        expect(base.target_images.target_images.map((t: Image) => t.target_image.id)).toEqual([target.id]);
        const states = async (collection: string, id: string) => ((await (await fetch(`${daemon.url}/imagefactory/${collection}/${id}/transitions`)).json()) as { to: string }[]).map((t) => t.to);
        expect(await states('base_images', base.id)).toEqual(['queued', 'validating', 'preparing', 'installing', 'customizing', 'snapshotting', 'complete']);
        expect(await states('target_images', target.id)).toEqual(['waiting_for_base', 'queued', 'adapting', 'converting', 'complete']);
        expect(await states('provider_images', provider.id)).toEqual(['waiting_for_target', 'queued', 'uploading', 'registering', 'complete']);

        // The base: the target content was merged into its template, so the bootstrap installed cloud-init.
        expect(base.properties.target_content).toEqual({ target: 'ec2', packages: ['cloud-init', 'cloud-guest-utils', 'amazon-ec2-utils'], repositories: [] });
        expect(base.icicle).toMatch(/<package name="cloud-init_/);
        expect(base.template).not.toContain(ROOTPW);
        // The target: adapted without a boot, converted to raw, its body checksummed; the base body untouched.
        // (Only cloud-init's configuration file of the ec2 plugin is written, with debugfs.)
        expect(target.properties.adaptation).toMatchObject({ booted: false, reason: 'the base has the packages and drivers; configuration files were written without a boot' });
        expect(target.properties).toMatchObject({ format: 'raw', base_sha256: base.properties.sha256, conversion: { format: 'raw', commands: [expect.stringMatching(/^qemu-img convert /)] } });
        expect(await sha256(body(target.id))).toBe(target.properties.sha256);
        expect(statSync(body(target.id)).size).toBe(target.properties.size);
        expect(await sha256(body(base.id))).toBe(base.properties.sha256);

        // The provider: an AMI moto describes, from a snapshot holding exactly the target's non-zero blocks.
        expect(provider.identifier_on_provider).toMatch(/^ami-/);
        expect(provider.provider_account_identifier).toBe('123456789012');
        expect(await reader.images()).toEqual([provider.identifier_on_provider]);
        const snapshotId = provider.properties.push.snapshot_id as string;
        expect(provider.properties.provider_resources).toEqual([
          { kind: 'ec2-snapshot', id: snapshotId },
          { kind: 'ec2-image', id: provider.identifier_on_provider },
        ]);
        const expected = await nonZeroBlockHashes(body(target.id));
        expect(provider.properties.push.blocks_sent).toBe(expected.size);
        expect(await reader.snapshotBlockHashes(snapshotId)).toEqual(expected);
        const at = async (collection: string, id: string, to: string) => Date.parse(((await (await fetch(`${daemon.url}/imagefactory/${collection}/${id}/transitions`)).json()) as { to: string; at: string }[]).find((t) => t.to === to)!.at);
        const seconds = (a: number, b: number) => Math.round((b - a) / 100) / 10;
        const [baseAdmitted, targetAdmitted, pushAdmitted] = [await at('base_images', base.id, 'validating'), await at('target_images', target.id, 'adapting'), await at('provider_images', provider.id, 'uploading')];
        const [baseDone, targetDone, pushDone] = [await at('base_images', base.id, 'complete'), await at('target_images', target.id, 'complete'), await at('provider_images', provider.id, 'complete')];
        console.log(
          `chain ${Math.round((Date.now() - chain.posted) / 1000)} s: base ${seconds(baseAdmitted, baseDone)} s, target ${seconds(targetAdmitted, targetDone)} s, push ${seconds(pushAdmitted, pushDone)} s ` +
            `(${expected.size} blocks, ${provider.properties.push.bytes_sent} bytes sent of a ${target.properties.size}-byte raw target)`,
        );
      },
      BUILD_MS,
    );

    it('answers an identical target request at once from the cache', async () => {
      const provider = (await get('provider_images', chain.id)).image;
      const target = (await get('target_images', provider.target_image_id)).image;
      const started = Date.now();
      const posted = await post(`base_images/${target.base_image_id}/target_images`, { target_image: { target: 'ec2' } });
      expect(posted.status).toBe(202);
      const again = await until('target_images', posted.body.target_image!.id, finished, 10_000);
      expect(Date.now() - started).toBeLessThan(2000);
      expect(again).toMatchObject({ status: 'COMPLETE', properties: { cache_hit_of: target.id, sha256: target.properties.sha256 } });
      expect(statSync(body(again.id)).ino).toBe(statSync(body(target.id)).ino);
    });

    it(
      'cancels a second push of the target mid-upload: CANCELLED, and nothing of it left in moto',
      async () => {
        const target = (await get('target_images', (await get('provider_images', chain.id)).image.target_image_id)).image;
        // Every block a little slow, so that the cancel lands in the middle of the upload.
        const proxy: FaultProxy = await startFaultProxy(moto.url, { slowMs: 300, plan: ({ method, path }) => (method === 'PUT' && /\/blocks\/\d+$/.test(path) ? 'slow' : undefined) });
        try {
          const [snapshots, images] = [await reader.snapshots(), await reader.images()];
          const posted = await post(`target_images/${target.id}/provider_images`, { provider_image: { target: 'ec2', provider: { ...providerDoc, endpoint: proxy.url }, credentials } });
          expect(posted.status).toBe(202);
          const id = posted.body.provider_image!.id as string;
          const uploading = await until(
            'provider_images',
            id,
            // A block on its way through the proxy: the snapshot exists and the upload has begun (the zero-block scan alone moves the percentage).
            (i) => finished(i) || (i.phase === 'uploading' && (i.properties.provider_resources ?? []).length > 0 && proxy.counts.slow > 0),
            120_000,
          );
          expect(uploading.phase).toBe('uploading');
          const cancel = await fetch(`${daemon.url}/imagefactory/provider_images/${id}/cancel`, { method: 'POST' });
          expect(cancel.status).toBe(202);
          const done = await until('provider_images', id, finished, 120_000);
          expect(done.status).toBe('CANCELLED');
          expect(done.properties.removed_from_provider).toEqual(uploading.properties.provider_resources);
          expect(proxy.counts.slow).toBeGreaterThan(0);
          expect(await reader.snapshots()).toEqual(snapshots);
          expect(await reader.images()).toEqual(images);
          await expectNothingLeftOf(id, home, daemon);
        } finally {
          await proxy.stop();
        }
      },
      5 * 60_000,
    );

    it('DELETE with provider and credentials removes the AMI and its snapshot from moto', async () => {
      const provider = (await get('provider_images', chain.id)).image;
      const res = await fetch(`${daemon.url}/imagefactory/provider_images/${provider.id}`, {
        method: 'DELETE',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ provider_image: { provider: providerDoc, credentials, target: 'ec2' } }),
      });
      expect(res.status).toBe(204);
      await gone('provider_images', provider.id);
      expect(await reader.images()).toEqual([]);
      expect(await reader.taggedWith(provider.id)).toEqual([]);
      expect(await reader.snapshots()).not.toContain(provider.properties.push.snapshot_id);
    });

    it('refuses to delete the base while it has targets; a cascade leaves nothing of the chain on disk', async () => {
      const bases = ((await (await fetch(`${daemon.url}/imagefactory/base_images`)).json()) as { base_images: { base_image: Image }[] }).base_images.map((b) => b.base_image.id as string);
      expect(bases).toHaveLength(1);
      const refused = await fetch(`${daemon.url}/imagefactory/base_images/${bases[0]}`, { method: 'DELETE' });
      expect(refused.status).toBe(409);
      const cascade = await fetch(`${daemon.url}/imagefactory/base_images/${bases[0]}?cascade=true`, { method: 'DELETE' });
      expect(cascade.status).toBe(204);
      await gone('base_images', bases[0]!);
      for (const collection of ['base_images', 'target_images', 'provider_images']) {
        expect(((await (await fetch(`${daemon.url}/imagefactory/${collection}`)).json()) as Record<string, unknown[]>)[collection]).toEqual([]);
      }
      expect(readdirSync(home.dirs.storage).filter((f) => f.includes('.body'))).toEqual([]);
      expect(home.leftovers()).toEqual([]);
    });
  },
);
