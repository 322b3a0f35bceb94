/** Stable codes for everything a template can get wrong. */
export type TdlErrorCode =
  | 'xml_too_large'
  | 'xml_too_deep'
  | 'xml_forbidden_declaration'
  | 'xml_undefined_entity'
  | 'xml_malformed'
  | 'wrong_root'
  | 'missing_element'
  | 'duplicate_element'
  | 'unexpected_element'
  | 'unexpected_text'
  | 'missing_attribute'
  | 'unexpected_attribute'
  | 'invalid_value'
  | 'invalid_base64'
  | 'empty_command'
  | 'invalid_position'
  | 'localhost_repository'
  | 'invalid_disk_size'
  | 'invalid_file_name'
  | 'file_url_forbidden';

export interface TdlError {
  code: TdlErrorCode;
  /** XPath-like location, e.g. `/template/commands/command[2]`. */
  path: string;
  line: number;
  col: number;
  message: string;
}

/** `line 7, col 5: /template/os/install: type must be "url" or "iso", got "floppy"` */
export function formatTdlError(e: TdlError): string {
  return `line ${e.line}, col ${e.col}: ${e.path}: ${e.message}`;
}

/** Thrown by `parseTdlOrThrow`; carries every error of the document. */
export class TemplateInvalidError extends Error {
  readonly code = 'template_invalid';
  constructor(readonly errors: TdlError[]) {
    super(errors.map(formatTdlError).join('\n'));
    this.name = 'TemplateInvalidError';
  }
}
