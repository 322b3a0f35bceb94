/**
 * Stable codes for the warehouse's failures. Callers branch on `code`, never
 * on the message; the engine maps `image_not_found` to its own 404.
 */
export type StoreErrorCode =
  /** No image row with that id. */
  | 'image_not_found'
  /** insertImage with an id that is already taken. */
  | 'image_exists'
  /** A value the schema refuses (unknown status or kind, unknown patch field). */
  | 'invalid_record'
  /** A value that cannot be written as JSON (a BigInt, a cycle). */
  | 'not_serializable'
  /** An id or suffix that would escape the storage directory when used in a file name. */
  | 'invalid_id'
  /** freeze() of a body file that does not exist. */
  | 'body_not_found'
  /** The catalog file is not a database, or a row does not decode. */
  | 'store_corrupt'
  /** The catalog was written by a newer version of this program (its schema version is unknown here). */
  | 'store_too_new'
  /** Another process (named in `details.pid`) uses the storage path. */
  | 'storage_locked';

export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StoreError';
    if (options.details) this.details = options.details;
  }

  readonly details?: Record<string, unknown>;
}

export function isStoreError(e: unknown, code?: StoreErrorCode): e is StoreError {
  return e instanceof StoreError && (code === undefined || e.code === code);
}
