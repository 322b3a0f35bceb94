#!/usr/bin/env node
import sade from 'sade';
import { VERSION } from '../version.js';

/** The `imagefactory` command-line client. */
const prog = sade('imagefactory').version(VERSION);

prog
  .command('validate [file]', 'Validate TDL templates; prints FILE: ok or each error with line, column and element path')
  .option('--json', 'Print a machine-readable result', false)
  .example('validate examples/*.tdl')
  .action(async (file: string | undefined, opts: { json: boolean; _: string[] }) => {
    const { runValidate } = await import('./validate.js');
    process.exitCode = await runValidate(file === undefined ? [] : [file, ...opts._], { json: Boolean(opts.json) });
  });

// sade exits with 1 on its own usage errors; 1 means "invalid template" here, so those become 2.
const exit = process.exit;
process.exit = ((code?: number) => exit(code === 1 ? 2 : code)) as typeof process.exit;
prog.parse(process.argv, {
  unknown: (flag: string) => {
    process.stderr.write(`imagefactory: unknown option ${flag}\n`);
    exit(2);
  },
});
process.exit = exit;
