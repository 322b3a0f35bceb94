import { randomUUID } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createActor, fromCallback, fromPromise, type Actor, type EventObject, type InspectionEvent } from 'xstate';
import {
  FINAL_STATES,
  MACHINES,
  type AwaitParentInput,
  type BuildContext,
  type BuildMachine,
  type CompensateInput,
  type StepInput,
  type TimerInput,
} from '../../machines/build.machine.js';
import type { BuildKind } from '../../machines/steps.js';
import type { GuestSpec, OsPlugin, StepContext } from '../os/plugin.js';
import { DOMAIN_PREFIX, domainName, openHypervisor, QemuDriver, watchInstall, type AccelSetting, type HypervisorSetting, type OpenedHypervisor } from '../hypervisor/index.js';
import { discoverPlugins, type PluginRegistry } from '../plugins/index.js';
import { builtinPlugins } from '../plugins/builtin.js';
import { WorkerPool } from '../pool/index.js';
import { BodyStore, Catalog } from '../store/index.js';
import { FINAL_STATUSES, newImageRecord, type ImageKind, type ImageRecord, type ImageStatus, type TransitionRecord } from '../store/types.js';
import { parseTdl, formatTdlError } from '../tdl/index.js';
import { VERSION } from '../version.js';
import { BuildLogs } from './build-log.js';
import { callbackUrls, deliverCallback } from './callbacks.js';
import { EngineError, StepError } from './errors.js';
import { runProcess } from './process.js';
import type { PackageCache } from '../os/debian/package-cache.js';
import { DownloadCache, type DownloadCacheOptions } from '../os/media/download-cache.js';
import { reapBuild, workdirFor } from './reaper.js';
import { cloudPluginMissing, OS_STEPS, pluginMissing, PROGRESS_RANGE, removeWorkdir, runOsStep, snapshotBody, templateOf } from './steps.js';
import type { BaseImageRequest, EngineApi, EngineEvent, MachineView, ProviderImageRequest, TargetImageRequest } from './types.js';

export interface EngineOptions {
  storagePath: string;
  /** Where builds get their private workdirs (the configuration's `imgdir`). */
  workRoot: string;
  /** Whole-build limit in seconds, counted from submission. */
  timeoutSeconds: number;
  /** Per working state limits in seconds, e.g. `{ installing: 1200 }`. */
  phaseLimits?: Record<string, number>;
  maxConcurrentLocal: number;
  maxConcurrentProvider: number;
  /** Builds waiting for a slot beyond which submissions get 503. */
  maxQueued?: number;
  pluginDirs: string[];
  requireRootPassword?: boolean;
  poolThreads?: number;
  hypervisor?: HypervisorSetting;
  accel?: AccelSetting;
  libvirtUri?: string;
  /** Seconds without guest disk or network activity before `install_stalled`. */
  stallSeconds?: number;
  /** The .deb directory shared by Debian/Ubuntu builds and its bound. */
  packageCache?: PackageCache | null;
  /** Downloaded install media; `<workRoot>/../media` without a bound by default. */
  mediaCache?: DownloadCacheOptions;
  /** Shapes an image for callbacks (the REST layer's JSON). */
  present?: (image: ImageRecord) => unknown;
  log?: (line: string) => void;
  // --- inspect relay (src/engine/inspect.ts) ---
  /** Also sees every inspection event of every build actor, after the engine has handled it, with the build's image id (`--inspect`). */
  inspect?: (event: InspectionEvent, imageId: string) => void;
  // --- end inspect relay ---
}

const KIND_OF: Record<BuildKind, ImageKind> = { base: 'BaseImage', target: 'TargetImage', provider: 'ProviderImage' };
const BUILD_KIND: Record<ImageKind, BuildKind> = { BaseImage: 'base', TargetImage: 'target', ProviderImage: 'provider' };
const RESUMABLE_WITHOUT_CHECK = new Set(['queued', 'waiting_for_base', 'waiting_for_target', 'validating', 'failing', 'cancelling']);

interface Build {
  id: string;
  kind: BuildKind;
  actor: Actor<BuildMachine>;
  lastValue: string | null;
  /** The step running now, so that undo can wait for it to let go. */
  inflight: Promise<unknown> | null;
  osPlugin: OsPlugin | null;
  admitted: boolean;
  /** Parent builds created by the same request, cancelled with this one. */
  ownedParent: string | null;
  /** Credentials live only in memory, only for the build that needs them. */
  credentials: string | null;
  callbackChain: Promise<unknown>;
}

/**
 * The root actor: admits builds within the configured concurrency, runs each
 * as a build machine with the engine's step implementations, records every
 * transition before publishing it, routes cancels, and recovers unfinished
 * builds at start.
 */
export class Engine implements EngineApi {
  readonly version = VERSION;
  private readonly builds = new Map<string, Build>();
  private readonly queue: string[] = [];
  private readonly listeners = new Set<(e: EngineEvent) => void>();
  private closing = false;
  private hypervisor: Promise<OpenedHypervisor> | null = null;

  private constructor(
    private readonly opts: EngineOptions,
    private readonly catalog: Catalog,
    private readonly bodies: BodyStore,
    private readonly logs: BuildLogs,
    private readonly registry: PluginRegistry,
    private readonly pool: WorkerPool,
    private readonly media: DownloadCache,
  ) {}

  static async create(opts: EngineOptions): Promise<Engine> {
    const catalog = Catalog.open(join(opts.storagePath, 'catalog.sqlite'));
    const bodies = new BodyStore(opts.storagePath);
    bodies.ensureDir();
    const logs = new BuildLogs(join(opts.storagePath, 'logs'));
    const registry = await discoverPlugins(opts.pluginDirs, { builtins: builtinPlugins({ packageCache: opts.packageCache ?? null }) });
    const pool = new WorkerPool(opts.poolThreads ? { maxThreads: opts.poolThreads } : {});
    const media = new DownloadCache(opts.mediaCache ?? { dir: join(opts.workRoot, '..', 'media') });
    const engine = new Engine(opts, catalog, bodies, logs, registry, pool, media);
    await engine.recover();
    return engine;
  }

  // ---- submissions ----------------------------------------------------------

  submitBaseImage(req: BaseImageRequest): ImageRecord {
    this.checkTemplate(req.template);
    this.checkCapacity(1);
    return this.startNew('base', { template: req.template, parameters: req.parameters ?? {} });
  }

  submitTargetImage(req: TargetImageRequest): ImageRecord {
    if (!req.target) throw new EngineError('bad_request', 'target is required');
    if ((req.baseImageId === undefined) === (req.template === undefined)) {
      throw new EngineError('bad_request', 'give exactly one of base_image_id and template');
    }
    let baseId = req.baseImageId;
    let owned: string | null = null;
    if (req.template !== undefined) {
      this.checkTemplate(req.template);
      this.checkCapacity(2);
      baseId = owned = this.startNew('base', { template: req.template, parameters: req.parameters ?? {} }).id;
    } else {
      this.checkCapacity(1);
      this.requireImage(baseId!, 'BaseImage');
    }
    const base = this.catalog.getImage(baseId!)!;
    return this.startNew('target', { template: base.template, parameters: req.parameters ?? {}, baseImageId: baseId!, target: req.target }, owned);
  }

  submitProviderImage(req: ProviderImageRequest): ImageRecord {
    if (!req.target || !req.provider) throw new EngineError('bad_request', 'target and provider are required');
    if (!req.credentials) throw new EngineError('bad_request', 'credentials are required');
    if ((req.targetImageId === undefined) === (req.template === undefined)) {
      throw new EngineError('bad_request', 'give exactly one of target_image_id and template');
    }
    let targetId = req.targetImageId;
    let owned: string | null = null;
    if (req.template !== undefined) {
      this.checkTemplate(req.template);
      this.checkCapacity(3);
      targetId = owned = this.submitTargetImage({ target: req.target, template: req.template, parameters: req.parameters ?? {} }).id;
    } else {
      this.checkCapacity(1);
      this.requireImage(targetId!, 'TargetImage');
    }
    const target = this.catalog.getImage(targetId!)!;
    return this.startNew(
      'provider',
      { template: target.template, parameters: req.parameters ?? {}, targetImageId: targetId!, baseImageId: target.baseImageId, target: req.target, provider: req.provider },
      owned,
      req.credentials,
    );
  }

  private checkTemplate(template: string): void {
    if (typeof template !== 'string' || template.trim() === '') throw new EngineError('bad_request', 'template is required');
    const result = parseTdl(template, { requireRootPassword: this.opts.requireRootPassword ?? false });
    if (!result.ok) {
      throw new EngineError('template_invalid', result.errors.map(formatTdlError).join('\n'), { errors: result.errors });
    }
  }

  private checkCapacity(n: number): void {
    if (this.closing) throw new EngineError('shutting_down', 'the daemon is shutting down');
    const waiting = [...this.builds.values()].filter((b) => !b.admitted).length;
    const max = this.opts.maxQueued ?? 32;
    if (waiting + n > max) throw new EngineError('queue_full', `the build queue is full (${waiting} waiting, limit ${max}); try again later`);
  }

  private requireImage(id: string, kind: ImageKind): ImageRecord {
    const image = this.catalog.getImage(id);
    if (!image || image.kind !== kind) throw new EngineError('image_not_found', `no ${kind} with id ${id}`);
    if (['FAILED', 'CANCELLED', 'DELETING', 'DELETED', 'DELETEFAILED'].includes(image.status)) {
      throw new EngineError('conflict', `${kind} ${id} is ${image.status} and cannot be built upon`);
    }
    return image;
  }

  private startNew(kind: BuildKind, fields: Partial<ImageRecord>, ownedParent: string | null = null, credentials: string | null = null): ImageRecord {
    const now = new Date();
    const id = randomUUID();
    const record = newImageRecord(id, KIND_OF[kind], now, { deadline: now.getTime() + this.opts.timeoutSeconds * 1000, ...fields });
    this.catalog.insertImage(record);
    this.logs.write(id, `${record.kind} ${id} submitted; deadline ${new Date(record.deadline!).toISOString()}`);
    const parentId = kind === 'target' ? record.baseImageId : kind === 'provider' ? record.targetImageId : null;
    this.startActor(record, { input: { imageId: id, deadline: record.deadline!, phaseLimits: this.opts.phaseLimits ?? {}, parentId } }, ownedParent, credentials);
    return this.catalog.getImage(id)!;
  }

  // ---- running machines -----------------------------------------------------

  private startActor(
    image: ImageRecord,
    init: { input: { imageId: string; deadline: number; phaseLimits: Record<string, number>; parentId: string | null }; snapshot?: unknown },
    ownedParent: string | null,
    credentials: string | null,
  ): void {
    const kind = BUILD_KIND[image.kind];
    const machine = this.provideImplementations(MACHINES[kind]);
    const build: Build = {
      id: image.id,
      kind,
      actor: undefined as unknown as Actor<BuildMachine>,
      lastValue: init.snapshot ? String((init.snapshot as { value: string }).value) : null,
      inflight: null,
      osPlugin: null,
      admitted: false,
      ownedParent,
      credentials,
      callbackChain: Promise.resolve(),
    };
    this.builds.set(image.id, build);
    build.actor = createActor(machine, {
      input: init.input,
      ...(init.snapshot ? { snapshot: init.snapshot as never } : {}),
      inspect: (ev: InspectionEvent) => {
        this.onInspection(build, ev);
        // --- inspect relay: a second observer; its faults never reach the build ---
        if (this.opts.inspect) {
          try {
            this.opts.inspect(ev, build.id);
          } catch (e) {
            this.opts.log?.(`inspect relay failed: ${(e as Error).message}`);
          }
        }
        // --- end inspect relay ---
      },
    });
    build.actor.start();
  }

  private onInspection(build: Build, ev: InspectionEvent): void {
    if (ev.type !== '@xstate.snapshot' || ev.actorRef !== build.actor) return;
    const snapshot = ev.snapshot as unknown as { value: string; context: BuildContext };
    const value = String(snapshot.value);
    if (value === build.lastValue) return;
    const from = build.lastValue;
    build.lastValue = value;
    const meta = stateMeta(build.kind, value);
    const final = (FINAL_STATES as readonly string[]).includes(value);
    // A build is only reported final once nothing of it is left behind.
    if (final) this.finish(build, value);
    const patch: Partial<ImageRecord> = { status: meta.status, activity: meta.activity, error: snapshot.context.error };
    const range = PROGRESS_RANGE[value];
    if (range) patch.percentComplete = range[0];
    if (value === 'complete') patch.percentComplete = 100;
    const transition = this.catalog.recordTransition({ imageId: build.id, from, to: value, event: ev.event.type }, patch, build.actor.getPersistedSnapshot());
    const image = this.catalog.getImage(build.id)!;
    this.logs.write(build.id, `state ${from ?? '(start)'} -> ${value} on ${ev.event.type}${image.error && (value === 'failing' || value === 'cancelling') ? `: ${image.error.code}: ${image.error.message}` : ''}`);
    this.publish({ type: 'transition', image, transition });
    if (from === null || stateMeta(build.kind, from).status !== meta.status) this.notifyCallbacks(build, image);
    queueMicrotask(() => this.afterTransition(build, value));
  }

  private afterTransition(build: Build, value: string): void {
    if (value === 'queued' && !build.admitted && this.builds.has(build.id)) {
      if (!this.queue.includes(build.id)) this.queue.push(build.id);
    }
    if ((FINAL_STATES as readonly string[]).includes(value)) build.actor.stop();
    this.pump();
  }

  /** Runs synchronously inside the final transition, before it is published. */
  private finish(build: Build, value: string): void {
    this.builds.delete(build.id);
    const i = this.queue.indexOf(build.id);
    if (i !== -1) this.queue.splice(i, 1);
    build.credentials = null;
    rmSync(workdirFor(this.opts.workRoot, build.id), { recursive: true, force: true });
    if (value !== 'complete') reapBuild(build.id, this.opts.workRoot);
  }

  /** Admits queued builds while slots are free. */
  private pump(): void {
    if (this.closing) return;
    for (const id of [...this.queue]) {
      const build = this.builds.get(id);
      if (!build) continue;
      const provider = build.kind === 'provider';
      const running = [...this.builds.values()].filter((b) => b.admitted && (b.kind === 'provider') === provider).length;
      const limit = provider ? this.opts.maxConcurrentProvider : this.opts.maxConcurrentLocal;
      if (running >= Math.max(1, limit)) continue;
      this.queue.splice(this.queue.indexOf(id), 1);
      build.admitted = true;
      build.actor.send({ type: 'ADMIT' });
    }
  }

  private provideImplementations(machine: BuildMachine): BuildMachine {
    return machine.provide({
      actors: {
        runStep: fromPromise<void, StepInput>(({ input, signal }) => this.track(input.imageId, this.runStep(input.imageId, input.step, signal))),
        compensate: fromPromise<void, CompensateInput>(({ input }) => this.compensate(input.imageId, input.steps)),
        awaitParent: fromPromise<void, AwaitParentInput>(({ input, signal }) => this.awaitParent(input.imageId, input.parentId, signal)),
        timer: fromCallback<EventObject, TimerInput>(({ input, sendBack }) => {
          // Long deadlines are re-armed in steps: setTimeout cannot wait more than ~24 days.
          let handle: NodeJS.Timeout;
          const arm = () => {
            const left = input.at - Date.now();
            if (left <= 0) return sendBack({ type: 'TIMEOUT', scope: input.scope } as EventObject);
            handle = setTimeout(arm, Math.min(left, 2 ** 31 - 1));
          };
          arm();
          return () => clearTimeout(handle);
        }),
      },
    }) as BuildMachine;
  }

  private track<T>(id: string, work: Promise<T>): Promise<T> {
    const build = this.builds.get(id);
    if (build) build.inflight = work.catch(() => undefined);
    return work;
  }

  private async runStep(id: string, step: string, signal: AbortSignal): Promise<void> {
    const image = this.mustGet(id);
    this.logs.write(id, `step ${step}: start`);
    const started = Date.now();
    try {
      await this.doStep(image, step, signal);
      this.logs.write(id, `step ${step}: done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    } catch (e) {
      const reason = signal.aborted ? 'aborted' : `failed: ${(e as Error).message}`;
      this.logs.write(id, `step ${step}: ${reason}`);
      throw e;
    }
  }

  private async doStep(image: ImageRecord, step: string, signal: AbortSignal): Promise<void> {
    switch (step) {
      case 'validate': {
        await this.osPluginFor(image);
        return;
      }
      case 'prepare':
      case 'install':
      case 'customize': {
        const plugin = await this.osPluginFor(image);
        await runOsStep(plugin, OS_STEPS[step], this.stepContext(image, signal));
        return;
      }
      case 'snapshot': {
        const ctx = this.stepContext(image, signal);
        const bodyPath = this.bodies.pathFor(image.id);
        const { sha256, size, format } = await snapshotBody({
          ctx,
          bodyPath,
          hash: (file, onProgress) => this.pool.sha256(file, { signal, onProgress }),
          freeze: async () => this.bodies.freeze(image.id),
        });
        const current = this.mustGet(image.id);
        this.catalog.updateImage(image.id, { bodyPath, properties: { ...current.properties, sha256, size, format } });
        return;
      }
      case 'adapt':
      case 'convert':
      case 'upload':
      case 'register':
        throw cloudPluginMissing(image.target ?? '');
      default:
        throw new StepError('internal', `unknown step ${step}`);
    }
  }

  private async osPluginFor(image: ImageRecord): Promise<OsPlugin> {
    const build = this.builds.get(image.id);
    if (build?.osPlugin) return build.osPlugin;
    const template = templateOf(image, this.opts.requireRootPassword ?? false);
    const found = this.registry.findOs(template.os.name, template.os.version, template.os.arch);
    if (!found) {
      const available = this.registry.list().filter((p) => p.info.type === 'os' && !p.error).map((p) => p.id);
      throw pluginMissing(template, available);
    }
    if (build) build.osPlugin = found.plugin;
    this.logs.write(image.id, `OS plugin ${found.entry.id} builds ${template.os.name} ${template.os.version} ${template.os.arch}`);
    return found.plugin;
  }

  private stepContext(image: ImageRecord, signal: AbortSignal): StepContext {
    const workdir = workdirFor(this.opts.workRoot, image.id);
    return {
      image,
      template: templateOf(image, false),
      parameters: image.parameters,
      workdir,
      diskPath: join(workdir, 'disk.img'),
      signal,
      log: (line) => this.logs.write(image.id, line),
      progress: (percent, activity) => this.reportProgress(image.id, percent, activity),
      run: (command, args, { onLine, ...options } = {}) =>
        runProcess(command, args, {
          ...options,
          buildId: image.id,
          signal,
          log: (line) => {
            this.logs.write(image.id, `${command}: ${line}`);
            onLine?.(line);
          },
        }),
      runGuest: (spec) => this.runGuest(image.id, spec, signal),
      media: this.media,
      report: (facts) => {
        const current = this.mustGet(image.id);
        this.catalog.updateImage(image.id, {
          ...(facts.icicle !== undefined ? { icicle: facts.icicle } : {}),
          ...(facts.properties ? { properties: { ...current.properties, ...facts.properties } } : {}),
        });
      },
    };
  }

  private openedHypervisor(): Promise<OpenedHypervisor> {
    this.hypervisor ??= openHypervisor({
      hypervisor: this.opts.hypervisor ?? 'auto',
      accel: this.opts.accel ?? 'auto',
      libvirtUri: this.opts.libvirtUri ?? 'qemu:///system',
      qemuRunDir: this.qemuRunDir(),
      log: (line) => this.opts.log?.(line),
    });
    return this.hypervisor;
  }

  /** QMP sockets live with the daemon's data, not in a shared /tmp directory left behind. */
  private qemuRunDir(): string {
    return join(this.opts.storagePath, 'qemu-run');
  }

  private async runGuest(imageId: string, spec: GuestSpec, signal: AbortSignal): Promise<void> {
    const { driver, accel } = await this.openedHypervisor();
    const name = domainName(imageId, spec.purpose);
    const log = (line: string) => this.logs.write(imageId, line);
    // A repeated step starts from a clean slate: a guest of an earlier attempt goes first.
    await driver.reap(name);
    const { purpose: _purpose, stallSeconds: _stall, ...asked } = spec;
    const domain = await driver.define({ ...asked, name, memoryMiB: spec.memoryMiB ?? 1024, vcpus: spec.vcpus ?? 1, accel });
    log(`guest ${name}: starting on ${driver.kind} (${accel})`);
    try {
      await domain.start();
    } catch (e) {
      await domain.destroy();
      throw e;
    }
    const image = this.mustGet(imageId);
    const result = await watchInstall(domain, {
      stallSeconds: spec.stallSeconds ?? this.opts.stallSeconds ?? 300,
      deadline: image.deadline ?? Number.MAX_SAFE_INTEGER,
      signal,
      artifactsDir: join(this.opts.storagePath, 'artifacts', imageId),
      serialLog: spec.serialLog,
      log,
    });
    log(`guest ${name}: powered off after ${(result.elapsedMs / 1000).toFixed(1)} s`);
  }

  /** Destroys guests left by a build: qemu processes whatever the driver, and libvirt domains when libvirt is in use. */
  private async reapGuests(imageId: string): Promise<string[]> {
    const prefix = `${DOMAIN_PREFIX}${imageId}`;
    const reaped = await new QemuDriver({ runDir: this.qemuRunDir() }).reap(prefix).catch(() => [] as string[]);
    if (this.opts.hypervisor !== 'qemu') {
      const opened = await this.openedHypervisor().catch(() => null);
      if (opened?.driver.kind === 'libvirt') reaped.push(...(await opened.driver.reap(prefix).catch(() => [] as string[])));
    }
    return reaped;
  }

  private reportProgress(id: string, percent: number, activity: string): void {
    const image = this.catalog.getImage(id);
    const range = image ? PROGRESS_RANGE[image.phase] : undefined;
    if (!image || !range) return;
    const scaled = Math.floor(range[0] + ((range[1] - range[0]) * Math.min(100, Math.max(0, percent))) / 100);
    if (scaled === image.percentComplete && activity === image.activity) return;
    const updated = this.catalog.updateImage(id, { percentComplete: Math.max(scaled, image.percentComplete), activity });
    this.publish({ type: 'progress', image: updated });
  }

  /** Undoes the given steps (most recent first) after the running step has let go. Undo errors are logged, not fatal. */
  private async compensate(id: string, steps: string[]): Promise<void> {
    const build = this.builds.get(id);
    await build?.inflight;
    const image = this.catalog.getImage(id);
    if (!image) return;
    for (const step of steps) {
      try {
        await this.undoStep(image, step);
        this.logs.write(id, `undo ${step}: done`);
      } catch (e) {
        this.logs.write(id, `undo ${step}: failed: ${(e as Error).message}`);
      }
    }
    const guests = await this.reapGuests(id);
    if (guests.length) this.logs.write(id, `reaped guests ${guests.join(', ')}`);
    if (build?.ownedParent) this.cancelIfRunning(build.ownedParent);
  }

  private async undoStep(image: ImageRecord, step: string): Promise<void> {
    const ctx = () => this.stepContext(image, AbortSignal.abort());
    switch (step) {
      case 'prepare':
      case 'install':
      case 'customize': {
        const plugin = await this.osPluginFor(image).catch(() => null);
        await plugin?.[OS_STEPS[step]].undo(ctx());
        if (step === 'prepare') await removeWorkdir(workdirFor(this.opts.workRoot, image.id));
        return;
      }
      case 'snapshot':
        this.bodies.remove(image.id);
        this.catalog.updateImage(image.id, { bodyPath: null });
        return;
      default:
        return;
    }
  }

  private awaitParent(id: string, parentId: string, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const parent = this.catalog.getImage(parentId);
        if (!parent) {
          reject(new StepError('parent_missing', `the parent image ${parentId} no longer exists`));
          return true;
        }
        if (parent.status === 'COMPLETE') {
          resolve();
          return true;
        }
        if (FINAL_STATUSES.includes(parent.status) || parent.status === 'DELETING') {
          const why = parent.error ? `${parent.error.code}: ${parent.error.message}` : parent.status;
          reject(new StepError('parent_failed', `${parent.kind} ${parentId} ended ${parent.status} (${why})`, { parentId }));
          return true;
        }
        return false;
      };
      if (check()) return;
      const unsubscribe = this.subscribe((e) => {
        if (e.image.id === parentId && check()) unsubscribe();
      });
      signal.addEventListener('abort', () => {
        unsubscribe();
        const build = this.builds.get(id);
        if (build?.ownedParent === parentId) this.cancelIfRunning(parentId);
        reject(new StepError('cancelled', 'stopped waiting for the parent image'));
      });
    });
  }

  private cancelIfRunning(id: string): void {
    const build = this.builds.get(id);
    if (build) build.actor.send({ type: 'CANCEL' });
  }

  // ---- events and callbacks -------------------------------------------------

  private publish(event: EngineEvent): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (e) {
        this.opts.log?.(`event listener failed: ${(e as Error).message}`);
      }
    }
  }

  private notifyCallbacks(build: Build, image: ImageRecord): void {
    const urls = callbackUrls(image.parameters);
    if (!urls.length) return;
    const body = this.opts.present ? this.opts.present(image) : image;
    const log = (line: string) => this.logs.write(image.id, line);
    // One chain per build keeps deliveries in status order without blocking the build.
    build.callbackChain = build.callbackChain.then(() => Promise.all(urls.map((u) => deliverCallback(u, body, { log }))));
  }

  subscribe(listener: (event: EngineEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // ---- read side ------------------------------------------------------------

  getImage(id: string): ImageRecord | null {
    return this.catalog.getImage(id);
  }

  listImages(filter: { kind?: ImageKind; baseImageId?: string; targetImageId?: string } = {}): ImageRecord[] {
    return this.catalog.listImages(filter);
  }

  transitions(id: string): TransitionRecord[] {
    this.mustGet(id);
    return this.catalog.transitions(id);
  }

  machine(id: string): MachineView {
    const image = this.mustGet(id);
    const transitions = this.catalog.transitions(id);
    const visited = [...new Set(transitions.map((t) => t.to))];
    return { definition: MACHINES[BUILD_KIND[image.kind]].toJSON(), value: image.phase, visited };
  }

  logPath(id: string): string | null {
    this.mustGet(id);
    const path = this.logs.pathFor(id);
    return existsSync(path) ? path : null;
  }

  followLog(id: string, onChunk: (text: string) => void): () => void {
    return this.logs.follow(id, onChunk);
  }

  plugins(): Record<string, unknown>[] {
    return this.registry.list().map((p) => ({ ...p.info, id: p.id, ...(p.error ? { error: p.error } : {}) }));
  }

  private mustGet(id: string): ImageRecord {
    const image = this.catalog.getImage(id);
    if (!image) throw new EngineError('image_not_found', `no image with id ${id}`);
    return image;
  }

  // ---- commands -------------------------------------------------------------

  cancel(id: string): void {
    const image = this.mustGet(id);
    const build = this.builds.get(id);
    if (!build) throw new EngineError('conflict', `image ${id} is ${image.status}; only a build in progress can be cancelled`);
    build.actor.send({ type: 'CANCEL' });
  }

  deleteImage(id: string, opts: { cascade?: boolean } = {}): void {
    const image = this.mustGet(id);
    const children = this.catalog.children(id);
    if (children.length && !opts.cascade) {
      throw new EngineError('conflict', `image ${id} has ${children.length} child image(s); delete them first or pass cascade=true`, {
        children: children.map((c) => c.id),
      });
    }
    if (image.status === 'DELETING') return;
    void this.deleteTree(image).catch((e) => this.opts.log?.(`deleting ${id} failed: ${(e as Error).message}`));
  }

  private async deleteTree(image: ImageRecord): Promise<void> {
    for (const child of this.catalog.children(image.id)) await this.deleteTree(child);
    const build = this.builds.get(image.id);
    if (build) {
      await new Promise<void>((resolve) => {
        const off = this.subscribe((e) => {
          if (e.image.id === image.id && FINAL_STATUSES.includes(e.image.status)) {
            off();
            resolve();
          }
        });
        build.actor.send({ type: 'CANCEL' });
      });
    }
    const current = this.mustGet(image.id);
    const transition = this.catalog.recordTransition(
      { imageId: image.id, from: current.phase, to: 'deleting', event: 'DELETE' },
      { status: 'DELETING', activity: 'Deleting the image' },
      this.catalog.loadSnapshot(image.id),
    );
    this.publish({ type: 'transition', image: this.catalog.getImage(image.id)!, transition });
    try {
      this.bodies.remove(image.id);
      reapBuild(image.id, this.opts.workRoot);
      this.catalog.deleteImage(image.id);
      this.publish({ type: 'deleted', image: { ...current, status: 'DELETED', phase: 'deleted', updated: new Date().toISOString() } });
    } catch (e) {
      this.catalog.updateImage(image.id, { status: 'DELETEFAILED', error: { code: 'delete_failed', message: (e as Error).message } });
      throw e;
    }
  }

  // ---- recovery and shutdown ------------------------------------------------

  /** Resumes every unfinished build whose step can run again; fails the rest with `interrupted`. */
  private async recover(): Promise<void> {
    for (const image of this.catalog.unfinished()) {
      if (image.status === 'DELETING') {
        await this.deleteTree(image).catch(() => undefined);
        continue;
      }
      const snapshot = this.catalog.loadSnapshot(image.id) as { value?: string; context?: BuildContext } | null;
      const value = snapshot?.value ? String(snapshot.value) : null;
      const resumable = value !== null && (await this.canResume(image, value));
      if (!resumable) {
        await this.failInterrupted(image, value, snapshot?.context?.steps ?? []);
        continue;
      }
      // Processes of the old daemon are orphans now; the step starts over, keeping its workdir.
      const reaped = [...(await this.reapGuests(image.id)), ...reapBuild(image.id, this.opts.workRoot, { keepWorkdir: true })];
      this.logs.write(image.id, `daemon restarted: resuming in state ${value}${reaped.length ? `; reaped ${reaped.join(', ')}` : ''}`);
      const parentId = image.kind === 'TargetImage' ? image.baseImageId : image.kind === 'ProviderImage' ? image.targetImageId : null;
      this.startActor(
        image,
        { input: { imageId: image.id, deadline: image.deadline ?? Date.now(), phaseLimits: this.opts.phaseLimits ?? {}, parentId }, snapshot },
        null,
        null,
      );
      const build = this.builds.get(image.id);
      if (build && value !== 'queued' && !value.startsWith('waiting_for')) build.admitted = true;
      if (build && value === 'queued') this.queue.push(image.id);
    }
    this.pump();
  }

  private async canResume(image: ImageRecord, value: string): Promise<boolean> {
    if ((FINAL_STATES as readonly string[]).includes(value)) return false;
    // A provider build needs credentials, which are never stored: it cannot go on after a restart.
    if (image.kind === 'ProviderImage' && !['queued', 'waiting_for_target', 'failing', 'cancelling'].includes(value)) return false;
    if (RESUMABLE_WITHOUT_CHECK.has(value)) return true;
    if (image.kind !== 'BaseImage') return true;
    if (!parseTdl(image.template ?? '').ok) return false;
    if (value === 'snapshotting') {
      return existsSync(join(workdirFor(this.opts.workRoot, image.id), 'disk.img')) || this.bodies.exists(image.id);
    }
    try {
      const template = templateOf(image, false);
      return this.registry.findOs(template.os.name, template.os.version, template.os.arch) !== null;
    } catch {
      return false;
    }
  }

  private async failInterrupted(image: ImageRecord, value: string | null, steps: string[]): Promise<void> {
    for (const step of [...steps].reverse()) await this.undoStep(image, step).catch(() => undefined);
    const reaped = [...(await this.reapGuests(image.id)), ...reapBuild(image.id, this.opts.workRoot)];
    const error = { code: 'interrupted', message: `the daemon stopped while the build was ${value ?? 'starting'}, and the build could not be resumed` };
    const snapshot = this.catalog.loadSnapshot(image.id) ?? {};
    const transition = this.catalog.recordTransition(
      { imageId: image.id, from: value, to: 'failed', event: 'interrupted' },
      { status: 'FAILED', activity: stateMeta(BUILD_KIND[image.kind], 'failed').activity, error },
      { ...(snapshot as object), value: 'failed', status: 'done' },
    );
    this.logs.write(image.id, `daemon restarted: ${error.message}${reaped.length ? `; reaped ${reaped.join(', ')}` : ''}`);
    this.publish({ type: 'transition', image: this.catalog.getImage(image.id)!, transition });
  }

  async shutdown(): Promise<void> {
    this.closing = true;
    const running = [...this.builds.values()];
    // Stopping an actor aborts its steps; the catalog keeps the state for the next start.
    for (const b of running) b.actor.stop();
    await Promise.all(running.map((b) => b.inflight));
    this.builds.clear();
    await this.pool.destroy();
    const opened = await this.hypervisor?.catch(() => null);
    await opened?.driver.close();
    this.catalog.close();
  }
}

function stateMeta(kind: BuildKind, value: string): { status: ImageStatus; activity: string } {
  const node = (MACHINES[kind].config.states as Record<string, { meta?: { status: ImageStatus; activity: string } }>)[value];
  return node?.meta ?? { status: 'BUILDING', activity: value };
}
