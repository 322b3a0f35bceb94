import { open } from 'node:fs/promises';
import { formatTdlError, type TdlError } from './errors.js';
import { parseTdl, type ParseOptions } from './parse.js';
import { DEFAULT_XML_LIMITS } from './xml-guard.js';
import { tooLarge } from './xml-guard.js';

export interface ValidationReport {
  file: string;
  valid: boolean;
  errors: TdlError[];
}

export class TemplateUnreadableError extends Error {
  readonly code = 'template_unreadable';
  constructor(
    readonly file: string,
    cause: NodeJS.ErrnoException,
  ) {
    super(`${file}: cannot read: ${cause.code === 'ENOENT' ? 'no such file' : cause.message}`);
    this.name = 'TemplateUnreadableError';
  }
}

/**
 * Validates a template file. The size is checked on the open file before
 * any byte is read, so an oversized document costs nothing.
 */
export async function validateTemplateFile(file: string, options: ParseOptions = {}): Promise<ValidationReport> {
  const maxBytes = options.limits?.maxBytes ?? DEFAULT_XML_LIMITS.maxBytes;
  let text: string;
  try {
    const handle = await open(file, 'r');
    try {
      const { size, isFile } = await handle.stat().then((s) => ({ size: s.size, isFile: s.isFile() }));
      if (isFile && size > maxBytes) return { file, valid: false, errors: [tooLarge(size, maxBytes)] };
      text = await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  } catch (err) {
    throw new TemplateUnreadableError(file, err as NodeJS.ErrnoException);
  }
  const result = parseTdl(text, options);
  return { file, valid: result.ok, errors: result.ok ? [] : result.errors };
}

export function formatReport(report: ValidationReport): string {
  if (report.valid) return `${report.file}: ok`;
  return report.errors.map((e) => `${report.file}: ${formatTdlError(e)}`).join('\n');
}
