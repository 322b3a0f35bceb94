// Where an OpenStack push goes and as whom. Credentials as the original's
// `<provider_credentials><openstack_credentials>` (username, password, tenant, auth_url; optional
// user_domain and project_domain, "Default" otherwise) or the same fields as JSON. The provider is
// a JSON document: `auth_url` (Keystone v3; may come from the credentials instead), `glance_url`
// (otherwise the catalog's `image` endpoint), `region`, `interface` (public). Without any auth_url
// the push talks to Glance unauthenticated (a noauth Glance), which then needs `glance_url`.
import { readCredentials, readProviderDocument, stringSetting } from '../documents.js';
import { ProviderError } from '../errors.js';
import { Secrets } from '../secrets.js';

export interface KeystoneLogin {
  authUrl: string;
  username: string;
  password: string;
  project: string;
  userDomain: string;
  projectDomain: string;
}

export interface OpenstackAccess {
  keystone?: KeystoneLogin;
  glanceUrl?: string;
  region?: string;
  interface: string;
  secrets: Secrets;
}

export function openstackAccess(provider: string, credentials: string): OpenstackAccess {
  const doc = readProviderDocument(provider);
  const secrets = new Secrets();
  const fields = credentials.trim() ? readCredentials(credentials, 'openstack') : {};
  if (fields.password) secrets.add(fields.password);
  const authUrl = stringSetting(doc.fields, 'auth_url') ?? fields.auth_url;
  const glanceUrl = stringSetting(doc.fields, 'glance_url');
  for (const url of [authUrl, glanceUrl]) {
    if (url && !/^https?:\/\/[^\s/]+/.test(url)) throw new ProviderError('invalid_provider', 'the OpenStack auth_url and glance_url must be http(s) URLs');
  }
  const region = stringSetting(doc.fields, 'region');
  const access: OpenstackAccess = { ...(glanceUrl ? { glanceUrl } : {}), ...(region ? { region } : {}), interface: stringSetting(doc.fields, 'interface') ?? 'public', secrets };
  if (!authUrl) {
    if (!glanceUrl) throw new ProviderError('invalid_provider', 'the OpenStack provider needs an auth_url (Keystone) or, for a Glance without authentication, a glance_url');
    return access;
  }
  const username = fields.username;
  const password = fields.password;
  const project = fields.tenant ?? fields.project ?? fields.project_name;
  if (!username || !password || !project) throw new ProviderError('invalid_credentials', 'OpenStack credentials need username, password and tenant');
  return {
    ...access,
    keystone: {
      authUrl,
      username,
      password,
      project,
      userDomain: fields.user_domain ?? fields.user_domain_name ?? 'Default',
      projectDomain: fields.project_domain ?? fields.project_domain_name ?? 'Default',
    },
  };
}
