import http from 'node:http';
import https from 'node:https';
import type { Logger } from 'pino';
import { OAuthVerifier } from '../api/auth/oauth.js';
import { loadPemFile, transientCertificate, type TlsMaterial } from '../api/tls.js';
import type { Config } from '../config/index.js';

/**
 * What stands between the network and the REST API, as the configuration
 * asks: HTTPS (the operator's PEM or a transient self-signed certificate) or
 * plain HTTP, and the OAuth verifier (or none). Nothing here logs a secret:
 * the fingerprint and the consumer keys, never a key or a consumer secret.
 */

export interface FrontDoor {
  server: http.Server;
  scheme: 'http' | 'https';
  tls: TlsMaterial | null;
  oauth: OAuthVerifier | null;
  /** Removes the transient certificate files. */
  dispose(): void;
}

export function isLoopbackAddress(address: string): boolean {
  return address === 'localhost' || address === '::1' || /^127\./.test(address) || /^::ffff:127\./.test(address);
}

export async function prepareFrontDoor(config: Config, logger: Logger): Promise<FrontDoor> {
  let tls: TlsMaterial | null = null;
  if (!config.no_ssl) {
    tls = config.ssl_pem !== null ? loadPemFile(config.ssl_pem) : await transientCertificate(config.image_manager_args.storage_path, config.address);
    logger.info(
      { tls: tls.source, fingerprint256: tls.fingerprint256, certFile: tls.certFile, subject: tls.subject, validTo: tls.validTo },
      tls.source === 'transient'
        ? `serving HTTPS with a transient self-signed certificate, SHA-256 fingerprint ${tls.fingerprint256} (certificate in ${tls.certFile})`
        : `serving HTTPS with the certificate of ${tls.certFile}, SHA-256 fingerprint ${tls.fingerprint256}`,
    );
  } else if (!isLoopbackAddress(config.address)) {
    logger.warn({ address: config.address }, `serving plain HTTP (--no_ssl) on ${config.address}: requests and their signatures travel unencrypted`);
  }
  const server = tls ? https.createServer({ key: tls.key, cert: tls.cert, minVersion: 'TLSv1.2' }) : http.createServer();

  let oauth: OAuthVerifier | null = null;
  if (!config.no_oauth) {
    oauth = new OAuthVerifier({ clients: config.clients });
    const keys = Object.keys(config.clients);
    if (keys.length === 0) logger.warn({}, 'OAuth is on and the configuration has no clients: every request but GET /imagefactory is refused (add "clients": {"KEY": "SECRET"})');
    else logger.info({ consumers: keys }, `two-legged OAuth 1.0a required; ${keys.length} consumer key(s) configured`);
  } else if (!isLoopbackAddress(config.address)) {
    logger.warn({ address: config.address }, `OAuth is off (--no_oauth) and the API listens on ${config.address}: anyone who can reach it can build, cancel and delete images`);
  }
  const material = tls;
  return { server, scheme: tls ? 'https' : 'http', tls, oauth, dispose: () => material?.dispose() };
}
