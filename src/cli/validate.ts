import { formatReport, TemplateUnreadableError, validateTemplateFile, type ValidationReport } from '../tdl/validate-file.js';

export const EXIT = { ok: 0, invalid: 1, usage: 2 } as const;

/** `imagefactory validate FILE...`: 0 when all are valid, 1 when any is invalid, 2 on usage errors. */
export async function runValidate(files: string[], opts: { json: boolean }, out = process.stdout, err = process.stderr): Promise<number> {
  if (files.length === 0) {
    err.write('imagefactory validate: no template file given\nusage: imagefactory validate [--json] FILE...\n');
    return EXIT.usage;
  }
  const reports: ValidationReport[] = [];
  const unreadable: { file: string; error: string }[] = [];
  for (const file of files) {
    try {
      reports.push(await validateTemplateFile(file));
    } catch (e) {
      if (!(e instanceof TemplateUnreadableError)) throw e;
      unreadable.push({ file, error: e.message });
    }
  }
  if (opts.json) {
    out.write(JSON.stringify({ valid: reports.every((r) => r.valid) && unreadable.length === 0, files: reports, unreadable }, null, 2) + '\n');
  } else {
    for (const r of reports) out.write(formatReport(r) + '\n');
    for (const u of unreadable) err.write(`imagefactory validate: ${u.error}\n`);
  }
  if (unreadable.length) return EXIT.usage;
  return reports.every((r) => r.valid) ? EXIT.ok : EXIT.invalid;
}
