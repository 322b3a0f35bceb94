import { chmodSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { StoreError } from './errors.js';

/** Prefix of every temporary file of a build, so that leftovers can be found by image id. */
export const TEMP_FILE_PREFIX = 'imagefactory-';
const TEMP_DIR = '.tmp';
// Ids and suffixes become file names: no separators, no `..`, nothing hidden.
const SAFE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

function checkName(value: string, what: string): void {
  if (!SAFE_NAME.test(value) || value.includes('..')) {
    throw new StoreError('invalid_id', `${what} ${JSON.stringify(value)} cannot be used in a file name`);
  }
}

/**
 * The image bodies (disk images) on disk, in Image Factory's layout:
 * `<storage_path>/<id>.body`, with work in progress under
 * `<storage_path>/.tmp/imagefactory-<id>-<suffix>` (same file system, so a
 * finished body is renamed into place, never copied).
 */
export class BodyStore {
  readonly storagePath: string;

  constructor(storagePath: string) {
    this.storagePath = resolve(storagePath);
  }

  /** Absolute path of the image's body file. */
  pathFor(id: string): string {
    checkName(id, 'image id');
    return join(this.storagePath, `${id}.body`);
  }

  /**
   * Creates the storage directory and its temp directory, private (0700):
   * they hold the catalog, the build logs and the bodies of every build.
   */
  ensureDir(): void {
    mkdirSync(this.tempDir(), { recursive: true, mode: 0o700 });
    chmodSync(this.storagePath, 0o700);
    chmodSync(this.tempDir(), 0o700);
  }

  exists(id: string): boolean {
    return existsSync(this.pathFor(id));
  }

  /** Removes the body file; true if there was one. Safe to call twice. */
  remove(id: string): boolean {
    const path = this.pathFor(id);
    const existed = existsSync(path);
    rmSync(path, { force: true });
    return existed;
  }

  /** Makes a complete body read-only (and private: 0400), so nothing rewrites an image that has been handed out. */
  freeze(id: string): void {
    const path = this.pathFor(id);
    try {
      chmodSync(path, 0o400);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new StoreError('body_not_found', `no body file for image ${id}`, { cause: e });
      throw e;
    }
  }

  /** A path for a temporary file of the image's build (the temp directory is created if missing). */
  tempPathFor(id: string, suffix: string): string {
    checkName(id, 'image id');
    checkName(suffix, 'suffix');
    mkdirSync(this.tempDir(), { recursive: true, mode: 0o700 });
    return join(this.tempDir(), `${TEMP_FILE_PREFIX}${id}-${suffix}`);
  }

  /**
   * Removes temporary files (and directories) left by builds: those of one
   * image, or all of them. Returns the paths removed. Ids are uuids, all of
   * one length, so `imagefactory-<id>-` names exactly one image's files.
   */
  reapTemp(id?: string): string[] {
    if (id !== undefined) checkName(id, 'image id');
    const prefix = id === undefined ? TEMP_FILE_PREFIX : `${TEMP_FILE_PREFIX}${id}-`;
    let names: string[];
    try {
      names = readdirSync(this.tempDir());
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const removed: string[] = [];
    for (const name of names.sort()) {
      if (!name.startsWith(prefix)) continue;
      const path = join(this.tempDir(), name);
      rmSync(path, { recursive: true, force: true });
      removed.push(path);
    }
    return removed;
  }

  private tempDir(): string {
    return join(this.storagePath, TEMP_DIR);
  }
}
