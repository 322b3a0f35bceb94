/** Why an answer file could not be generated; stable codes for `status_detail.error`. */
export type AnswerErrorCode =
  | 'unsupported_os'
  | 'unsupported_version'
  | 'unsupported_arch'
  | 'mirror_invalid'
  | 'repository_invalid'
  | 'package_invalid'
  | 'disk_too_small'
  | 'install_script_invalid';

export class AnswerError extends Error {
  constructor(
    readonly code: AnswerErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'AnswerError';
  }
}
