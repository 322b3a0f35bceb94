import { join } from 'node:path';

/**
 * Where the daemon keeps its transient TLS certificate, inside its state
 * directory (the storage path). The certificate is public and is what the
 * local `imagefactory` client pins; the key is readable by its owner only.
 * Kept apart from tls.ts so that the client can find the files without
 * loading the certificate generator.
 */
export const TLS_DIR = 'tls';
export const TRANSIENT_CERT = 'transient-cert.pem';
export const TRANSIENT_KEY = 'transient-key.pem';

export function transientCertPath(stateDir: string): string {
  return join(stateDir, TLS_DIR, TRANSIENT_CERT);
}

export function transientKeyPath(stateDir: string): string {
  return join(stateDir, TLS_DIR, TRANSIENT_KEY);
}
