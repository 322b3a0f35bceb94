/** Why a plugin could not be used; each broken registry entry carries one of these codes. */
export type PluginErrorCode =
  | 'info_unreadable'
  | 'info_not_json'
  | 'info_invalid'
  | 'duplicate_id'
  | 'builtin_unknown'
  | 'module_not_found'
  | 'module_import_failed'
  | 'module_invalid';

export class PluginError extends Error {
  constructor(
    readonly code: PluginErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'PluginError';
  }
}

/** `null`, `array`, or the `typeof` of a value, for messages like "got array". */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

/** The message of whatever was thrown, without assuming it is an Error. */
export function thrownMessage(thrown: unknown): string {
  return thrown instanceof Error ? thrown.message : String(thrown);
}
