// The OCI distribution API (docker-registry, Harbor, Quay, ECR…): blob uploads (POST a session,
// PUT the bytes with their digest), manifests by digest and by tag, deletes. Authentication is
// Basic with the credentials, or the Bearer token dance when the registry challenges for it.
import { ProviderError } from '../errors.js';
import { httpRequest, joinUrl, type FileBody, type HttpResponse } from '../http.js';
import { classifyHttpFailure, excerptOf, HttpStatusError } from '../http-retry.js';
import { retrying, type RetryPolicy } from '../retry.js';
import type { Secrets } from '../secrets.js';
import type { Descriptor } from './oci-archive.js';

export interface RegistryLocation {
  /** `http(s)://host[:port]` */
  baseUrl: string;
  /** `host[:port]` as references name it. */
  host: string;
  repository: string;
}

export interface RegistryLogin {
  username: string;
  password: string;
}

const MANIFEST_TYPES = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

interface Call {
  method: string;
  /** A path under `/v2/<repository>/`, or an absolute URL (upload locations). */
  path: string;
  headers?: Record<string, string>;
  body?: Buffer | FileBody;
  onUploadProgress?: (bytes: number) => void;
}

export class DistributionClient {
  #token: string | undefined;

  constructor(
    readonly location: RegistryLocation,
    private readonly login: RegistryLogin | undefined,
    private readonly policy: RetryPolicy,
    private readonly secrets: Secrets,
    private readonly log: (line: string) => void,
  ) {}

  async blobExists(digest: string, signal?: AbortSignal): Promise<boolean> {
    const answer = await this.#request(`HEAD blob ${digest}`, { method: 'HEAD', path: `blobs/${digest}` }, [200, 404], signal);
    return answer.status === 200;
  }

  /** Uploads one blob in one PUT; a failed attempt starts a new upload session. */
  async uploadBlob(descriptor: Descriptor, body: FileBody, signal: AbortSignal, onProgress: (bytes: number) => void): Promise<void> {
    await retrying(
      `upload of blob ${descriptor.digest}`,
      this.policy,
      signal,
      async ({ signal: attemptSignal }) => {
        const session = await this.#send({ method: 'POST', path: 'blobs/uploads/' }, attemptSignal);
        if (session.status !== 202) throw new HttpStatusError(session.status, excerptOf(session));
        const location = session.header('location');
        if (!location) throw new ProviderError('provider_error', 'the registry opened an upload without a Location');
        const url = new URL(location, this.location.baseUrl);
        url.searchParams.set('digest', descriptor.digest);
        try {
          const put = await this.#send({ method: 'PUT', path: url.toString(), headers: { 'content-type': 'application/octet-stream' }, body, onUploadProgress: onProgress }, attemptSignal);
          if (put.status !== 201) throw new HttpStatusError(put.status, excerptOf(put));
        } catch (error) {
          // Abandon the session rather than leave it open on the registry.
          await this.#send({ method: 'DELETE', path: new URL(location, this.location.baseUrl).toString() }, AbortSignal.timeout(10_000)).catch(() => {});
          throw error;
        }
      },
      classifyHttpFailure,
      ({ attempt, delayMs, reason }) => this.log(`upload of blob ${descriptor.digest}: attempt ${attempt} failed (${reason}); retrying in ${delayMs} ms`),
    );
  }

  /** PUTs a manifest under a tag or its digest; returns the digest the registry gives it. */
  async putManifest(reference: string, mediaType: string, body: Buffer, signal?: AbortSignal): Promise<string> {
    const answer = await this.#request(`PUT manifest ${reference}`, { method: 'PUT', path: `manifests/${reference}`, headers: { 'content-type': mediaType }, body }, [201], signal);
    const digest = answer.header('docker-content-digest');
    if (!digest) throw new ProviderError('provider_error', 'the registry stored the manifest without telling its digest');
    return digest;
  }

  /** The digest a tag (or digest) resolves to, or undefined if there is no such manifest. */
  async manifestDigest(reference: string, signal?: AbortSignal): Promise<string | undefined> {
    const answer = await this.#request(`HEAD manifest ${reference}`, { method: 'HEAD', path: `manifests/${reference}`, headers: { accept: MANIFEST_TYPES } }, [200, 404], signal);
    return answer.status === 200 ? answer.header('docker-content-digest') : undefined;
  }

  /** Deletes a manifest by digest; one already gone is fine. */
  async deleteManifest(digest: string, signal?: AbortSignal): Promise<void> {
    await this.#request(`DELETE manifest ${digest}`, { method: 'DELETE', path: `manifests/${digest}` }, [202, 404], signal);
  }

  /** Deletes a blob from the repository; one already gone is fine. */
  async deleteBlob(digest: string, signal?: AbortSignal): Promise<void> {
    await this.#request(`DELETE blob ${digest}`, { method: 'DELETE', path: `blobs/${digest}` }, [202, 404], signal);
  }

  #request(what: string, call: Call, ok: number[], signal: AbortSignal | undefined): Promise<HttpResponse> {
    return retrying(
      what,
      this.policy,
      signal,
      async ({ signal: attemptSignal }) => {
        const answer = await this.#send(call, attemptSignal);
        if (!ok.includes(answer.status)) throw new HttpStatusError(answer.status, excerptOf(answer));
        return answer;
      },
      classifyHttpFailure,
      ({ attempt, delayMs, reason }) => this.log(`${what}: attempt ${attempt} failed (${reason}); retrying in ${delayMs} ms`),
    );
  }

  /** One request, authenticated; a Bearer challenge is answered once with a fresh token. */
  async #send(call: Call, signal: AbortSignal): Promise<HttpResponse> {
    const url = /^https?:\/\//.test(call.path) ? call.path : joinUrl(this.location.baseUrl, `v2/${this.location.repository}/${call.path}`);
    const send = () =>
      httpRequest({
        method: call.method,
        url,
        headers: { ...call.headers, ...this.#authorization() },
        ...(call.body !== undefined ? { body: call.body } : {}),
        ...(call.onUploadProgress ? { onUploadProgress: call.onUploadProgress } : {}),
        signal,
      });
    const answer = await send();
    if (answer.status !== 401) return answer;
    const challenge = answer.header('www-authenticate') ?? '';
    if (/^bearer\s/i.test(challenge) && (await this.#fetchToken(challenge, signal))) return send();
    return answer;
  }

  #authorization(): Record<string, string> {
    if (this.#token) return { authorization: `Bearer ${this.#token}` };
    if (this.login) return { authorization: `Basic ${basic(this.login)}` };
    return {};
  }

  async #fetchToken(challenge: string, signal: AbortSignal): Promise<boolean> {
    const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!.toLowerCase(), m[2]!]));
    if (!params.realm) return false;
    const url = new URL(params.realm);
    if (params.service) url.searchParams.set('service', params.service);
    url.searchParams.set('scope', params.scope ?? `repository:${this.location.repository}:pull,push,delete`);
    const answer = await httpRequest({ method: 'GET', url, headers: this.login ? { authorization: `Basic ${basic(this.login)}` } : {}, signal });
    if (answer.status !== 200) return false;
    const body = answer.json() as { token?: string; access_token?: string } | undefined;
    const token = body?.token ?? body?.access_token;
    if (!token) return false;
    this.secrets.add(token);
    this.#token = token;
    return true;
  }
}

export function basic(login: RegistryLogin): string {
  return Buffer.from(`${login.username}:${login.password}`).toString('base64');
}
