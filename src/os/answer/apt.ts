import type { Repository } from '../../tdl/index.js';
import { AnswerError } from './errors.js';

/** A Debian/Ubuntu mirror URL split the way debian-installer asks for it. */
export interface MirrorParts {
  protocol: 'http' | 'https' | 'ftp';
  /** Host, with `:port` when the URL has one. */
  host: string;
  /** Path on the host, `/debian`; `/` for a mirror at the root. */
  directory: string;
}

export function splitMirror(url: string): MirrorParts {
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    throw new AnswerError('mirror_invalid', `install url ${JSON.stringify(url)} is not a URL`);
  }
  const protocol = parsed.protocol.slice(0, -1);
  if (protocol !== 'http' && protocol !== 'https' && protocol !== 'ftp') {
    throw new AnswerError('mirror_invalid', `install url ${JSON.stringify(url)} must be http, https or ftp for a network install`);
  }
  if (parsed.username || parsed.password || parsed.search || parsed.hash) {
    throw new AnswerError('mirror_invalid', `install url ${JSON.stringify(url)} must be a plain mirror URL (no credentials, query or fragment)`);
  }
  const directory = decodeURIComponent(parsed.pathname).replace(/\/+$/, '') || '/';
  return { protocol, host: parsed.host, directory };
}

/**
 * The TDL repository as one apt source line. TDL gives Debian/Ubuntu
 * repositories as apt lines written as is (Oz's behaviour); a bare URL is
 * completed with the release's suite and `main`. An unsigned repository is
 * marked `[trusted=yes]`, since no key for it is known.
 */
export function aptSourceLine(repo: Repository, suite: string): string {
  const text = repo.url.trim();
  if (/[\r\n']/.test(text)) throw new AnswerError('repository_invalid', `repository "${repo.name}": url must be one line without quotes`);
  let line: string;
  if (/^deb(-src)?\s/.test(text)) {
    line = text.replace(/\s+/g, ' ');
  } else {
    try {
      new URL(text);
    } catch {
      throw new AnswerError('repository_invalid', `repository "${repo.name}": url must be an apt source line ("deb URL SUITE COMPONENTS") or a URL, got ${JSON.stringify(text)}`);
    }
    line = `deb ${text} ${suite} main`;
  }
  if (!repo.signed) line = markTrusted(line);
  return line;
}

function markTrusted(line: string): string {
  const m = /^(deb(?:-src)?) (\[([^\]]*)\] )?(.*)$/.exec(line)!;
  const options = (m[3] ?? '').trim();
  if (/(^|\s)trusted=/.test(options)) return line;
  return `${m[1]} [${options ? `${options} ` : ''}trusted=yes] ${m[4]}`;
}

/** The URI of an apt source line (`deb [opts] URI suite…`). */
export function aptSourceUri(line: string): string {
  return line.replace(/^deb(-src)? (\[[^\]]*\] )?/, '').split(' ')[0]!;
}

/** Escapes `text` to match itself literally in a POSIX basic regular expression delimited by `|`. */
export function escapeBre(text: string): string {
  return text.replace(/[\\.*[\]^$|]/g, (c) => `\\${c}`);
}
