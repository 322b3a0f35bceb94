import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { Engine } from '../engine/engine.js';
import type { ImageRecord } from '../store/types.js';
import { SHIPPED_PLUGINS } from '../daemon.js';

export interface LocalBuildOptions {
  /** Where images, the catalog and logs go; `~/.local/share/imagefactory` by default. */
  dataDir?: string;
  timeoutSeconds?: number;
  hypervisor?: 'auto' | 'libvirt' | 'qemu';
  out?: NodeJS.WritableStream;
}

/**
 * Builds a base image from a template file without a daemon: an engine in
 * this process on the embedded defaults (qemu driver, shipped plugins),
 * printing each state and progress, then where the image is and how to boot it.
 */
export async function buildLocally(templateFile: string, opts: LocalBuildOptions = {}): Promise<{ image: ImageRecord; exitCode: number }> {
  const out = opts.out ?? process.stdout;
  const dataDir = resolve(opts.dataDir ?? process.env.IMAGEFACTORY_DATA ?? join(homedir(), '.local', 'share', 'imagefactory'));
  const template = await readFile(templateFile, 'utf8');
  const engine = await Engine.create({
    storagePath: join(dataDir, 'storage'),
    workRoot: join(dataDir, 'work'),
    timeoutSeconds: opts.timeoutSeconds ?? 3600,
    phaseLimits: { installing: 1800, customizing: 1800 },
    maxConcurrentLocal: 1,
    maxConcurrentProvider: 1,
    pluginDirs: [SHIPPED_PLUGINS],
    hypervisor: opts.hypervisor ?? 'qemu',
    log: () => undefined,
  });
  const started = Date.now();
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s`;
  let lastLine = '';
  try {
    const submitted = engine.submitBaseImage({ template });
    out.write(`image ${submitted.id}: building from ${templateFile} (data in ${dataDir})\n`);
    const image = await new Promise<ImageRecord>((resolveImage) => {
      const off = engine.subscribe((e) => {
        if (e.image.id !== submitted.id) return;
        const line = `${elapsed()}  ${e.image.phase.padEnd(13)} ${String(e.image.percentComplete).padStart(3)}%  ${e.image.activity}`;
        if (line !== lastLine) out.write(`${line}\n`);
        lastLine = line;
        if (['COMPLETE', 'FAILED', 'CANCELLED'].includes(e.image.status)) {
          off();
          resolveImage(e.image);
        }
      });
    });
    if (image.status !== 'COMPLETE') {
      out.write(`image ${image.id} ${image.status}: ${image.error?.code}: ${image.error?.message}\n`);
      return { image, exitCode: 1 };
    }
    out.write(
      [
        '',
        `image ${image.id} COMPLETE in ${elapsed().trim()}`,
        `  body:   ${image.bodyPath} (qcow2, sha256 ${String(image.properties.sha256)})`,
        `  log:    ${engine.logPath(image.id)}`,
        `  boot:   qemu-system-x86_64 -accel tcg -m 1024 -nographic -snapshot -drive file=${image.bodyPath},format=qcow2,if=virtio`,
        '',
      ].join('\n'),
    );
    return { image, exitCode: 0 };
  } finally {
    await engine.shutdown();
  }
}
