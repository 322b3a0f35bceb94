import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { runProcess } from '../src/engine/process.js';
import { domainName, QemuDriver, watchInstall } from '../src/hypervisor/index.js';
import type { CloudStepContext, ChecksumPool } from '../src/clouds/types.js';
import type { TargetContent } from '../src/clouds/target-content.js';
import { parseTdlOrThrow } from '../src/tdl/index.js';
import type { BaseFixture } from './cloud-base.js';

/**
 * A cloud step context as the engine must build it (docs/clouds.md, "The
 * context"): the real process runner, a real qemu guest (TCG) watched by the
 * install watchdog, the worker pool's checksum. What the steps report is
 * recorded. Used by the cloud tests and the targets benchmark.
 */

export interface Recorded {
  progress: { percent: number; activity: string }[];
  logs: string[];
  properties: Record<string, unknown>;
  icicle: string | null;
  guests: string[];
}

export function localCloudContext(opts: {
  id: string;
  target: string;
  base: BaseFixture;
  /** Where the workdir (`<dir>/work`) and the output (`<dir>/<id>.body`) go. */
  dir: string;
  pool: ChecksumPool;
  parameters?: Record<string, unknown>;
  targetContent?: TargetContent | null;
  signal?: AbortSignal;
}): { ctx: CloudStepContext; recorded: Recorded } {
  mkdirSync(opts.dir, { recursive: true });
  const signal = opts.signal ?? new AbortController().signal;
  const recorded: Recorded = { progress: [], logs: [], properties: {}, icicle: null, guests: [] };
  const log = (line: string) => void recorded.logs.push(line);
  const ctx: CloudStepContext = {
    imageId: opts.id,
    target: opts.target,
    base: { path: opts.base.path, format: opts.base.format },
    template: parseTdlOrThrow(opts.base.template),
    parameters: opts.parameters ?? {},
    settings: { rhevm_image_format: 'qcow2', openstack_image_format: 'qcow2' },
    targetContent: opts.targetContent ?? null,
    workdir: join(opts.dir, 'work'),
    outputPath: join(opts.dir, `${opts.id}.body`),
    signal,
    log,
    progress: (percent, activity) => void recorded.progress.push({ percent, activity }),
    run: (command, args, { onLine, ...options } = {}) =>
      runProcess(command, args, {
        ...options,
        buildId: opts.id,
        signal,
        log: (line) => {
          log(`${command}: ${line}`);
          onLine?.(line);
        },
      }),
    async runGuest(spec) {
      const driver = new QemuDriver({ runDir: join(opts.dir, 'qemu-run') });
      const name = domainName(opts.id, spec.purpose);
      recorded.guests.push(name);
      const { purpose: _p, stallSeconds: _s, ...asked } = spec;
      const domain = await driver.define({ ...asked, name, memoryMiB: spec.memoryMiB ?? 1024, vcpus: spec.vcpus ?? 1, accel: 'tcg' });
      await domain.start();
      await watchInstall(domain, { stallSeconds: 600, deadline: Date.now() + 30 * 60_000, signal, artifactsDir: join(opts.dir, 'artifacts'), serialLog: spec.serialLog, log });
    },
    pool: opts.pool,
    report(facts) {
      if (facts.icicle !== undefined) recorded.icicle = facts.icicle;
      Object.assign(recorded.properties, facts.properties ?? {});
    },
  };
  return { ctx, recorded };
}
