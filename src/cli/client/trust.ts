import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { transientCertPath } from '../../api/tls-files.js';

/**
 * Trusting the local daemon's transient certificate without `--insecure`:
 * the daemon writes its freshly made self-signed certificate into its state
 * directory, and the client pins exactly that certificate (by its SHA-256
 * fingerprint) on top of the system's authorities.
 */

export const DEFAULT_DAEMON_CONFIG = '/etc/imagefactory/imagefactory.conf';
export const DEFAULT_STATE_DIR = '/var/lib/imagefactory/storage';

/**
 * The daemon's state directory: the client configuration's `state_dir`, else
 * `$IMAGEFACTORY_STATE_DIR`, else the storage path of the daemon's own
 * configuration (`$IMAGEFACTORYD_CONFIG` or /etc/imagefactory/imagefactory.conf)
 * when this user can read it, else the default storage path.
 */
export function daemonStateDir(env: NodeJS.ProcessEnv, configured?: string): string {
  if (configured) return configured;
  if (env.IMAGEFACTORY_STATE_DIR) return env.IMAGEFACTORY_STATE_DIR;
  try {
    const conf = JSON.parse(readFileSync(env.IMAGEFACTORYD_CONFIG || DEFAULT_DAEMON_CONFIG, 'utf8')) as { image_manager_args?: { storage_path?: unknown } };
    const path = conf.image_manager_args?.storage_path;
    if (typeof path === 'string' && path !== '') return path;
  } catch {
    // unreadable or absent: the default
  }
  return DEFAULT_STATE_DIR;
}

export interface PinnedCertificate {
  file: string;
  pem: string;
  fingerprint256: string;
}

/** The daemon's transient certificate in `stateDir`, or null when there is none (or it is not a certificate). */
export function findTransientCertificate(stateDir: string): PinnedCertificate | null {
  const file = transientCertPath(stateDir);
  try {
    const pem = readFileSync(file, 'utf8');
    return { file, pem, fingerprint256: new X509Certificate(pem).fingerprint256 };
  } catch {
    return null;
  }
}

/**
 * TLS options that trust the system's authorities and, whatever the host
 * name, the one pinned certificate.
 */
export function pinnedTlsOptions(pin: PinnedCertificate): Pick<tls.ConnectionOptions, 'ca' | 'checkServerIdentity'> {
  return {
    ca: [...tls.rootCertificates, pin.pem],
    checkServerIdentity: (host, cert) => (cert.fingerprint256 === pin.fingerprint256 ? undefined : tls.checkServerIdentity(host, cert)),
  };
}
