import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { Catalog, SCHEMA_VERSION, StoreError } from '../../src/store/index.js';
import { STATUSES, type ImageRecord } from '../../src/model/index.js';
import { imageRecord, useTempDirs } from './helpers.js';

const tempDir = useTempDirs('ifstore-catalog-');
const open: Catalog[] = [];
afterEach(() => {
  for (const c of open.splice(0)) c.close();
});

function openCatalog(file = join(tempDir(), 'catalog.sqlite')): Catalog {
  const c = Catalog.open(file);
  open.push(c);
  return c;
}

function expectStoreError(fn: () => unknown, code: string): StoreError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(StoreError);
    expect((e as StoreError).code).toBe(code);
    return e as StoreError;
  }
  throw new Error(`expected a StoreError ${code}, nothing was thrown`);
}

function family(c: Catalog) {
  const base = imageRecord();
  const otherBase = imageRecord();
  const target = imageRecord({ kind: 'TargetImage', baseImageId: base.id, target: 'ec2', template: null });
  const qcow = imageRecord({ kind: 'TargetImage', baseImageId: base.id, target: 'qcow2', template: null, status: 'COMPLETE' });
  const provider = imageRecord({ kind: 'ProviderImage', targetImageId: target.id, target: 'ec2', provider: 'ec2-us-east-1', template: null });
  for (const r of [base, otherBase, target, qcow, provider]) c.insertImage(r);
  return { base, otherBase, target, qcow, provider };
}

describe('opening a catalog', () => {
  it('creates the parent directory and the file, in WAL mode at the current schema version', () => {
    const file = join(tempDir(), 'deep', 'er', 'catalog.sqlite');
    openCatalog(file).close();
    expect(existsSync(file)).toBe(true);
    const db = new Database(file, { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    } finally {
      db.close();
    }
  });

  it('keeps the images across a close and a reopen, and migrates nothing twice', () => {
    const file = join(tempDir(), 'catalog.sqlite');
    const rec = imageRecord();
    const first = openCatalog(file);
    first.insertImage(rec);
    first.close();
    expect(openCatalog(file).getImage(rec.id)).toEqual(rec);
  });

  it('refuses a file that is not a database with store_corrupt', () => {
    const file = join(tempDir(), 'catalog.sqlite');
    writeFileSync(file, 'this is not a database, only some text that is long enough to have a header'.repeat(20));
    expectStoreError(() => Catalog.open(file), 'store_corrupt');
  });

  it('refuses a catalog written by a newer schema with store_too_new', () => {
    const file = join(tempDir(), 'catalog.sqlite');
    const db = new Database(file);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    expectStoreError(() => Catalog.open(file), 'store_too_new');
  });

  it('reports a sound file as having no integrity problems', () => {
    const c = openCatalog();
    family(c);
    expect(c.integrityCheck()).toEqual([]);
  });
});

describe('image records', () => {
  it('round-trips every field of a fully populated provider image', () => {
    const c = openCatalog();
    const rec = imageRecord({
      kind: 'ProviderImage',
      status: 'FAILED',
      phase: 'uploading',
      activity: 'Uploading 3/7 — ünïcödé',
      error: { code: 'upload_failed', message: 'connection reset', details: { attempt: 3, tail: ['a', 'b'], nested: { ok: false } } },
      percentComplete: 37.5,
      template: '<template><name>full</name></template>',
      icicle: '<icicle><packages/></icicle>',
      parameters: { callbacks: ['http://127.0.0.1:9/cb'], generate_icicle: true, n: 1.25, none: null },
      properties: { sha256: 'ab'.repeat(32), size: 123456789 },
      baseImageId: 'b-1',
      targetImageId: 't-1',
      target: 'ec2',
      provider: 'ec2-us-east-1',
      identifierOnProvider: 'ami-0123456789abcdef0',
      providerAccountIdentifier: '123456789012',
      bodyPath: '/var/lib/imagefactory/storage/x.body',
      deadline: 1_714_560_000_123,
    });
    c.insertImage(rec);
    expect(c.getImage(rec.id)).toEqual(rec);
  });

  it('round-trips null fields as null and empty JSON objects as empty objects', () => {
    const c = openCatalog();
    const rec = imageRecord({ template: null, icicle: null, error: null, parameters: {}, properties: {} });
    c.insertImage(rec);
    const back = c.getImage(rec.id)!;
    expect(back).toEqual(rec);
    for (const key of Object.keys(rec) as (keyof ImageRecord)[]) {
      if (rec[key] === null) expect(back[key], key).toBeNull();
    }
  });

  it('accepts every status the API knows', () => {
    const c = openCatalog();
    for (const status of STATUSES) {
      const rec = imageRecord({ status });
      c.insertImage(rec);
      expect(c.getImage(rec.id)!.status).toBe(status);
    }
  });

  it('answers null for an unknown id', () => {
    expect(openCatalog().getImage('no-such-image')).toBeNull();
  });

  it('refuses a second image with the same id with image_exists', () => {
    const c = openCatalog();
    const rec = imageRecord();
    c.insertImage(rec);
    expectStoreError(() => c.insertImage({ ...rec, status: 'BUILDING' }), 'image_exists');
    expect(c.getImage(rec.id)!.status).toBe('NEW');
  });

  it('refuses a status outside the API with invalid_record', () => {
    const c = openCatalog();
    expectStoreError(() => c.insertImage(imageRecord({ status: 'DONE' as never })), 'invalid_record');
    expect(c.listImages()).toEqual([]);
  });

  it('reports a row whose JSON was damaged as store_corrupt', () => {
    const file = join(tempDir(), 'catalog.sqlite');
    const c = openCatalog(file);
    const rec = imageRecord();
    c.insertImage(rec);
    const db = new Database(file);
    db.prepare('UPDATE images SET parameters = ? WHERE id = ?').run('{not json', rec.id);
    db.close();
    expectStoreError(() => c.getImage(rec.id), 'store_corrupt');
  });
});

describe('listing images', () => {
  it('lists every image oldest first when no filter is given', () => {
    const c = openCatalog();
    const late = imageRecord({ created: '2030-01-01T00:00:00.000Z' });
    const early = imageRecord({ created: '2020-01-01T00:00:00.000Z' });
    c.insertImage(late);
    c.insertImage(early);
    expect(c.listImages().map((r) => r.id)).toEqual([early.id, late.id]);
  });

  it('keeps insertion order between images created in the same millisecond', () => {
    const c = openCatalog();
    const ids = Array.from({ length: 5 }, () => imageRecord({ created: '2024-01-01T00:00:00.000Z' }));
    for (const r of ids) c.insertImage(r);
    expect(c.listImages().map((r) => r.id)).toEqual(ids.map((r) => r.id));
  });

  it('filters by kind, by base image, by target image and by status, and combines filters', () => {
    const c = openCatalog();
    const { base, otherBase, target, qcow, provider } = family(c);
    const ids = (rs: ImageRecord[]) => rs.map((r) => r.id);
    expect(ids(c.listImages({ kind: 'BaseImage' }))).toEqual([base.id, otherBase.id]);
    expect(ids(c.listImages({ kind: 'ProviderImage' }))).toEqual([provider.id]);
    expect(ids(c.listImages({ baseImageId: base.id }))).toEqual([target.id, qcow.id]);
    expect(ids(c.listImages({ baseImageId: otherBase.id }))).toEqual([]);
    expect(ids(c.listImages({ targetImageId: target.id }))).toEqual([provider.id]);
    expect(ids(c.listImages({ statuses: ['COMPLETE'] }))).toEqual([qcow.id]);
    expect(ids(c.listImages({ statuses: ['NEW', 'COMPLETE'], kind: 'TargetImage' }))).toEqual([target.id, qcow.id]);
    expect(ids(c.listImages({ statuses: ['NEW'], baseImageId: base.id }))).toEqual([target.id]);
    expect(c.listImages({ statuses: [] })).toEqual([]);
  });

  it('lists as unfinished exactly the images whose status is not final', () => {
    const c = openCatalog();
    const byStatus = STATUSES.map((status) => imageRecord({ status }));
    for (const r of byStatus) c.insertImage(r);
    expect(c.unfinished().map((r) => r.status)).toEqual(['NEW', 'PENDING', 'BUILDING', 'DELETING']);
  });

  it('names the targets of a base and the providers of a target as their children', () => {
    const c = openCatalog();
    const { base, otherBase, target, qcow, provider } = family(c);
    expect(c.children(base.id).map((r) => r.id)).toEqual([target.id, qcow.id]);
    expect(c.children(target.id).map((r) => r.id)).toEqual([provider.id]);
    expect(c.children(otherBase.id)).toEqual([]);
    expect(c.children(provider.id)).toEqual([]);
    expect(c.children('no-such-image')).toEqual([]);
  });
});

describe('updating an image', () => {
  it('changes only the given fields, sets updated to now and returns the stored record', () => {
    const c = openCatalog();
    const rec = imageRecord();
    c.insertImage(rec);
    const before = Date.now();
    const out = c.updateImage(rec.id, {
      status: 'BUILDING',
      percentComplete: 42,
      properties: { size: 7 },
      error: { code: 'x', message: 'y' },
      bodyPath: '/s/x.body',
    });
    expect(out).toEqual(c.getImage(rec.id));
    expect(out).toMatchObject({ status: 'BUILDING', percentComplete: 42, properties: { size: 7 }, error: { code: 'x', message: 'y' } });
    expect({ ...out, status: rec.status, percentComplete: 0, properties: {}, error: null, bodyPath: null, updated: rec.updated }).toEqual(rec);
    expect(out.updated).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(Date.parse(out.updated)).toBeGreaterThanOrEqual(before - 1);
    expect(out.created).toBe(rec.created);
  });

  it('sets a field to null when the patch says null and leaves it alone when the patch says undefined', () => {
    const c = openCatalog();
    const rec = imageRecord({ error: { code: 'e', message: 'm' }, bodyPath: '/b' });
    c.insertImage(rec);
    const out = c.updateImage(rec.id, { error: null, bodyPath: undefined });
    expect(out.error).toBeNull();
    expect(out.bodyPath).toBe('/b');
  });

  it('throws image_not_found for an unknown id', () => {
    const err = expectStoreError(() => openCatalog().updateImage('no-such-image', { status: 'FAILED' }), 'image_not_found');
    expect(err.message).toContain('no-such-image');
  });

  it('refuses to patch identity fields with invalid_record', () => {
    const c = openCatalog();
    const rec = imageRecord();
    c.insertImage(rec);
    expectStoreError(() => c.updateImage(rec.id, { id: 'other' } as never), 'invalid_record');
    expectStoreError(() => c.updateImage(rec.id, { kind: 'TargetImage' } as never), 'invalid_record');
    expectStoreError(() => c.updateImage(rec.id, { href: '/x' } as never), 'invalid_record');
    expect(c.getImage(rec.id)).toEqual(rec);
  });

  it('refuses a JSON field that cannot be serialized with not_serializable and changes nothing', () => {
    const c = openCatalog();
    const rec = imageRecord();
    c.insertImage(rec);
    expectStoreError(() => c.updateImage(rec.id, { status: 'BUILDING', properties: { big: 1n } }), 'not_serializable');
    expect(c.getImage(rec.id)).toEqual(rec);
  });
});

describe('deleting an image', () => {
  it('removes the row, its transitions and its snapshot, and leaves other images alone', () => {
    const c = openCatalog();
    const { base, target } = family(c);
    c.recordTransition({ imageId: base.id, from: 'queued', to: 'validating', event: 'START' }, {}, { value: 'validating' });
    c.recordTransition({ imageId: target.id, from: 'queued', to: 'waiting_for_base', event: 'START' }, {}, { value: 'w' });
    c.deleteImage(base.id);
    expect(c.getImage(base.id)).toBeNull();
    expect(c.transitions(base.id)).toEqual([]);
    expect(c.loadSnapshot(base.id)).toBeNull();
    expect(c.transitions(target.id)).toHaveLength(1);
    expect(c.loadSnapshot(target.id)).toEqual({ value: 'w' });
    expect(c.listImages()).toHaveLength(4);
    expect(c.integrityCheck()).toEqual([]);
  });

  it('throws image_not_found for an unknown id', () => {
    expectStoreError(() => openCatalog().deleteImage('no-such-image'), 'image_not_found');
  });
});
