import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, readlink, rename, symlink, unlink, type FileHandle } from 'node:fs/promises';
import { StepError } from './plugin.js';

/**
 * Writes into an image's root tree on the build host as if the tree were
 * `/`: every path is resolved one component at a time *inside* the tree, so
 * that a name, a `..` or a symlink in the tree can never lead out of it.
 *
 * Node has no openat(2), but `/proc/self/fd/N/name` is the same thing: the
 * directory is pinned by its open descriptor `N` and only `name` is looked
 * up, with O_NOFOLLOW so that a symlink is seen rather than followed. A
 * symlink met on the way is read and resolved by this code, as the guest's
 * kernel would resolve it with the tree as its root: an absolute target
 * starts again at the tree's root, `..` stops at the root. Files are written
 * under a temporary name in their directory and renamed over the old one, so
 * a write never goes *through* an existing file (a hard link, a device node);
 * an existing name that is not a regular file (a directory, a device, a FIFO,
 * a socket) is refused.
 */

const MAX_SYMLINK_HOPS = 40;
const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

export class TreePathError extends StepError {
  constructor(path: string, why: string) {
    super('unsafe_tree_path', `${JSON.stringify(path)} cannot be written in the image's tree: ${why}`, { path });
    this.name = 'TreePathError';
  }
}

const at = (dir: FileHandle, name: string) => `/proc/self/fd/${dir.fd}/${name}`;
const parts = (path: string) => path.split('/');
const errno = (e: unknown) => (e as NodeJS.ErrnoException).code;

interface Resolved {
  /** The directory holding the last component (the caller closes it unless it is the root). */
  dir: FileHandle;
  /** The last component; null when the path names a directory itself (`/`, `/a/..`). */
  name: string | null;
}

export class TreeWriter {
  private constructor(
    readonly root: string,
    private readonly rootDir: FileHandle,
  ) {}

  /** Opens the tree at `root` (a real directory, not a symlink). */
  static async open(root: string): Promise<TreeWriter> {
    return new TreeWriter(root, await open(root, DIR_FLAGS));
  }

  /** Opens the tree, runs `use`, and closes it whatever happens. */
  static async with<T>(root: string, use: (tree: TreeWriter) => Promise<T>): Promise<T> {
    const tree = await TreeWriter.open(root);
    try {
      return await use(tree);
    } finally {
      await tree.close();
    }
  }

  async close(): Promise<void> {
    await this.rootDir.close().catch(() => undefined);
  }

  /**
   * Writes `data` at `path` (inside the tree), creating missing directories
   * (mode 0755). A symlink at `path` is followed inside the tree, as the guest
   * would; an existing regular file keeps its mode and owner, a new one gets
   * `mode` (0644 by default).
   */
  async writeFile(path: string, data: string | Buffer, opts: { mode?: number } = {}): Promise<void> {
    const { dir, name } = await this.resolve(path, { followLast: true, create: true });
    try {
      if (name === null) throw new TreePathError(path, 'it names a directory');
      const old = await lstat(at(dir, name)).catch((e: unknown) => {
        if (errno(e) === 'ENOENT') return null;
        throw e;
      });
      if (old && !old.isFile()) throw new TreePathError(path, `it exists and is not a regular file (${kindOf(old)})`);
      const temp = `.imagefactory-${randomBytes(6).toString('hex')}`;
      const fh = await open(at(dir, temp), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      try {
        await fh.writeFile(data);
        if (old) await fh.chown(old.uid, old.gid);
        await fh.chmod(old ? old.mode & 0o7777 : (opts.mode ?? 0o644));
        await fh.close();
        await rename(at(dir, temp), at(dir, name));
      } catch (e) {
        await fh.close().catch(() => undefined);
        await unlink(at(dir, temp)).catch(() => undefined);
        throw e;
      }
    } finally {
      await this.release(dir);
    }
  }

  /** `mkdir -p` inside the tree; symlinks on the way are followed inside it. */
  async mkdirp(path: string): Promise<void> {
    const { dir } = await this.resolve(`${path}/.`, { followLast: true, create: true });
    await this.release(dir);
  }

  /** Creates (or replaces) the symlink `path` → `target`; `target` is stored as given, it is never followed here. */
  async symlink(target: string, path: string): Promise<void> {
    const { dir, name } = await this.resolve(path, { followLast: false, create: true });
    try {
      if (name === null) throw new TreePathError(path, 'it names a directory');
      const old = await lstat(at(dir, name)).catch(() => null);
      if (old?.isDirectory()) throw new TreePathError(path, 'it exists and is a directory');
      if (old) await unlink(at(dir, name));
      await symlink(target, at(dir, name));
    } finally {
      await this.release(dir);
    }
  }

  /** Removes `path` (not a directory) if it exists; a symlink is removed itself, not its target. */
  async remove(path: string): Promise<void> {
    const { dir, name } = await this.resolve(path, { followLast: false, create: false }).catch((e: unknown) => {
      if (errno(e) === 'ENOENT') return { dir: null, name: null };
      throw e;
    });
    if (!dir) return;
    try {
      if (name !== null) await unlink(at(dir, name)).catch((e: unknown) => (errno(e) === 'ENOENT' ? undefined : Promise.reject(e)));
    } finally {
      await this.release(dir);
    }
  }

  /** Reads a regular file of the tree (symlinks followed inside it). */
  async readFile(path: string): Promise<Buffer> {
    const { dir, name } = await this.resolve(path, { followLast: true, create: false });
    try {
      if (name === null) throw new TreePathError(path, 'it names a directory');
      const fh = await open(at(dir, name), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      try {
        const st = await fh.stat();
        if (!st.isFile()) throw new TreePathError(path, `it is not a regular file (${kindOf(st)})`);
        return await fh.readFile();
      } finally {
        await fh.close();
      }
    } finally {
      await this.release(dir);
    }
  }

  /** The names in a directory of the tree. */
  async readdir(path: string): Promise<string[]> {
    const { dir } = await this.resolve(`${path}/.`, { followLast: true, create: false });
    try {
      return await readdir(`/proc/self/fd/${dir.fd}`);
    } finally {
      await this.release(dir);
    }
  }

  private async release(dir: FileHandle): Promise<void> {
    if (dir !== this.rootDir) await dir.close().catch(() => undefined);
  }

  /**
   * Walks `path` from the tree's root: each directory is opened by name
   * relative to the one before (O_NOFOLLOW), each symlink read and its target
   * walked instead (from the root when absolute). Missing directories are
   * created when `create`. Returns the last directory and the last name.
   */
  private async resolve(path: string, opts: { followLast: boolean; create: boolean }): Promise<Resolved> {
    if (path.includes('\0')) throw new TreePathError(path.replace(/\0/g, '\\0'), 'it contains a NUL character');
    const stack: FileHandle[] = [this.rootDir];
    const top = () => stack[stack.length - 1]!;
    const queue = parts(path);
    let hops = 0;
    const followLink = async (name: string) => {
      if (++hops > MAX_SYMLINK_HOPS) throw new TreePathError(path, `more than ${MAX_SYMLINK_HOPS} symlinks on the way (a loop?)`);
      const target = await readlink(at(top(), name));
      if (target.startsWith('/')) {
        // An absolute symlink means the tree's root, as it will in the guest, never the host's.
        while (stack.length > 1) await stack.pop()!.close();
      }
      queue.unshift(...parts(target));
    };
    try {
      while (queue.length) {
        const name = queue.shift()!;
        if (name === '' || name === '.') continue;
        if (name === '..') {
          if (stack.length > 1) await stack.pop()!.close();
          continue;
        }
        if (queue.length === 0) {
          // The last component of a path without a trailing slash: a file name, maybe a symlink to follow.
          const st = await lstat(at(top(), name)).catch((e: unknown) => (errno(e) === 'ENOENT' ? null : Promise.reject(e)));
          if (st?.isSymbolicLink() && opts.followLast) {
            await followLink(name);
            continue;
          }
          const dir = stack.pop()!;
          return { dir, name };
        }
        let next: FileHandle;
        try {
          next = await open(at(top(), name), DIR_FLAGS);
        } catch (e) {
          const code = errno(e);
          // O_NOFOLLOW on a symlink gives ELOOP, or ENOTDIR together with O_DIRECTORY: look at what is there.
          if ((code === 'ELOOP' || code === 'ENOTDIR') && (await lstat(at(top(), name))).isSymbolicLink()) {
            await followLink(name);
            continue;
          }
          if (code === 'ENOENT' && opts.create) {
            await mkdir(at(top(), name), 0o755).catch((m: unknown) => (errno(m) === 'EEXIST' ? undefined : Promise.reject(m)));
            queue.unshift(name);
            continue;
          }
          if (code === 'ENOTDIR') throw new TreePathError(path, `${JSON.stringify(name)} on the way is not a directory`);
          throw e;
        }
        stack.push(next);
      }
      const dir = stack.pop()!;
      return { dir, name: null };
    } finally {
      for (const fh of stack) if (fh !== this.rootDir) await fh.close().catch(() => undefined);
    }
  }
}

function kindOf(st: { isDirectory(): boolean; isSymbolicLink(): boolean; isBlockDevice(): boolean; isCharacterDevice(): boolean; isFIFO(): boolean; isSocket(): boolean }): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isSymbolicLink()) return 'a symlink';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}
