import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BodyStore, StoreError } from '../../src/store/index.js';
import { useTempDirs } from './helpers.js';

const tempDir = useTempDirs('ifstore-bodies-');
const ID = '0f8fad5b-d9cb-469f-a165-70867728950e';
const OTHER = '7c9e6679-7425-40de-944b-e07fc1f90ae7';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(StoreError);
    return (e as StoreError).code;
  }
  throw new Error('expected a StoreError, nothing was thrown');
}

describe('body files', () => {
  it('places a body at <storage_path>/<id>.body, as an absolute path', () => {
    const dir = tempDir();
    const bodies = new BodyStore(dir);
    expect(bodies.pathFor(ID)).toBe(join(dir, `${ID}.body`));
    const relative = new BodyStore('storage');
    expect(relative.pathFor(ID)).toBe(join(process.cwd(), 'storage', `${ID}.body`));
  });

  it('creates the storage directory and its temp directory', () => {
    const dir = join(tempDir(), 'storage');
    new BodyStore(dir).ensureDir();
    expect(statSync(dir).isDirectory()).toBe(true);
    expect(statSync(join(dir, '.tmp')).isDirectory()).toBe(true);
  });

  it('tells whether a body exists and removes it, twice without complaint', () => {
    const bodies = new BodyStore(tempDir());
    bodies.ensureDir();
    expect(bodies.exists(ID)).toBe(false);
    writeFileSync(bodies.pathFor(ID), 'disk');
    expect(bodies.exists(ID)).toBe(true);
    expect(bodies.remove(ID)).toBe(true);
    expect(bodies.exists(ID)).toBe(false);
    expect(bodies.remove(ID)).toBe(false);
  });

  it('freezes a complete body read-only, and it can still be removed', () => {
    const bodies = new BodyStore(tempDir());
    bodies.ensureDir();
    writeFileSync(bodies.pathFor(ID), 'disk');
    bodies.freeze(ID);
    expect(statSync(bodies.pathFor(ID)).mode & 0o777).toBe(0o400);
    expect(bodies.remove(ID)).toBe(true);
    expect(existsSync(bodies.pathFor(ID))).toBe(false);
  });

  it('refuses to freeze a body that does not exist with body_not_found', () => {
    const bodies = new BodyStore(tempDir());
    expect(codeOf(() => bodies.freeze(ID))).toBe('body_not_found');
  });

  it('refuses ids and suffixes that would leave the storage directory with invalid_id', () => {
    const bodies = new BodyStore(tempDir());
    for (const bad of ['../etc/passwd', 'a/b', '..', '.hidden', '', 'x\0y']) {
      expect(codeOf(() => bodies.pathFor(bad)), bad).toBe('invalid_id');
      expect(codeOf(() => bodies.tempPathFor(ID, bad)), bad).toBe('invalid_id');
    }
    expect(codeOf(() => bodies.reapTemp('../x'))).toBe('invalid_id');
  });
});

describe('temporary files', () => {
  it('names temp files imagefactory-<id>-<suffix> inside <storage_path>/.tmp, creating it', () => {
    const dir = tempDir();
    const bodies = new BodyStore(dir);
    const path = bodies.tempPathFor(ID, 'disk.raw');
    expect(path).toBe(join(dir, '.tmp', `imagefactory-${ID}-disk.raw`));
    expect(statSync(join(dir, '.tmp')).isDirectory()).toBe(true);
  });

  it('reaps the temp files of one image and leaves those of others and foreign files alone', () => {
    const dir = tempDir();
    const bodies = new BodyStore(dir);
    const mine = [bodies.tempPathFor(ID, 'a.raw'), bodies.tempPathFor(ID, 'b.qcow2')];
    const theirs = bodies.tempPathFor(OTHER, 'a.raw');
    for (const p of [...mine, theirs]) writeFileSync(p, 'x');
    const mineDir = bodies.tempPathFor(ID, 'work');
    mkdirSync(join(mineDir, 'nested'), { recursive: true });
    writeFileSync(join(mineDir, 'nested', 'f'), 'x');
    writeFileSync(join(dir, '.tmp', 'unrelated.txt'), 'x');

    expect(bodies.reapTemp(ID)).toEqual([...mine, mineDir].sort());
    expect(readdirSync(join(dir, '.tmp')).sort()).toEqual([`imagefactory-${OTHER}-a.raw`, 'unrelated.txt']);
    expect(bodies.reapTemp(ID)).toEqual([]);
  });

  it('reaps the temp files of every image when no id is given, and never touches bodies', () => {
    const dir = tempDir();
    const bodies = new BodyStore(dir);
    bodies.ensureDir();
    writeFileSync(bodies.pathFor(ID), 'body');
    const temps = [bodies.tempPathFor(ID, 'a'), bodies.tempPathFor(OTHER, 'b')];
    for (const p of temps) writeFileSync(p, 'x');
    expect(bodies.reapTemp()).toEqual(temps.sort());
    expect(readdirSync(join(dir, '.tmp'))).toEqual([]);
    expect(bodies.exists(ID)).toBe(true);
  });

  it('reaps nothing, without error, when there is no temp directory', () => {
    expect(new BodyStore(join(tempDir(), 'never-made')).reapTemp()).toEqual([]);
  });
});
