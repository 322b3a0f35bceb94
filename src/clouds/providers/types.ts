// The contract between the build engine and the provider pushes (EC2, libvirt, OpenStack Glance,
// an OCI registry). A push takes one finished target image and publishes it on one provider;
// the engine calls it from its upload step, and `cleanup` from that step's undo.
//
// Credentials arrive as the raw strings of the request (XML or JSON) and are parsed, used and
// dropped inside the call: nothing here stores them, and every error that leaves a push has been
// scrubbed of them (see ./secrets.ts).
import type { WorkerPool } from '../../pool/index.js';

/** The targets whose images a provider push knows how to publish. */
export type PushTarget = 'ec2' | 'openstack-kvm' | 'libvirt' | 'docker';

/** Something a push created on the provider, recorded as soon as it exists so that it can be removed. */
export interface ProviderResource {
  /** `ec2-snapshot`, `ec2-image`, `glance-image`, `libvirt-volume`, `libvirt-domain`, `registry-blob`, `registry-manifest`. */
  kind: string;
  /** The provider's id: `snap-…`, `ami-…`, a Glance uuid, a volume or domain name, a digest. */
  id: string;
  /** Where it lives when the provider document alone does not say: a storage pool, a repository. */
  location?: string;
}

export interface PushProgress {
  /** 0…1 of this push. */
  fraction: number;
  /** A sentence for `status_detail.activity`. */
  activity: string;
  /** `uploading` while the image's bytes travel, `registering` while the provider makes it usable. */
  phase: 'uploading' | 'registering';
  /** Counters of the push, e.g. EC2's `{ blocksSent, blocksSkipped, blocksTotal, bytesSent }`. */
  counters?: Record<string, number>;
}

export interface PushContext {
  /** The provider image's id in the factory: tags, names and idempotency tokens derive from it. */
  imageId: string;
  target: PushTarget;
  /** The target image's body: raw (ec2), qcow2 (openstack-kvm, libvirt), an OCI archive (docker). */
  file: string;
  /** The template's `<name>`, for names on the provider (AMI name, domain name). */
  templateName: string;
  /** The template's architecture (`x86_64`, `aarch64`, `i386`…). */
  arch: string;
  /** The request's `provider`: a name (`ec2-us-east-1`, `@ec2-us-east-1`) or a JSON document. */
  provider: string;
  /** The request's `credentials`: an XML `<provider_credentials>` document or JSON. Never stored. */
  credentials: string;
  /** The provider image's (and its target's) parameters: `snapshot`, `repository`, `tag`, `boot_mode`… */
  parameters: Record<string, unknown>;
  /** Aborted on cancel, timeout or shutdown: the push stops and removes what it created. */
  signal: AbortSignal;
  log(line: string): void;
  progress(progress: PushProgress): void;
  /** Called once for each resource as soon as the provider has it; the engine persists it for cleanup. */
  record(resource: ProviderResource): void;
  /** The worker pool, for CPU-heavy scans (EC2's zero-block detection and block hashing). */
  pool: WorkerPool;
  /** Settings of the push (parallel requests, timeouts…); defaults otherwise. */
  options?: PushOptions;
}

export interface PushOptions {
  /** Requests in flight at once (EBS blocks); default 8. */
  parallelRequests?: number;
  /** One request's time limit, inside the overall budget; default 60 s. */
  requestTimeoutMs?: number;
  /** The whole push's time limit; default 3 h. */
  budgetMs?: number;
  /** Attempts per request on throttling, 5xx, dropped connections and timeouts; default 8. */
  attempts?: number;
  /** First backoff step; later ones double, with full jitter; default 200 ms. */
  backoffBaseMs?: number;
  /** Longest single backoff; default 20 s. */
  backoffMaxMs?: number;
  /** How often to ask whether the provider finished its part (snapshot completed, image active); default 1 s. */
  pollIntervalMs?: number;
}

export interface PushResult {
  /** What the provider calls the image: an AMI id, a Glance uuid, a libvirt domain name, `registry/repo@sha256:…`. */
  identifierOnProvider: string;
  /** The account or project the image belongs to, when the provider says (`provider_account_identifier`). */
  providerAccountIdentifier?: string;
  /** Everything the push created, for the image's record and for `cleanup`. */
  resources: ProviderResource[];
  /** Facts worth keeping in the record's properties (snapshot id, bytes sent, checksum…). */
  facts: Record<string, unknown>;
}

/** What `cleanup` and `delete` need besides the resources: where, and as whom. */
export interface ProviderAccess {
  target: PushTarget;
  provider: string;
  credentials: string;
  signal?: AbortSignal;
  log?: (line: string) => void;
  options?: PushOptions;
}

export interface CleanupRequest extends ProviderAccess {
  /** Resources recorded by `push` (through `record`, or its result). */
  resources: ProviderResource[];
}

export interface DeleteRequest extends ProviderAccess {
  /** The image's `identifier_on_provider`. */
  identifierOnProvider: string;
  /** The resources in the image's record, when there are: removed too (EC2's snapshot). */
  resources?: ProviderResource[];
}

/** One cloud's push. Every method rejects with a `ProviderError` (./errors.ts), scrubbed of credentials. */
export interface ProviderPush {
  readonly targets: readonly PushTarget[];
  /**
   * Publishes `ctx.file`. On failure or cancel it removes what it created before it rejects
   * (`cancelled` when `ctx.signal` aborted), so the provider is left as it was.
   */
  push(ctx: PushContext): Promise<PushResult>;
  /** Removes the given resources; what is already gone is fine, so it is safe to run twice. */
  cleanup(request: CleanupRequest): Promise<void>;
  /** Removes a published image (`DELETE` of a provider image); an image already gone is fine. */
  delete(request: DeleteRequest): Promise<void>;
}
