import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Catalog, StoreError } from '../../src/store/index.js';
import { imageRecord, useTempDirs } from './helpers.js';

const tempDir = useTempDirs('ifstore-transitions-');
const open: Catalog[] = [];
afterEach(() => {
  for (const c of open.splice(0)) c.close();
});

function openCatalog(file = join(tempDir(), 'catalog.sqlite')): Catalog {
  const c = Catalog.open(file);
  open.push(c);
  return c;
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(StoreError);
    return (e as StoreError).code;
  }
  throw new Error('expected a StoreError, nothing was thrown');
}

describe('recording transitions', () => {
  it('numbers transitions per image from 1 and lists them oldest first', () => {
    const c = openCatalog();
    const a = imageRecord();
    const b = imageRecord();
    c.insertImage(a);
    c.insertImage(b);
    const steps = ['validating', 'preparing', 'installing', 'customizing'];
    let from: string | null = null;
    for (const [i, to] of steps.entries()) {
      const t = c.recordTransition({ imageId: a.id, from, to, event: `E${i}`, at: `2024-05-01T10:00:0${i}.000Z` }, {}, { value: to });
      expect(t).toEqual({ imageId: a.id, seq: i + 1, from, to, event: `E${i}`, at: `2024-05-01T10:00:0${i}.000Z` });
      if (i === 1) expect(c.recordTransition({ imageId: b.id, from: null, to: 'validating', event: 'START' }, {}, {}).seq).toBe(1);
      from = to;
    }
    expect(c.transitions(a.id).map((t) => [t.seq, t.from, t.to])).toEqual([
      [1, null, 'validating'],
      [2, 'validating', 'preparing'],
      [3, 'preparing', 'installing'],
      [4, 'installing', 'customizing'],
    ]);
    expect(c.transitions(b.id).map((t) => t.seq)).toEqual([1]);
    expect(c.transitions('no-such-image')).toEqual([]);
  });

  it('sets the phase to the new state, applies the patch and stamps updated with the transition time', () => {
    const c = openCatalog();
    const rec = imageRecord();
    c.insertImage(rec);
    const at = '2031-02-03T04:05:06.789Z';
    c.recordTransition({ imageId: rec.id, from: 'queued', to: 'failed', event: 'ERROR', at }, { status: 'FAILED', error: { code: 'boom', message: 'it broke' }, phase: 'ignored' }, { value: 'failed' });
    expect(c.getImage(rec.id)).toEqual({ ...rec, status: 'FAILED', phase: 'failed', error: { code: 'boom', message: 'it broke' }, updated: at });
  });

  it('stamps the transition with the current time when none is given', () => {
    const c = openCatalog();
    const rec = imageRecord();
    c.insertImage(rec);
    const before = Date.now();
    const t = c.recordTransition({ imageId: rec.id, from: null, to: 'validating', event: 'START' }, {}, {});
    expect(t.at).toMatch(/Z$/);
    expect(Date.parse(t.at)).toBeGreaterThanOrEqual(before - 1);
    expect(c.getImage(rec.id)!.updated).toBe(t.at);
  });

  it('replaces the persisted snapshot with each transition and keeps it when the snapshot is undefined', () => {
    const c = openCatalog();
    const rec = imageRecord();
    c.insertImage(rec);
    expect(c.loadSnapshot(rec.id)).toBeNull();
    c.recordTransition({ imageId: rec.id, from: null, to: 'validating', event: 'START' }, {}, { value: 'validating', context: { n: 1 } });
    c.recordTransition({ imageId: rec.id, from: 'validating', to: 'preparing', event: 'OK' }, {}, { value: 'preparing', context: { n: 2 } });
    expect(c.loadSnapshot(rec.id)).toEqual({ value: 'preparing', context: { n: 2 } });
    c.recordTransition({ imageId: rec.id, from: 'preparing', to: 'installing', event: 'OK' }, {}, undefined);
    expect(c.loadSnapshot(rec.id)).toEqual({ value: 'preparing', context: { n: 2 } });
    expect(c.loadSnapshot('no-such-image')).toBeNull();
  });

  it('throws image_not_found for an unknown image and writes nothing', () => {
    const c = openCatalog();
    expect(codeOf(() => c.recordTransition({ imageId: 'ghost', from: null, to: 'x', event: 'E' }, {}, {}))).toBe('image_not_found');
    expect(c.transitions('ghost')).toEqual([]);
    expect(c.loadSnapshot('ghost')).toBeNull();
  });
});

describe('a transition is all or nothing', () => {
  function withHistory() {
    const c = openCatalog();
    const rec = imageRecord();
    c.insertImage(rec);
    c.recordTransition({ imageId: rec.id, from: null, to: 'validating', event: 'START' }, { status: 'BUILDING' }, { value: 'validating', seq: 1 });
    const before = { image: c.getImage(rec.id), transitions: c.transitions(rec.id), snapshot: c.loadSnapshot(rec.id) };
    return { c, id: rec.id, before };
  }

  it('commits nothing when the snapshot cannot be serialized (a BigInt inside)', () => {
    const { c, id, before } = withHistory();
    const code = codeOf(() =>
      c.recordTransition({ imageId: id, from: 'validating', to: 'preparing', event: 'OK' }, { percentComplete: 50, activity: 'half' }, { value: 'preparing', big: 10n }),
    );
    expect(code).toBe('not_serializable');
    expect({ image: c.getImage(id), transitions: c.transitions(id), snapshot: c.loadSnapshot(id) }).toEqual(before);
  });

  it('commits nothing when the patch is refused by the schema', () => {
    const { c, id, before } = withHistory();
    expect(codeOf(() => c.recordTransition({ imageId: id, from: 'validating', to: 'preparing', event: 'OK' }, { status: 'WEIRD' as never }, { value: 'preparing' }))).toBe(
      'invalid_record',
    );
    expect({ image: c.getImage(id), transitions: c.transitions(id), snapshot: c.loadSnapshot(id) }).toEqual(before);
  });

  it('goes on numbering from the last committed transition after a failed one', () => {
    const { c, id } = withHistory();
    codeOf(() => c.recordTransition({ imageId: id, from: 'validating', to: 'preparing', event: 'OK' }, {}, 1n));
    expect(c.recordTransition({ imageId: id, from: 'validating', to: 'preparing', event: 'OK' }, {}, { seq: 2 }).seq).toBe(2);
  });

  it('is seen by a second connection to the same file only once committed, and in full', () => {
    const file = join(tempDir(), 'catalog.sqlite');
    const writer = openCatalog(file);
    const reader = openCatalog(file);
    const rec = imageRecord();
    writer.insertImage(rec);
    writer.recordTransition({ imageId: rec.id, from: null, to: 'validating', event: 'START' }, { status: 'BUILDING' }, { seq: 1 });
    expect(reader.getImage(rec.id)).toMatchObject({ phase: 'validating', status: 'BUILDING' });
    expect(reader.transitions(rec.id).map((t) => t.seq)).toEqual([1]);
    expect(reader.loadSnapshot(rec.id)).toEqual({ seq: 1 });
    expect(reader.recordTransition({ imageId: rec.id, from: 'validating', to: 'preparing', event: 'OK' }, {}, { seq: 2 }).seq).toBe(2);
    expect(writer.transitions(rec.id).map((t) => t.seq)).toEqual([1, 2]);
  });
});
