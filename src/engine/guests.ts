import { join } from 'node:path';
import { DOMAIN_PREFIX, domainName, HypervisorError, watchInstall, type HypervisorSession } from '../hypervisor/index.js';
import type { GuestSpec } from '../os/plugin.js';

export interface GuestRunner {
  /** Boots a guest for a build and watches it until it powers itself off; destroyed on every exit path. */
  run(imageId: string, spec: GuestSpec, opts: { signal: AbortSignal; deadline: number; log: (line: string) => void }): Promise<void>;
  /** Destroys every guest of a build, whichever driver started it. */
  reap(imageId: string): Promise<string[]>;
}

/** Guests of builds on the daemon's hypervisor session, named after the build so leftovers can be reaped. */
export function guestRunner(hypervisor: HypervisorSession, opts: { storagePath: string; stallSeconds: number }): GuestRunner {
  return {
    async run(imageId, spec, { signal, deadline, log }) {
      const { driver, accel } = await hypervisor.open();
      const name = domainName(imageId, spec.purpose);
      // A repeated step starts from a clean slate: a guest of an earlier attempt goes first.
      await driver.reap(name);
      const { purpose: _purpose, stallSeconds, restore, onStarted, ...asked } = spec;
      const identity = (await driver.checkpointIdentity?.(accel)) ?? null;
      if (restore && restore.identity !== identity) {
        throw new HypervisorError('checkpoint_unusable', `the checkpoint was taken on ${restore.identity}; this guest would run on ${identity ?? `${driver.kind}, which restores none`}`, { name });
      }
      const domain = await driver.define({ ...asked, name, memoryMiB: spec.memoryMiB ?? 1024, vcpus: spec.vcpus ?? 1, accel, ...(restore ? { restoreFrom: restore.state } : {}) });
      log(`guest ${name}: starting on ${driver.kind} (${accel})`);
      try {
        await domain.start();
      } catch (e) {
        await domain.destroy();
        throw e;
      }
      const abandonment = new AbortController();
      let abandonedFor: Error | null = null;
      onStarted?.({
        checkpoint:
          domain.checkpoint && identity
            ? async (stateFile) => {
                await domain.checkpoint!(stateFile);
                return identity;
              }
            : null,
        resume: async () => domain.resume?.(),
        abandon: (reason) => {
          abandonedFor ??= reason;
          abandonment.abort();
        },
      });
      const result = await watchInstall(domain, {
        stallSeconds: stallSeconds ?? opts.stallSeconds,
        deadline,
        signal: AbortSignal.any([signal, abandonment.signal]),
        artifactsDir: join(opts.storagePath, 'artifacts', imageId),
        serialLog: spec.serialLog,
        log,
      }).catch((e: unknown) => {
        // A cancel of the build stays a cancel; otherwise the guest was given up for a reason of its own.
        throw abandonedFor && !signal.aborted ? abandonedFor : e;
      });
      log(`guest ${name}: powered off after ${(result.elapsedMs / 1000).toFixed(1)} s`);
    },
    reap: (imageId) => hypervisor.reap(`${DOMAIN_PREFIX}${imageId}`),
  };
}
