/** Value rules of TDL, each a pure function from text to a value or null (invalid). */

/** `true false yes no`, in any case, nothing around them. */
export function parseBool(s: string): boolean | null {
  const v = s.toLowerCase();
  if (v === 'true' || v === 'yes') return true;
  if (v === 'false' || v === 'no') return false;
  return null;
}

const SIZE_UNITS: Record<string, bigint> = (() => {
  // No unit, `G` and `T` are GiB and TiB: the forms Oz accepted before it had SI/IEC units.
  const units: Record<string, bigint> = { '': 1024n ** 3n, b: 1n, g: 1024n ** 3n, t: 1024n ** 4n };
  ['k', 'm', 'g', 't', 'p', 'e', 'z', 'y'].forEach((prefix, i) => {
    units[`${prefix}b`] = 1000n ** BigInt(i + 1);
    units[`${prefix}ib`] = 1024n ** BigInt(i + 1);
  });
  return units;
})();

/** `<disk><size>`: digits, optional spaces, optional unit; bytes as a bigint. */
export function parseDiskSize(s: string): bigint | null {
  const m = /^([0-9]+) *([a-z]*)$/i.exec(s);
  if (!m) return null;
  const factor = SIZE_UNITS[m[2]!.toLowerCase()];
  return factor === undefined ? null : BigInt(m[1]!) * factor;
}

/**
 * Strict base64 as Oz accepts it: the alphabet with up to two `=` at the end,
 * no white space inside, and enough padding to complete the last group.
 */
export function decodeBase64(s: string): Buffer | null {
  const m = /^([A-Za-z0-9+/]+)(={0,2})$/.exec(s);
  if (!m) return null;
  const rest = m[1]!.length % 4;
  if (rest === 1 || (rest === 2 && m[2]!.length < 2) || (rest === 3 && m[2]!.length < 1)) return null;
  return Buffer.from(m[1]!, 'base64');
}

/** Content of a `url` file or command: fetched at build time, so only the scheme is checked now. */
export function isContentUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return (u.protocol === 'file:' || u.protocol === 'http:' || u.protocol === 'https:') && (u.protocol === 'file:' || u.host !== '');
  } catch {
    return false;
  }
}

const LOOPBACK_HOSTS = new Set(['localhost', 'localhost.localdomain', '127.0.0.1']);

/**
 * True when a repository points at the builder's loopback, which the guest
 * cannot reach. The text may be an apt source line (`deb http://… suite main`),
 * so the first URL in it is the one checked.
 */
export function isLoopbackRepository(s: string): boolean {
  const url = /[a-z][a-z0-9+.-]*:\/\/\S+/i.exec(s)?.[0];
  if (!url) return false;
  try {
    return LOOPBACK_HOSTS.has(new URL(url).hostname.toLowerCase());
  } catch {
    return false;
  }
}

/** Linux's PATH_MAX and NAME_MAX, in bytes. */
const PATH_MAX = 4095;
const NAME_MAX = 255;

/**
 * Why a `<file name>` cannot be written safely, or null when it can. A name
 * must be an absolute, normalized path of a file: the name is resolved in
 * the image's root, and `..`, `.` and control characters are how a name
 * walks out of it or fools a shell or a log reader.
 */
export function fileNameProblem(name: string): string | null {
  if (name === '') return 'is empty';
  const control = /[\u0000-\u001f\u007f]/.exec(name);
  if (control) {
    const c = control[0].charCodeAt(0);
    return c === 0 ? 'contains a NUL character' : `contains the control character U+${c.toString(16).toUpperCase().padStart(4, '0')}`;
  }
  if (!name.startsWith('/')) return 'must be an absolute path (starting with "/")';
  if (name.endsWith('/')) return 'names a directory (ends with "/"); it must name a file';
  const parts = name.split('/').filter((p) => p !== '');
  if (parts.includes('..')) return 'has a ".." component';
  if (parts.includes('.')) return 'has a "." component';
  if (Buffer.byteLength(name) > PATH_MAX) return `is longer than ${PATH_MAX} bytes`;
  const long = parts.find((p) => Buffer.byteLength(p) > NAME_MAX);
  if (long) return `has a component longer than ${NAME_MAX} bytes`;
  return null;
}

/**
 * The host path of a `file:` URL if it lies inside one of `allowedDirs`
 * (absolute directories), else null. Only `file:///path` and
 * `file://localhost/path` name a local file; `%2e%2e` segments are resolved by
 * the URL parser before the path is compared, and an encoded `/` or NUL is
 * refused.
 */
export function allowedFileUrlPath(url: string, allowedDirs: readonly string[]): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  if (u.protocol !== 'file:' || (u.host !== '' && u.host !== 'localhost') || u.search || u.hash) return null;
  let path: string;
  try {
    path = decodeURIComponent(u.pathname);
  } catch {
    return null;
  }
  if (/%2f/i.test(u.pathname) || path.includes('\0') || fileNameProblem(path) !== null) return null;
  return allowedDirs.some((dir) => isInside(path, dir)) ? path : null;
}

/** Whether the normalized absolute `path` is `dir` itself or below it (lexically; the fetcher checks the real path again). */
export function isInside(path: string, dir: string): boolean {
  if (!dir.startsWith('/')) return false;
  const d = dir.replace(/\/+$/, '');
  return d === '' || path.startsWith(`${d}/`);
}
