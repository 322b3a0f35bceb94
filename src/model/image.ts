import type { BuildError } from './errors.js';
import type { ImageKind } from './kinds.js';
import type { ImageStatus } from './status.js';

/** An image as the catalog keeps it and the API shows it. */

export interface ImageRecord {
  id: string;
  kind: ImageKind;
  status: ImageStatus;
  /** The build machine's current state value, e.g. `installing`. */
  phase: string;
  activity: string;
  error: BuildError | null;
  percentComplete: number;
  /** TDL text; rootpw is masked when shown over the API. */
  template: string | null;
  icicle: string | null;
  parameters: Record<string, unknown>;
  properties: Record<string, unknown>;
  baseImageId: string | null;
  targetImageId: string | null;
  target: string | null;
  provider: string | null;
  identifierOnProvider: string | null;
  providerAccountIdentifier: string | null;
  /** Absolute path of the body file, or null before there is one. */
  bodyPath: string | null;
  /** Absolute build deadline (ms since epoch), counted from submission. */
  deadline: number | null;
  created: string;
  updated: string;
}

export interface TransitionRecord {
  imageId: string;
  seq: number;
  from: string | null;
  to: string;
  event: string;
  at: string;
}

/** A record as a new image starts: NEW, nothing built, no parent; `fields` fill in the rest. */
export function newImageRecord(id: string, kind: ImageKind, at: Date, fields: Partial<ImageRecord> = {}): ImageRecord {
  return {
    id,
    kind,
    status: 'NEW',
    phase: 'new',
    activity: 'Initializing image prior to Cloud/OS customization',
    error: null,
    percentComplete: 0,
    template: null,
    icicle: null,
    parameters: {},
    properties: {},
    baseImageId: null,
    targetImageId: null,
    target: null,
    provider: null,
    identifierOnProvider: null,
    providerAccountIdentifier: null,
    bodyPath: null,
    deadline: null,
    created: at.toISOString(),
    updated: at.toISOString(),
    ...fields,
  };
}
