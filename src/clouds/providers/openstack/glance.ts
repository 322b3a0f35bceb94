// Glance v2: create the image record, upload its data in one PUT, wait until it is `active`;
// delete. Images are private, container_format bare, disk_format from the file itself.
import { ProviderError } from '../errors.js';
import { httpRequest, joinUrl, type FileBody } from '../http.js';
import { classifyHttpFailure, excerptOf, HttpStatusError, requestWithRetries } from '../http-retry.js';
import { retrying, sleep, type RetryPolicy } from '../retry.js';

export interface GlanceSession {
  /** Glance's root URL (without `/v2`). */
  url: string;
  /** The Keystone token, or none for a noauth Glance. */
  token?: string;
  policy: RetryPolicy;
  log: (line: string) => void;
}

export interface GlanceImage {
  id: string;
  status: string;
  size?: number | null;
  checksum?: string | null;
  owner?: string | null;
  disk_format?: string;
  os_hash_value?: string | null;
}

const v2 = (session: GlanceSession, path: string) => joinUrl(session.url.replace(/\/v2\/?$/, ''), `v2/${path}`);
const headers = (session: GlanceSession, extra: Record<string, string> = {}) => ({ accept: 'application/json', ...(session.token ? { 'x-auth-token': session.token } : {}), ...extra });

export async function createImage(session: GlanceSession, fields: Record<string, unknown>, signal?: AbortSignal): Promise<GlanceImage> {
  const answer = await requestWithRetries(
    'Glance image create',
    session.policy,
    signal,
    () => ({ method: 'POST', url: v2(session, 'images'), headers: headers(session, { 'content-type': 'application/json' }), body: JSON.stringify(fields) }),
    [201],
    session.log,
  );
  const image = answer.json() as GlanceImage | undefined;
  if (!image?.id) throw new ProviderError('provider_error', 'Glance created an image without an id');
  return image;
}

/**
 * PUTs the image data. A retry after a failed upload is refused by Glance once the image left
 * `queued`, so a failed attempt is retried only while the image is still `queued`.
 */
export async function uploadImageData(session: GlanceSession, id: string, body: FileBody, signal: AbortSignal, onProgress: (bytes: number) => void): Promise<void> {
  await retrying(
    'Glance image upload',
    session.policy,
    signal,
    async ({ attempt, signal: attemptSignal }) => {
      if (attempt > 1) {
        // Under the push's signal, not this attempt's: the look-up has its own timeouts and retries.
        const image = await getImage(session, id, signal);
        if (image?.status !== 'queued') throw new ProviderError('image_failed', `Glance image ${id} is ${image?.status ?? 'gone'} after a failed upload; it cannot take the data again`, { glanceImageId: id });
      }
      const answer = await httpRequest({
        method: 'PUT',
        url: v2(session, `images/${id}/file`),
        headers: headers(session, { 'content-type': 'application/octet-stream' }),
        body,
        signal: attemptSignal,
        onUploadProgress: onProgress,
      });
      if (answer.status !== 204) throw new HttpStatusError(answer.status, excerptOf(answer));
    },
    classifyHttpFailure,
    ({ attempt, delayMs, reason }) => session.log(`Glance image upload: attempt ${attempt} failed (${reason}); retrying in ${delayMs} ms`),
  );
}

export async function getImage(session: GlanceSession, id: string, signal?: AbortSignal): Promise<GlanceImage | undefined> {
  const answer = await requestWithRetries(`Glance image ${id}`, session.policy, signal, () => ({ method: 'GET', url: v2(session, `images/${id}`), headers: headers(session) }), [200, 404], session.log);
  return answer.status === 404 ? undefined : (answer.json() as GlanceImage);
}

/** Waits until the image is `active`; `killed` or gone fails. */
export async function waitForActive(session: GlanceSession, id: string, pollIntervalMs: number, signal: AbortSignal): Promise<GlanceImage> {
  for (;;) {
    const image = await getImage(session, id, signal);
    if (!image || image.status === 'killed' || image.status === 'deleted' || image.status === 'pending_delete') {
      throw new ProviderError('image_failed', `Glance image ${id} ended ${image?.status ?? 'deleted'} instead of active`, { glanceImageId: id });
    }
    if (image.status === 'active') return image;
    if (Date.now() >= session.policy.deadline) throw new ProviderError('timeout', `Glance image ${id} was still ${image.status} when the push's time budget ran out`);
    await sleep(pollIntervalMs, signal, 'waiting for the Glance image');
  }
}

/** Deletes an image; one already gone is fine. */
export async function deleteImage(session: GlanceSession, id: string, signal?: AbortSignal): Promise<void> {
  await requestWithRetries(`Glance image delete ${id}`, session.policy, signal, () => ({ method: 'DELETE', url: v2(session, `images/${id}`), headers: headers(session) }), [204, 404], session.log);
}
