import type { ImageKind, ImageRecord, TransitionRecord } from '../model/index.js';

/** What a client asks for; the API maps REST bodies onto these. */
export interface BaseImageRequest {
  template: string;
  parameters?: Record<string, unknown>;
}
export interface TargetImageRequest {
  target: string;
  baseImageId?: string;
  template?: string;
  parameters?: Record<string, unknown>;
}
export interface ProviderImageRequest {
  target: string;
  provider: string;
  /** Passed to the cloud plugin for this build only; never stored, logged or returned. */
  credentials: string;
  targetImageId?: string;
  template?: string;
  parameters?: Record<string, unknown>;
}

/** How a submission treats a template that does not validate. */
export interface SubmitOptions {
  /**
   * `refuse` (the default): throw `template_invalid`, nothing is created.
   * `fail`: as the original Image Factory did, create the image FAILED at
   * once with the precise error in its record, for clients that POST and poll.
   */
  invalidTemplate?: 'refuse' | 'fail';
}

export interface DeleteRequest {
  cascade?: boolean;
  /** Provider images: where to delete it, with what credentials (never stored), for which target. */
  provider?: string;
  credentials?: string;
  target?: string;
}

/** Published after the store has committed it. */
export type EngineEvent =
  | { type: 'transition'; image: ImageRecord; transition: TransitionRecord }
  | { type: 'progress'; image: ImageRecord }
  | { type: 'deleted'; image: ImageRecord };

export interface MachineView {
  /** The machine definition as XState describes it (states, transitions), for drawing. */
  definition: unknown;
  /** The current state value. */
  value: string;
  /** States visited so far, in order. */
  visited: string[];
}

/** The read and command side of the engine that the REST layer, the inspector and the CLI use. */
export interface EngineApi {
  readonly version: string;
  submitBaseImage(req: BaseImageRequest, opts?: SubmitOptions): ImageRecord;
  submitTargetImage(req: TargetImageRequest, opts?: SubmitOptions): ImageRecord;
  submitProviderImage(req: ProviderImageRequest, opts?: SubmitOptions): ImageRecord;
  getImage(id: string): ImageRecord | null;
  listImages(filter?: { kind?: ImageKind; baseImageId?: string; targetImageId?: string }): ImageRecord[];
  transitions(id: string): TransitionRecord[];
  machine(id: string): MachineView;
  /** Requests cancellation and returns at once; the build reaches CANCELLED when its undo has run. */
  cancel(id: string): void;
  /**
   * Deletes asynchronously; refuses an image with children unless cascade.
   * A provider image's `provider` and/or `credentials` ask for its removal
   * from the provider too (the credentials are used for that and dropped).
   */
  deleteImage(id: string, opts?: DeleteRequest): void;
  /** Adds a line to a build's log (what listeners such as callbacks did for it). */
  note(id: string, line: string): void;
  /** Path of the build log (text), or null. */
  logPath(id: string): string | null;
  /** Follows the build log: text written after the call (the file at `logPath` has what came before); returns an unsubscribe function. */
  followLog(id: string, onChunk: (text: string) => void): () => void;
  subscribe(listener: (event: EngineEvent) => void): () => void;
  /** Plugins in the REST shape (`.info` fields, `id`, `error` for broken ones), without `href`. */
  plugins(): Record<string, unknown>[];
  /** Stops accepting work; running builds stop and stay resumable. */
  shutdown(): Promise<void>;
}
