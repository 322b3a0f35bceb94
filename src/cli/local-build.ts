import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { defaultConfig } from '../config/schema.js';
import { assembleEngine, engineSetupOf } from '../compose.js';
import { chooseAccel } from '../hypervisor/accel.js';
import type { PackageCache } from '../os/debian/package-cache.js';
import type { TreeCacheOptions } from '../os/debian/tree-cache.js';
import type { ImageRecord, TransitionRecord } from '../model/index.js';

export interface LocalBuildOptions {
  /** Where images, the catalog and logs go: $IMAGEFACTORY_DATA, else `/var/lib/imagefactory/local` as root, else `~/.local/share/imagefactory`. */
  dataDir?: string;
  timeoutSeconds?: number;
  hypervisor?: 'auto' | 'libvirt' | 'qemu';
  parameters?: Record<string, unknown>;
  /** The configuration's default package cache unless given (null: none). */
  packageCache?: PackageCache | null;
  /** The configuration's default tree cache unless given (null: none). */
  treeCache?: TreeCacheOptions | null;
  out?: NodeJS.WritableStream;
  /** Aborting cancels the build (Ctrl-C); it then ends CANCELLED, cleaned up. */
  signal?: AbortSignal;
}

export function defaultDataDir(): string {
  if (process.env.IMAGEFACTORY_DATA) return resolve(process.env.IMAGEFACTORY_DATA);
  return process.getuid?.() === 0 ? '/var/lib/imagefactory/local' : join(homedir(), '.local', 'share', 'imagefactory');
}

/**
 * Builds a base image from a template without a daemon: an engine in this
 * process on the embedded defaults (qemu driver, shipped plugins), printing
 * each state and progress, then where the image is and how to boot it.
 */
export interface LocalBuildResult {
  image: ImageRecord;
  exitCode: number;
  /** Seconds spent in each working state, from the build's transitions. */
  phases: Record<string, number>;
}

export async function buildLocally(template: string, opts: LocalBuildOptions = {}): Promise<LocalBuildResult> {
  const out = opts.out ?? process.stdout;
  const dataDir = resolve(opts.dataDir ?? defaultDataDir());
  const config = defaultConfig();
  const setup = engineSetupOf(config);
  const engine = await assembleEngine({
    ...setup,
    storagePath: join(dataDir, 'storage'),
    workRoot: join(dataDir, 'work'),
    timeoutSeconds: opts.timeoutSeconds ?? config.timeout,
    maxConcurrentLocal: 1,
    maxConcurrentProvider: 1,
    hypervisor: opts.hypervisor ?? 'qemu',
    ...(opts.packageCache !== undefined ? { packageCache: opts.packageCache } : {}),
    ...(opts.treeCache !== undefined ? { treeCache: opts.treeCache } : {}),
  }, { program: 'imagefactory build' });
  const { accel } = chooseAccel(setup.accel ?? 'auto');
  const started = Date.now();
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s`;
  let lastLine = '';
  try {
    const submitted = engine.submitBaseImage({ template, parameters: opts.parameters ?? {} });
    out.write(`image ${submitted.id}: building (data in ${dataDir}, log ${engine.logPath(submitted.id)})\n`);
    const cancel = () => {
      out.write(`${elapsed()}  cancelling\n`);
      try {
        engine.cancel(submitted.id);
      } catch {
        // already final
      }
    };
    opts.signal?.addEventListener('abort', cancel, { once: true });
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
    opts.signal?.removeEventListener('abort', cancel);
    const phases = phaseSeconds(engine.transitions(image.id));
    if (image.status !== 'COMPLETE') {
      out.write(`image ${image.id} ${image.status}${image.error ? `: ${image.error.code}: ${image.error.message}` : ''}\n`);
      const tail = image.error?.details?.outputTail;
      if (typeof tail === 'string' && tail) out.write(`output tail:\n${tail}\n`);
      return { image, exitCode: 1, phases };
    }
    out.write(
      [
        '',
        `image ${image.id} COMPLETE in ${elapsed().trim()}`,
        `  body:   ${image.bodyPath} (qcow2, sha256 ${String(image.properties.sha256)})`,
        `  log:    ${engine.logPath(image.id)}`,
        `  boot:   qemu-system-x86_64 -accel ${accel} -m 1024 -nographic -snapshot -drive file=${image.bodyPath},format=qcow2,if=virtio`,
        `          (-snapshot keeps the image unchanged; leave with Ctrl-A X)`,
        '',
      ].join('\n'),
    );
    return { image, exitCode: 0, phases };
  } finally {
    await engine.shutdown();
  }
}

/** Seconds from entering each state to leaving it. */
export function phaseSeconds(transitions: TransitionRecord[]): Record<string, number> {
  const phases: Record<string, number> = {};
  transitions.forEach((t, i) => {
    const next = transitions[i + 1];
    if (next) phases[t.to] = (phases[t.to] ?? 0) + (Date.parse(next.at) - Date.parse(t.at)) / 1000;
  });
  return phases;
}
