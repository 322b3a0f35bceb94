import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { EngineApi, EngineEvent } from '../engine/types.js';
import type { ImageKind, ImageRecord } from '../model/index.js';

/**
 * The daemon's Prometheus metrics, computed from the engine's events (the
 * engine knows nothing of them): builds by kind, final status and error
 * code; time spent in each phase; the queue; running guests; bytes pushed.
 */

export interface MetricsSource {
  readonly contentType: string;
  text(): Promise<string>;
}

export interface BuildMetricsOptions {
  /** How many guests (VMs) of this daemon run now; counted at each scrape. */
  runningGuests?: () => number;
  /** Also the process metrics of prom-client (memory, CPU, event loop, handles). */
  processMetrics?: boolean;
}

const KIND_LABEL: Record<ImageKind, string> = { BaseImage: 'base', TargetImage: 'target', ProviderImage: 'provider' };
const FINAL_PHASES = new Set(['complete', 'failed', 'cancelled']);
/** The provider label of pushed bytes: the kind of provider a target is pushed to (a provider document is no label). */
const PROVIDER_KIND: Record<string, string> = { ec2: 'ec2', 'openstack-kvm': 'openstack', libvirt: 'libvirt', docker: 'registry' };
/** From a few seconds (validation) to the longest phase limits (30 min and more). */
const PHASE_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200];

interface Tracked {
  kind: string;
  phase: string;
  /** When the current phase began, in ms; null when it began before this daemon saw it (recovered builds). */
  since: number | null;
}

export class BuildMetrics implements MetricsSource {
  readonly registry = new Registry();
  private readonly live = new Map<string, Tracked>();
  private readonly unsubscribe: () => void;
  private readonly finished: Counter<'kind' | 'status' | 'error_code'>;
  private readonly submitted: Counter<'kind'>;
  private readonly phaseSeconds: Histogram<'kind' | 'phase'>;
  /** Bytes a provider image's push sent, counted when it completes, by the kind of provider. */
  readonly pushedBytes: Counter<'provider'>;

  constructor(engine: EngineApi, opts: BuildMetricsOptions = {}) {
    const register = [this.registry];
    if (opts.processMetrics) collectDefaultMetrics({ register: this.registry });
    this.finished = new Counter({
      name: 'imagefactory_builds_finished_total',
      help: 'Builds that reached a final state, by kind, final status and error code ("" when none).',
      labelNames: ['kind', 'status', 'error_code'],
      registers: register,
    });
    this.submitted = new Counter({ name: 'imagefactory_builds_submitted_total', help: 'Builds submitted, by kind.', labelNames: ['kind'], registers: register });
    this.phaseSeconds = new Histogram({
      name: 'imagefactory_phase_duration_seconds',
      help: 'Time builds spent in each phase (build machine state), by kind and phase.',
      labelNames: ['kind', 'phase'],
      buckets: PHASE_BUCKETS,
      registers: register,
    });
    this.pushedBytes = new Counter({ name: 'imagefactory_pushed_bytes_total', help: 'Bytes pushed to cloud providers, by provider.', labelNames: ['provider'], registers: register });
    const live = this.live;
    new Gauge({
      name: 'imagefactory_build_queue_length',
      help: 'Builds waiting for a build slot.',
      registers: register,
      collect() {
        this.set([...live.values()].filter((t) => t.phase === 'queued').length);
      },
    });
    new Gauge({
      name: 'imagefactory_builds_active',
      help: 'Builds admitted and not final (working, or waiting for a parent image), by kind.',
      labelNames: ['kind'],
      registers: register,
      collect() {
        this.reset();
        for (const kind of Object.values(KIND_LABEL)) this.set({ kind }, [...live.values()].filter((t) => t.kind === kind && t.phase !== 'queued').length);
      },
    });
    const guests = opts.runningGuests;
    new Gauge({
      name: 'imagefactory_running_guests',
      help: 'Guests (virtual machines) of builds running now.',
      registers: register,
      collect() {
        this.set(guests ? guests() : 0);
      },
    });
    // Builds the engine recovered at start: tracked from their current phase, whose start is unknown.
    for (const image of engine.listImages()) {
      if (['NEW', 'PENDING', 'BUILDING'].includes(image.status)) this.live.set(image.id, { kind: KIND_LABEL[image.kind], phase: image.phase, since: null });
    }
    this.unsubscribe = engine.subscribe((event) => this.observe(event));
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  close(): void {
    this.unsubscribe();
    this.registry.clear();
  }

  /** What the push says it sent (EC2's bytes_sent, a registry's bytes, Glance's size); the provider by kind, never its document. */
  private countPushed(image: ImageRecord): void {
    const facts = (image.properties.push ?? {}) as Record<string, unknown>;
    const bytes = [facts.bytes_sent, facts.bytes, facts.size].find((v): v is number => typeof v === 'number' && v >= 0);
    if (bytes === undefined) return;
    this.pushedBytes.inc({ provider: PROVIDER_KIND[image.target ?? ''] ?? 'other' }, bytes);
  }

  private observe(event: EngineEvent): void {
    const { image } = event;
    if (event.type === 'deleted') {
      this.live.delete(image.id);
      return;
    }
    if (event.type !== 'transition') return;
    const kind = KIND_LABEL[image.kind];
    const { from, to, at } = event.transition;
    const atMs = Date.parse(at);
    const known = this.live.get(image.id);
    if (from === null) this.submitted.inc({ kind });
    if (known && known.since !== null && known.phase === from && Number.isFinite(atMs)) {
      this.phaseSeconds.observe({ kind, phase: from }, Math.max(0, (atMs - known.since) / 1000));
    }
    if (FINAL_PHASES.has(to)) {
      this.live.delete(image.id);
      this.finished.inc({ kind, status: image.status, error_code: image.error?.code ?? '' });
      if (image.kind === 'ProviderImage' && to === 'complete') this.countPushed(image);
      return;
    }
    // `deleting` is no build phase: the image leaves the build metrics.
    if (to === 'deleting') {
      this.live.delete(image.id);
      return;
    }
    this.live.set(image.id, { kind, phase: to, since: Number.isFinite(atMs) ? atMs : null });
  }
}
