import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { describeUrl } from './download-cache.js';
import { MediaError } from './errors.js';

export type ChecksumKind = 'md5' | 'sha1' | 'sha256';

const HEX_LENGTH: Record<ChecksumKind, number> = { md5: 32, sha1: 40, sha256: 64 };
const BSD_NAME: Record<ChecksumKind, string> = { md5: 'MD5', sha1: 'SHA1', sha256: 'SHA256' };

export interface ChecksumEntry {
  fileName: string;
  hash: string;
}

/**
 * The entries of a checksum file for one algorithm, in the formats that
 * distributions publish: GNU `HASH  name` / `HASH *name` (sha256sum and
 * friends), BSD `SHA256 (name) = HASH` (Fedora's CHECKSUM files, inside a
 * PGP clear-signature); a file that is nothing but one hash gives an entry
 * with an empty name. Other lines (comments, signatures) are skipped.
 */
export function parseChecksumFile(text: string, kind: ChecksumKind): ChecksumEntry[] {
  const length = HEX_LENGTH[kind];
  const entries: ChecksumEntry[] = [];
  const meaningful: string[] = [];
  let inSignature = false;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '-----BEGIN PGP SIGNATURE-----') inSignature = true;
    if (line === '-----END PGP SIGNATURE-----') {
      inSignature = false;
      continue;
    }
    if (inSignature || line === '' || line.startsWith('#') || line.startsWith('-----') || /^Hash:/i.test(line)) continue;
    meaningful.push(line);
    const bsd = /^([A-Za-z0-9-]+)\s*\((.+)\)\s*=\s*([0-9a-fA-F]+)$/.exec(line);
    if (bsd) {
      if (bsd[1]!.toUpperCase() === BSD_NAME[kind] && bsd[3]!.length === length) entries.push({ fileName: bsd[2]!, hash: bsd[3]!.toLowerCase() });
      continue;
    }
    const gnu = /^\\?([0-9a-fA-F]+)\s[ *]?(.+)$/.exec(line);
    if (gnu && gnu[1]!.length === length) entries.push({ fileName: gnu[2]!, hash: gnu[1]!.toLowerCase() });
  }
  if (entries.length === 0 && meaningful.length === 1 && new RegExp(`^[0-9a-fA-F]{${length}}$`).test(meaningful[0]!)) {
    entries.push({ fileName: '', hash: meaningful[0]!.toLowerCase() });
  }
  return entries;
}

/** The expected hash of `fileName` (matched on basenames), or null. A bare-hash file matches any name. */
export function findChecksum(entries: ChecksumEntry[], fileName: string): string | null {
  const wanted = basename(fileName);
  const match = entries.find((e) => e.fileName !== '' && basename(e.fileName) === wanted);
  if (match) return match.hash;
  return entries.length === 1 && entries[0]!.fileName === '' ? entries[0]!.hash : null;
}

/** Hex digest of a file, streamed. A build may pass a worker-pool hasher instead (`VerifyOptions.hashFile`). */
export async function hashFile(path: string, kind: ChecksumKind, signal?: AbortSignal): Promise<string> {
  const hash = createHash(kind);
  await pipeline(createReadStream(path), hash, signal ? { signal } : {});
  return hash.digest('hex');
}

export interface VerifyOptions {
  /** Name the checksum file lists the ISO under; by default the basename of `isoUrl`. */
  fileName?: string;
  /** Reads the checksum file; by default file:// from disk and http(s) with fetch. */
  load?: (url: string, signal?: AbortSignal) => Promise<string>;
  hashFile?: (path: string, kind: ChecksumKind, signal?: AbortSignal) => Promise<string>;
  signal?: AbortSignal;
}

export interface VerifiedChecksum {
  kind: ChecksumKind;
  expected: string;
  actual: string;
}

/**
 * Verifies a downloaded ISO against the TDL's checksum file
 * (`<md5sum>`, `<sha1sum>`, `<sha256sum>`): picks the line for the ISO's
 * basename, hashes the file, compares. Throws `checksum_missing` when the
 * file has no usable line for the ISO and `checksum_mismatch` when the
 * hashes differ.
 */
export async function verifyChecksum(
  filePath: string,
  isoUrl: string,
  checksum: { kind: ChecksumKind; url: string },
  options: VerifyOptions = {},
): Promise<VerifiedChecksum> {
  const fileName = options.fileName ?? isoBasename(isoUrl);
  const load = options.load ?? loadText;
  let text: string;
  try {
    text = await load(checksum.url, options.signal);
  } catch (error) {
    if (error instanceof MediaError) throw error;
    throw new MediaError('checksum_missing', `cannot read the ${checksum.kind} checksum file ${describeUrl(checksum.url)}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const entries = parseChecksumFile(text, checksum.kind);
  const expected = findChecksum(entries, fileName);
  if (expected === null) {
    const listed = entries.map((e) => basename(e.fileName)).filter(Boolean);
    throw new MediaError(
      'checksum_missing',
      `the ${checksum.kind} checksum file ${describeUrl(checksum.url)} has no ${checksum.kind} line for ${fileName}` +
        (listed.length > 0 ? ` (it lists ${listed.slice(0, 5).join(', ')}${listed.length > 5 ? ', …' : ''})` : ' (no line in a known format: "HASH  name", "HASH *name" or "SHA256 (name) = HASH")'),
      { fileName, checksumUrl: describeUrl(checksum.url) },
    );
  }
  const actual = await (options.hashFile ?? hashFile)(filePath, checksum.kind, options.signal);
  if (actual.toLowerCase() !== expected) {
    throw new MediaError('checksum_mismatch', `${checksum.kind} of ${fileName} is ${actual}, but ${describeUrl(checksum.url)} says ${expected}: the download is corrupt or not the listed file`, {
      fileName,
      expected,
      actual,
    });
  }
  return { kind: checksum.kind, expected, actual };
}

function isoBasename(url: string): string {
  try {
    return basename(decodeURIComponent(new URL(url).pathname));
  } catch {
    return basename(url);
  }
}

async function loadText(url: string, signal?: AbortSignal): Promise<string> {
  const parsed = new URL(url);
  if (parsed.protocol === 'file:') return readFile(fileURLToPath(parsed), 'utf8');
  const response = await fetch(url, signal ? { signal } : {});
  if (!response.ok) throw new MediaError('checksum_missing', `cannot read the checksum file ${describeUrl(url)}: HTTP ${response.status}`, { status: response.status });
  return response.text();
}
