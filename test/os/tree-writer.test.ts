import { execFileSync } from 'node:child_process';
import { existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TreeWriter } from '../../src/os/tree-writer.js';

/**
 * The writer for an image's tree on the build host, against hostile trees:
 * absolute and relative symlinks pointing out, symlinked directories, `..`
 * names, hard links, device nodes and FIFOs. After every case nothing
 * outside the tree has changed.
 */

let base: string;
let tree: string;
let outside: string;

/** Every path below `dir` with its content (files), target (links) or kind. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = lstatSync(p);
      if (st.isSymbolicLink()) out[p] = `-> ${readlinkSync(p)}`;
      else if (st.isDirectory()) {
        out[p] = 'dir';
        walk(p);
      } else if (st.isFile()) out[p] = readFileSync(p, 'utf8');
      else out[p] = 'special';
    }
  };
  walk(dir);
  return out;
}

beforeEach(() => {
  mkdirSync('/var/tmp/h11', { recursive: true });
  base = mkdtempSync('/var/tmp/h11/tw-');
  tree = join(base, 'tree');
  outside = join(base, 'outside');
  mkdirSync(join(tree, 'etc/systemd/system'), { recursive: true });
  mkdirSync(join(tree, 'lib/systemd/system'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(outside, 'victim'), 'original');
  writeFileSync(join(outside, 'hard-target'), 'original');
  // Hostile tree: links out by absolute and relative targets, a linked directory, a loop, a hard link.
  symlinkSync(join(outside, 'victim'), join(tree, 'etc/abs-out'));
  symlinkSync('../../../../../../../../outside/victim', join(tree, 'etc/rel-out'));
  symlinkSync(outside, join(tree, 'etc/dirlink'));
  symlinkSync('../../outside', join(tree, 'etc/reldirlink'));
  symlinkSync('/proc/1/root/tmp', join(tree, 'etc/proc-root'));
  symlinkSync('loop-b', join(tree, 'etc/loop-a'));
  symlinkSync('loop-a', join(tree, 'etc/loop-b'));
  symlinkSync('/lib/systemd/system/ssh.service', join(tree, 'etc/systemd/system/sshd.service'));
  linkSync(join(outside, 'hard-target'), join(tree, 'etc/hard'));
});

afterEach(() => rmSync(base, { recursive: true, force: true }));

async function write(path: string, data = 'written'): Promise<string> {
  return TreeWriter.with(tree, (t) => t.writeFile(path, data)).then(
    () => 'ok',
    (e: { code?: string }) => e.code ?? String(e),
  );
}

describe('writing a file into a hostile tree', () => {
  it('resolves an absolute symlink inside the tree, never on the host', async () => {
    const before = snapshot(outside);
    expect(await write('/etc/abs-out')).toBe('ok');
    expect(readFileSync(join(tree, outside, 'victim'), 'utf8')).toBe('written');
    expect(snapshot(outside)).toEqual(before);
  });

  it('stops a relative symlink at the tree root', async () => {
    const before = snapshot(outside);
    expect(await write('/etc/rel-out')).toBe('ok');
    expect(readFileSync(join(tree, 'outside/victim'), 'utf8')).toBe('written');
    expect(snapshot(outside)).toEqual(before);
  });

  it('follows symlinked directories inside the tree, absolute or relative', async () => {
    const before = snapshot(outside);
    expect(await write('/etc/dirlink/new')).toBe('ok');
    expect(await write('/etc/reldirlink/new2')).toBe('ok');
    expect(await write('/etc/proc-root/IF_H1')).toBe('ok');
    expect(readFileSync(join(tree, outside, 'new'), 'utf8')).toBe('written');
    expect(readFileSync(join(tree, 'outside/new2'), 'utf8')).toBe('written');
    expect(readFileSync(join(tree, 'proc/1/root/tmp/IF_H1'), 'utf8')).toBe('written');
    expect(existsSync('/tmp/IF_H1')).toBe(false);
    expect(snapshot(outside)).toEqual(before);
  });

  it('keeps ".." names at the tree root', async () => {
    const before = snapshot(outside);
    expect(await write('/../../../../../../outside/victim')).toBe('ok');
    expect(await write('/etc/../../../outside/dotdot')).toBe('ok');
    expect(readFileSync(join(tree, 'outside/victim'), 'utf8')).toBe('written');
    expect(existsSync(join(tree, 'outside/dotdot'))).toBe(true);
    expect(snapshot(outside)).toEqual(before);
  });

  it('replaces a hard-linked file instead of writing through the link', async () => {
    expect(await write('/etc/hard')).toBe('ok');
    expect(readFileSync(join(tree, 'etc/hard'), 'utf8')).toBe('written');
    expect(readFileSync(join(outside, 'hard-target'), 'utf8')).toBe('original');
  });

  it('writes a systemd unit through its absolute alias inside the tree (as the guest would)', async () => {
    expect(await write('/etc/systemd/system/sshd.service', '[Unit]\n')).toBe('ok');
    expect(readFileSync(join(tree, 'lib/systemd/system/ssh.service'), 'utf8')).toBe('[Unit]\n');
    expect(readlinkSync(join(tree, 'etc/systemd/system/sshd.service'))).toBe('/lib/systemd/system/ssh.service');
  });

  it('refuses a symlink loop, a directory, a device node and a FIFO with unsafe_tree_path', async () => {
    mkdirSync(join(tree, 'dev'));
    execFileSync('mknod', [join(tree, 'dev/null'), 'c', '1', '3']);
    execFileSync('mkfifo', [join(tree, 'etc/fifo')]);
    expect(await write('/etc/loop-a')).toBe('unsafe_tree_path');
    expect(await write('/etc')).toBe('unsafe_tree_path');
    expect(await write('/dev/null')).toBe('unsafe_tree_path');
    expect(await write('/etc/fifo')).toBe('unsafe_tree_path');
    expect(await write('/etc/hard/below')).toBe('unsafe_tree_path');
    expect(await write('/')).toBe('unsafe_tree_path');
  });

  it('creates missing directories inside the tree and keeps the mode of a file it replaces', async () => {
    writeFileSync(join(tree, 'etc/shadow'), 'old', { mode: 0o640 });
    await TreeWriter.with(tree, async (t) => {
      await t.writeFile('/usr/local/bin/tool', '#!/bin/sh\n', { mode: 0o755 });
      await t.writeFile('/etc/shadow', 'new');
    });
    expect(statSync(join(tree, 'usr/local/bin/tool')).mode & 0o777).toBe(0o755);
    expect(statSync(join(tree, 'usr/local/bin')).mode & 0o777).toBe(0o755);
    expect(statSync(join(tree, 'etc/shadow')).mode & 0o777).toBe(0o640);
    expect(readdirSync(join(tree, 'etc')).filter((n) => n.startsWith('.imagefactory-'))).toEqual([]);
  });
});

describe('other operations in a hostile tree', () => {
  it('creates symlinks and directories inside the tree through linked parents', async () => {
    const before = snapshot(outside);
    await TreeWriter.with(tree, async (t) => {
      await t.symlink('/etc/systemd/system/x.service', '/etc/dirlink/wants/x.service');
      await t.mkdirp('/etc/reldirlink/made');
    });
    expect(readlinkSync(join(tree, outside, 'wants/x.service'))).toBe('/etc/systemd/system/x.service');
    expect(statSync(join(tree, 'outside/made')).isDirectory()).toBe(true);
    expect(snapshot(outside)).toEqual(before);
  });

  it('reads through links inside the tree only', async () => {
    symlinkSync('/etc/shadow', join(tree, 'etc/shadow-link'));
    const read = await TreeWriter.with(tree, (t) => t.readFile('/etc/shadow-link')).catch((e: { code: string }) => e.code);
    expect(read).toBe('ENOENT'); // the tree has no /etc/shadow; the host's is never read
    writeFileSync(join(tree, 'etc/shadow'), 'tree shadow');
    expect((await TreeWriter.with(tree, (t) => t.readFile('/etc/shadow-link'))).toString()).toBe('tree shadow');
    // The linked directory is looked for inside the tree, where it does not exist; the host's is never listed.
    await expect(TreeWriter.with(tree, (t) => t.readdir('/etc/dirlink'))).rejects.toMatchObject({ code: 'ENOENT' });
    mkdirSync(join(tree, outside), { recursive: true });
    writeFileSync(join(tree, outside, 'in-tree'), '');
    expect(await TreeWriter.with(tree, (t) => t.readdir('/etc/dirlink'))).toEqual(['in-tree']);
  });

  it('removes a symlink itself, never its target', async () => {
    await TreeWriter.with(tree, (t) => t.remove('/etc/abs-out'));
    expect(existsSync(join(tree, 'etc/abs-out'))).toBe(false);
    expect(readFileSync(join(outside, 'victim'), 'utf8')).toBe('original');
  });

  it('leaves no descriptor open', async () => {
    const fds = () => readdirSync('/proc/self/fd').length;
    const before = fds();
    for (let i = 0; i < 20; i++) {
      await write('/etc/dirlink/deep/er/file');
      await write('/etc/loop-a');
    }
    expect(fds()).toBe(before);
  });
});
