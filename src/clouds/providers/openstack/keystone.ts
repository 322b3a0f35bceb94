// Keystone v3 password authentication, scoped to a project: the token (X-Subject-Token), the
// project's id, and the image service's endpoint from the catalog.
import { ProviderError } from '../errors.js';
import { joinUrl } from '../http.js';
import { requestWithRetries } from '../http-retry.js';
import type { RetryPolicy } from '../retry.js';
import type { Secrets } from '../secrets.js';
import type { KeystoneLogin } from './access.js';

export interface KeystoneSession {
  token: string;
  projectId: string;
  /** The catalog's `image` endpoint for the interface (and region) asked for. */
  imageEndpoint?: string;
}

interface CatalogEntry {
  type?: string;
  endpoints?: { interface?: string; region?: string; region_id?: string; url?: string }[];
}

export async function keystoneLogin(
  login: KeystoneLogin,
  where: { interface: string; region?: string },
  policy: RetryPolicy,
  secrets: Secrets,
  signal?: AbortSignal,
  log?: (line: string) => void,
): Promise<KeystoneSession> {
  const base = /\/v3\/?$/.test(login.authUrl) ? login.authUrl : joinUrl(login.authUrl, 'v3');
  const body = JSON.stringify({
    auth: {
      identity: { methods: ['password'], password: { user: { name: login.username, domain: { name: login.userDomain }, password: login.password } } },
      scope: { project: { name: login.project, domain: { name: login.projectDomain } } },
    },
  });
  const answer = await requestWithRetries(
    'Keystone authentication',
    policy,
    signal,
    () => ({ method: 'POST', url: joinUrl(base, 'auth/tokens'), headers: { 'content-type': 'application/json', accept: 'application/json' }, body }),
    [201],
    log,
  );
  const token = answer.header('x-subject-token');
  if (!token) throw new ProviderError('provider_error', 'Keystone answered without a token');
  secrets.add(token);
  const doc = answer.json() as { token?: { project?: { id?: string }; catalog?: CatalogEntry[] } } | undefined;
  const projectId = doc?.token?.project?.id;
  if (!projectId) throw new ProviderError('provider_error', 'Keystone answered without the project of the token');
  const image = doc?.token?.catalog?.find((entry) => entry.type === 'image');
  const endpoint = image?.endpoints?.find((e) => e.interface === where.interface && (!where.region || e.region === where.region || e.region_id === where.region));
  return { token, projectId, ...(endpoint?.url ? { imageEndpoint: endpoint.url } : {}) };
}
