import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** A qcow2 image in `dir` holding `bytes` random bytes (made with qemu-img from a raw file). */
export async function makeQcow2(dir: string, name: string, bytes: number): Promise<string> {
  const raw = join(dir, `${name}.raw`);
  await writeFile(raw, randomBytes(bytes));
  const qcow2 = join(dir, `${name}.qcow2`);
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, qcow2]);
  await rm(raw);
  return qcow2;
}
