import { createPrivateKey, X509Certificate } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { TLS_DIR, transientCertPath, transientKeyPath } from './tls-files.js';

/**
 * The daemon's HTTPS certificate and key: either the operator's PEM file
 * (`--ssl_pem`) or a transient self-signed certificate made at start-up.
 * The key never leaves this module except into the TLS server's options.
 */

export type TlsErrorCode = 'tls_pem_unreadable' | 'tls_pem_exposed' | 'tls_pem_invalid' | 'tls_state_unwritable';

export class TlsError extends Error {
  constructor(
    readonly code: TlsErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'TlsError';
  }
}

export interface TlsMaterial {
  /** PEM private key, for the TLS server only: never logged or returned. */
  readonly key: string;
  /** PEM certificate (chain), leaf first. */
  readonly cert: string;
  /** SHA-256 fingerprint of the leaf certificate, `AB:CD:…` as openssl prints it. */
  readonly fingerprint256: string;
  readonly source: 'transient' | 'file';
  /** Where the certificate can be read by local clients. */
  readonly certFile: string;
  readonly subject: string;
  readonly validTo: string;
  /** Removes the transient files (nothing for an operator's file). */
  dispose(): void;
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const KEY_BLOCK = /-----BEGIN ((?:RSA |EC |ENCRYPTED )?PRIVATE KEY)-----[\s\S]+?-----END \1-----/g;

/**
 * Reads the operator's PEM file: its certificate(s) and one unencrypted
 * private key that matches the first certificate. A file that other users can
 * read is refused: the key would not be a secret.
 */
export function loadPemFile(path: string): TlsMaterial {
  let text: string;
  let mode: number;
  try {
    mode = statSync(path).mode;
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'it does not exist' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (e as Error).message;
    throw new TlsError('tls_pem_unreadable', `cannot read the TLS PEM file ${path} (--ssl_pem): ${why}`);
  }
  const keys = [...text.matchAll(KEY_BLOCK)];
  if (keys.length > 0 && (mode & 0o004) !== 0) {
    throw new TlsError(
      'tls_pem_exposed',
      `the TLS PEM file ${path} holds a private key and every user can read it (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); ` +
        `restrict it (chmod 600 ${path}, or 640 with a group the daemon is in) and start again`,
    );
  }
  const certs = text.match(CERT_BLOCK) ?? [];
  if (certs.length === 0) throw new TlsError('tls_pem_invalid', `the TLS PEM file ${path} (--ssl_pem) has no certificate (-----BEGIN CERTIFICATE-----)`);
  if (keys.length !== 1) {
    throw new TlsError('tls_pem_invalid', `the TLS PEM file ${path} (--ssl_pem) must hold exactly one private key, found ${keys.length}`);
  }
  if (keys[0]![1] === 'ENCRYPTED PRIVATE KEY') {
    throw new TlsError('tls_pem_invalid', `the private key in ${path} is encrypted; the daemon cannot ask for a passphrase: decrypt it (openssl pkey -in … -out …)`);
  }
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(certs[0]!);
  } catch (e) {
    throw new TlsError('tls_pem_invalid', `the first certificate in ${path} cannot be parsed: ${(e as Error).message}`);
  }
  let matches: boolean;
  try {
    matches = leaf.checkPrivateKey(createPrivateKey(keys[0]![0]));
  } catch {
    // The parser's message could quote key material: say only what is wrong.
    throw new TlsError('tls_pem_invalid', `the private key in ${path} cannot be parsed`);
  }
  if (!matches) throw new TlsError('tls_pem_invalid', `the private key in ${path} does not belong to its first certificate (${leaf.subject.replace(/\n/g, ', ')})`);
  if (Date.parse(leaf.validTo) < Date.now()) {
    throw new TlsError('tls_pem_invalid', `the certificate in ${path} expired on ${leaf.validTo}`);
  }
  return {
    key: keys[0]![0],
    cert: certs.join('\n') + '\n',
    fingerprint256: leaf.fingerprint256,
    source: 'file',
    certFile: path,
    subject: leaf.subject.replace(/\n/g, ', '),
    validTo: leaf.validTo,
    dispose: () => undefined,
  };
}

/** The names a local client may use to reach the daemon: loopback, this host, and the bound address when it is specific. */
export function certificateNames(address: string): { dns: string[]; ips: string[] } {
  const dns = new Set(['localhost']);
  const ips = new Set(['127.0.0.1', '::1']);
  const host = hostname();
  if (host && /^[A-Za-z0-9.-]+$/.test(host)) dns.add(host);
  if (isIP(address)) {
    if (address !== '0.0.0.0' && address !== '::') ips.add(address);
  } else if (/^[A-Za-z0-9.-]+$/.test(address)) dns.add(address);
  return { dns: [...dns], ips: [...ips] };
}

const VALID_DAYS = 365;

/**
 * Makes a fresh self-signed certificate (ECDSA P-256, SHA-256) for the names
 * of `certificateNames`, and writes it into `<stateDir>/tls/`: the key with
 * mode 0600, the certificate readable by all (local clients pin it). A new
 * key every start: nothing of an earlier run is reused.
 */
export async function transientCertificate(stateDir: string, address: string): Promise<TlsMaterial> {
  const names = certificateNames(address);
  const now = Date.now();
  const pems = await generate([{ name: 'commonName', value: 'imagefactoryd transient certificate' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    // A minute back, for clients whose clock is a little behind.
    notBeforeDate: new Date(now - 60_000),
    notAfterDate: new Date(now + VALID_DAYS * 86_400_000),
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [...names.dns.map((value) => ({ type: 2 as const, value })), ...names.ips.map((ip) => ({ type: 7 as const, ip }))] },
    ],
  });
  const keyFile = transientKeyPath(stateDir);
  const certFile = transientCertPath(stateDir);
  try {
    mkdirSync(join(stateDir, TLS_DIR), { recursive: true, mode: 0o755 });
    // Never write a key into a file that exists with a wider mode: replace it.
    rmSync(keyFile, { force: true });
    writeFileSync(keyFile, pems.private, { mode: 0o600, flag: 'wx' });
    chmodSync(keyFile, 0o600);
    rmSync(certFile, { force: true });
    writeFileSync(certFile, pems.cert, { mode: 0o644, flag: 'wx' });
  } catch (e) {
    rmSync(keyFile, { force: true });
    throw new TlsError('tls_state_unwritable', `cannot write the transient certificate into ${join(stateDir, TLS_DIR)}: ${(e as Error).message}`);
  }
  const leaf = new X509Certificate(pems.cert);
  return {
    key: pems.private,
    cert: pems.cert,
    fingerprint256: leaf.fingerprint256,
    source: 'transient',
    certFile,
    subject: leaf.subject.replace(/\n/g, ', '),
    validTo: leaf.validTo,
    dispose() {
      // Only our own files: a daemon started since may have replaced them.
      let ours = false;
      try {
        ours = new X509Certificate(readFileSync(certFile)).fingerprint256 === leaf.fingerprint256;
      } catch {
        ours = false;
      }
      if (!ours) return;
      rmSync(keyFile, { force: true });
      rmSync(certFile, { force: true });
    },
  };
}
