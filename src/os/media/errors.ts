/** Why install media could not be prepared; stable codes for `status_detail.error`. */
export type MediaErrorCode =
  | 'download_failed'
  | 'download_aborted'
  | 'checksum_missing'
  | 'checksum_mismatch'
  | 'installer_not_found'
  | 'iso_invalid'
  | 'tool_failed'
  | 'invalid_argument'
  | 'file_url_forbidden';

export class MediaError extends Error {
  constructor(
    readonly code: MediaErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'MediaError';
  }
}
