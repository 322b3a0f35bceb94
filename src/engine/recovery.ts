import { FINAL_STATES, type BuildContext } from '../../machines/build.machine.js';
import { WORK } from '../../machines/steps.js';
import { buildKindOf, type BuildError, type BuildKind, type ImageRecord } from '../model/index.js';
import type { Build } from './build.js';
import type { EngineDeps } from './deps.js';
import { stepNamed, stepOfState } from './steps/index.js';
import { describeResources, providerResources } from './provider-resources.js';
import { parentOf } from './submission.js';
import { stateMeta, type Supervisor } from './supervisor.js';
import type { BuildWork } from './work.js';

/** States a restored build may always resume in: nothing of a step runs there. */
const RESUMABLE_WITHOUT_STEP = new Set(['queued', 'waiting_for_base', 'waiting_for_target', 'failing', 'cancelling']);

/**
 * At start, every unfinished build of the catalog is resumed where its
 * step can run again, or failed `interrupted` after undoing its steps. A
 * record that cannot be handled at all is failed and logged; it never stops
 * the start of the daemon.
 */
export class Recovery {
  constructor(
    private readonly deps: EngineDeps,
    private readonly supervisor: Supervisor,
    private readonly work: BuildWork,
    private readonly deleteTree: (image: ImageRecord) => Promise<void>,
  ) {}

  async recoverAll(): Promise<void> {
    for (const image of this.deps.catalog.unfinished()) {
      try {
        await this.recover(image);
      } catch (e) {
        this.deps.log(`recovery of ${image.id} failed: ${(e as Error).message}`);
        try {
          this.markInterrupted(image, image.phase, `recovery failed: ${(e as Error).message}`);
        } catch (again) {
          this.deps.log(`could not mark ${image.id} interrupted: ${(again as Error).message}`);
        }
      }
    }
    this.supervisor.pump();
  }

  private async recover(image: ImageRecord): Promise<void> {
    if (image.status === 'DELETING' && image.properties.deleting_from_provider) return this.failProviderDeletion(image);
    if (image.status === 'DELETING') return void (await this.deleteTree(image).catch((e: Error) => this.deps.log(`deleting ${image.id} at start failed: ${e.message}`)));
    const snapshot = this.deps.catalog.loadSnapshot(image.id) as { value?: string; context?: BuildContext } | null;
    const value = snapshot?.value ? String(snapshot.value) : null;
    if (value !== null && needsCredentialsFrom(buildKindOf(image.kind), value)) return this.failCredentialsLost(image, value);
    // A stand-in for the build until its machine runs: what it parses or finds is kept for it.
    const probe = probeOf(image, value);
    if (value === null || !(await this.canResume(image, value, probe))) return this.failInterrupted(image, value, snapshot?.context?.steps ?? []);
    // Processes of the old daemon are orphans now; the step starts over, keeping its workdir.
    const { reaped, left } = await this.work.reapAll(image.id, { keepWorkdir: true });
    const what = [...(reaped.length ? [`reaped ${reaped.join(', ')}`] : []), ...(left.length ? [`could not remove ${left.join(', ')}`] : [])];
    this.deps.logs.write(image.id, `daemon restarted: resuming in state ${value}${what.map((w) => `; ${w}`).join('')}`);
    const build = this.supervisor.start(image, {
      input: { imageId: image.id, deadline: image.deadline ?? Date.now(), phaseLimits: this.deps.settings.phaseLimits, parentId: parentOf(image) },
      snapshot,
      template: probe.template,
    });
    this.supervisor.restored(build, value);
  }

  private async canResume(image: ImageRecord, value: string, probe: Build): Promise<boolean> {
    if ((FINAL_STATES as readonly string[]).includes(value)) return false;
    if (RESUMABLE_WITHOUT_STEP.has(value)) return true;
    const kind = buildKindOf(image.kind);
    const found = stepOfState(kind, value);
    if (!found) return false;
    try {
      return await found.step.canResume(this.work.envOf(probe, found.name).env);
    } catch {
      return false;
    }
  }

  private async failInterrupted(image: ImageRecord, value: string | null, steps: string[]): Promise<void> {
    const probe = probeOf(image, value);
    const failures: string[] = [];
    for (const name of [...steps].reverse()) {
      try {
        const { step, env } = this.work.envOf(probe, name);
        await step.undo(env);
      } catch (e) {
        failures.push(`undo ${name}: ${(e as Error).message}`);
      }
    }
    const { reaped, left } = await this.work.reapAll(image.id);
    const message = `the daemon stopped while the build was ${value ?? 'starting'}, and the build could not be resumed`;
    this.markInterrupted(image, value, [message, ...failures, ...left.map((l) => `left: ${l}`)].join('; '), reaped);
  }

  /**
   * A provider build that still had to use its credentials: they were held
   * in memory only, so it cannot go on, and what its push created cannot be
   * removed without them. The record names what is left, for a DELETE that
   * brings the credentials again.
   */
  private async failCredentialsLost(image: ImageRecord, value: string): Promise<void> {
    const { reaped } = await this.work.reapAll(image.id);
    const left = providerResources(image);
    const ec2Snapshot = left.some((r) => r.kind === 'ec2-snapshot') ? ' (EC2 also deletes an EBS snapshot left pending after 60 minutes)' : '';
    const message =
      `the daemon restarted while the build was ${value}; its provider credentials were held in memory only and are gone, so the push cannot go on` +
      (left.length
        ? `, and what it had created on the provider cannot be removed without them: ${describeResources(left)}${ec2Snapshot}. DELETE this image with provider and credentials to remove them`
        : '; nothing had been created on the provider');
    this.markInterrupted(image, value, message, reaped, { code: 'credentials_lost', message, ...(left.length ? { details: { left_on_provider: left } } : {}) });
  }

  private failProviderDeletion(image: ImageRecord): void {
    const message = 'the daemon restarted while deleting the image from its provider; the credentials were held in memory only: send the DELETE again with provider and credentials';
    this.deps.catalog.updateImage(image.id, { status: 'DELETEFAILED', activity: 'Deleting the image failed', error: { code: 'credentials_lost', message } });
    this.deps.logs.write(image.id, `daemon restarted: ${message}`);
  }

  private markInterrupted(image: ImageRecord, value: string | null, message: string, reaped: string[] = [], error: BuildError = { code: 'interrupted', message }): void {
    const kind = buildKindOf(image.kind);
    const snapshot = this.deps.catalog.loadSnapshot(image.id) ?? {};
    const transition = this.deps.catalog.recordTransition(
      { imageId: image.id, from: value, to: 'failed', event: error.code },
      { status: 'FAILED', activity: stateMeta(kind, 'failed').activity, error },
      { ...(snapshot as object), value: 'failed', status: 'done' },
    );
    this.deps.logs.write(image.id, `daemon restarted: ${message}${reaped.length ? `; reaped ${reaped.join(', ')}` : ''}`);
    this.supervisor.publish({ type: 'transition', image: this.deps.catalog.getImage(image.id)!, transition });
  }
}

/** Whether a build restored in `value` still has a step ahead (or in hand) that uses the provider credentials. */
function needsCredentialsFrom(kind: BuildKind, value: string): boolean {
  const work = WORK[kind] as readonly { state: string; step: string }[];
  const at = work.findIndex((w) => w.state === value);
  const ahead = at >= 0 ? work.slice(at) : value === 'queued' || value.startsWith('waiting_for') ? work : [];
  return ahead.some((w) => stepNamed(w.step)?.needsCredentials === true);
}

/** A build record standing in for a build whose machine is not running (yet): for resume checks and undo. */
function probeOf(image: ImageRecord, value: string | null): Build {
  return { id: image.id, kind: buildKindOf(image.kind), actor: null as never, lastValue: value, inflight: null, admitted: false, ownedParent: null, credentials: null, template: null, osPlugin: null };
}
