import { rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ProviderError } from '../../../src/clouds/providers/errors.js';
import type { CleanupRequest, DeleteRequest, ProviderPush, PushContext } from '../../../src/clouds/providers/types.js';
import type { CloudPlugin, CloudStepContext } from '../../../src/clouds/types.js';
import { newImageRecord, type ImageRecord } from '../../../src/model/index.js';

/** A COMPLETE base image as the catalog keeps it: a frozen body, its format and sha256. */
export function completeBase(fields: Partial<ImageRecord> = {}): ImageRecord {
  return newImageRecord('6a0c7c62-1d7e-4f0e-9b7f-2f6a3b1c9d01', 'BaseImage', new Date(), {
    status: 'COMPLETE',
    phase: 'complete',
    bodyPath: '/warehouse/6a0c7c62-1d7e-4f0e-9b7f-2f6a3b1c9d01.body',
    properties: { format: 'qcow2', sha256: 'b'.repeat(64), size: 1234 },
    ...fields,
  });
}

/**
 * A cloud plugin that records the contexts its steps get and behaves like
 * the real ones where the engine relies on it: adapt leaves a marker in the
 * workdir, convert renames a complete `<output>.partial` into place and
 * returns at once when the output exists, both undo what they made.
 */
export function recordingCloudPlugin(opts: { convertFails?: string; leaveNoBody?: boolean; body?: string } = {}) {
  const calls: string[] = [];
  const contexts: CloudStepContext[] = [];
  const plugin: CloudPlugin = {
    check(_target, parameters) {
      if (parameters.bad === true) throw Object.assign(new Error('parameter bad is bad'), { code: 'bad_parameter' });
    },
    adapt: {
      async run(ctx) {
        calls.push('adapt.run');
        contexts.push(ctx);
        const { mkdir } = await import('node:fs/promises');
        await mkdir(ctx.workdir, { recursive: true });
        await writeFile(join(ctx.workdir, 'overlay.qcow2'), 'overlay');
        ctx.report({ properties: { adaptation: { booted: false } } });
      },
      async undo(ctx) {
        calls.push('adapt.undo');
        contexts.push(ctx);
        await rm(join(ctx.workdir, 'overlay.qcow2'), { force: true });
      },
    },
    convert: {
      async run(ctx) {
        calls.push('convert.run');
        contexts.push(ctx);
        if (await stat(ctx.outputPath).then(() => true, () => false)) return;
        if (opts.convertFails) throw Object.assign(new Error(opts.convertFails), { code: 'convert_failed' });
        if (opts.leaveNoBody) return;
        ctx.progress(50, 'Converting');
        await writeFile(`${ctx.outputPath}.partial`, opts.body ?? 'the converted body');
        await rename(`${ctx.outputPath}.partial`, ctx.outputPath);
        ctx.progress(100, 'Converted');
        ctx.report({ properties: { conversion: { format: 'qcow2', commands: ['qemu-img convert …'] }, format: 'qcow2' } });
      },
      async undo(ctx) {
        calls.push('convert.undo');
        contexts.push(ctx);
        await rm(`${ctx.outputPath}.partial`, { force: true });
        await rm(ctx.outputPath, { force: true });
      },
    },
  };
  return { plugin, calls, contexts };
}

/**
 * A provider push that records what it is asked and creates "resources" as
 * a real one would: each recorded through `ctx.record` as soon as it exists,
 * progress reported often, and on abort it removes what it made.
 */
export function recordingPush(
  opts: {
    failWith?: string;
    progressEvents?: number;
    waitForAbort?: boolean;
    /** On abort, leave what was created (a daemon killed mid-push cleans nothing up). */
    keepOnAbort?: boolean;
    /** `delete` never ends (a daemon stopped in the middle of a DELETE). */
    deleteHangs?: boolean;
    onRecord?: () => unknown;
  } = {},
) {
  const pushed: PushContext[] = [];
  const cleaned: CleanupRequest[] = [];
  const deleted: DeleteRequest[] = [];
  /** What is on the "provider" now. */
  const live = new Set<string>();
  let seenDuringPush: unknown = null;
  const push: ProviderPush = {
    targets: ['ec2'],
    async push(ctx) {
      pushed.push(ctx);
      live.add('snap-1');
      ctx.record({ kind: 'ec2-snapshot', id: 'snap-1' });
      seenDuringPush = opts.onRecord?.();
      for (let i = 1; i <= (opts.progressEvents ?? 0); i++) ctx.progress({ fraction: (i / (opts.progressEvents ?? 1)) * 0.9, phase: 'uploading', activity: `Sent ${i} blocks` });
      if (opts.waitForAbort) await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
      if (ctx.signal.aborted || opts.failWith) {
        if (!(ctx.signal.aborted && opts.keepOnAbort)) live.delete('snap-1');
        throw new ProviderError(ctx.signal.aborted ? 'cancelled' : 'provider_error', opts.failWith ?? 'the push was cancelled');
      }
      ctx.progress({ fraction: 0.95, phase: 'registering', activity: 'Registering the AMI' });
      live.add('ami-1');
      ctx.record({ kind: 'ec2-image', id: 'ami-1' });
      ctx.progress({ fraction: 1, phase: 'registering', activity: 'Registered' });
      return { identifierOnProvider: 'ami-1', providerAccountIdentifier: '123456789012', resources: [{ kind: 'ec2-snapshot', id: 'snap-1' }, { kind: 'ec2-image', id: 'ami-1' }], facts: { snapshot_id: 'snap-1', blocks_sent: 3 } };
    },
    async cleanup(request) {
      cleaned.push(request);
      for (const r of request.resources) live.delete(r.id);
    },
    async delete(request) {
      deleted.push(request);
      if (opts.deleteHangs) await new Promise(() => undefined);
      live.delete(request.identifierOnProvider);
      for (const r of request.resources ?? []) live.delete(r.id);
    },
  };
  return { push, pushed, cleaned, deleted, live, seenDuringPush: () => seenDuringPush };
}
