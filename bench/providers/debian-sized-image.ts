// A raw disk the size and shape of a Debian `ec2` target: a 2 GiB sparse file holding an ext4
// filesystem built by `mkfs.ext4 -d` (no mount) from a tree of about 700 MB — large files and tens
// of thousands of small ones, so the filesystem's metadata is spread over its block groups as in
// a real image. Returns its path and the bytes the filesystem really allocated for it.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const MiB = 1024 * 1024;

export interface BenchImage {
  file: string;
  size: number;
  allocated: number;
}

export async function debianSizedImage(dir: string, options: { sizeGiB?: number; largeMiB?: number; smallFiles?: number } = {}): Promise<BenchImage> {
  const tree = join(dir, 'tree');
  const large = options.largeMiB ?? 560;
  const small = options.smallFiles ?? 24_000;
  for (let d = 0; d < 64; d++) await mkdir(join(tree, 'usr', `d${d}`), { recursive: true });
  // Large files of 1–4 MiB, then small files of 1–12 KiB: ≈ 560 MB + ≈ 150 MB.
  let left = large * MiB;
  for (let i = 0; left > 0; i++) {
    const bytes = Math.min(left, (1 + (i % 4)) * MiB);
    await writeFile(join(tree, 'usr', `d${i % 64}`, `lib${i}.so`), randomBytes(bytes));
    left -= bytes;
  }
  for (let i = 0; i < small; i++) await writeFile(join(tree, 'usr', `d${i % 64}`, `f${i}`), randomBytes(1024 + ((i * 7919) % (11 * 1024))));
  const file = join(dir, 'disk.raw');
  await run('mkfs.ext4', ['-q', '-F', '-d', tree, file, `${options.sizeGiB ?? 2}G`]);
  await rm(tree, { recursive: true, force: true });
  const info = await stat(file);
  return { file, size: info.size, allocated: info.blocks * 512 };
}
