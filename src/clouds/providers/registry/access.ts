// Which registry, repository and tag, and as whom. The provider is the registry — a name
// (`registry.example.com:5000`, spoken to over HTTPS) or a document
// `{"registry": "http://127.0.0.1:5000", "repository": "…", "tag": "…"}`; the docker target's
// `repository` and `tag` parameters (as the original's) win over the document's.
import { readCredentials, readProviderDocument, stringSetting } from '../documents.js';
import { ProviderError } from '../errors.js';
import { Secrets } from '../secrets.js';
import { basic, type RegistryLocation, type RegistryLogin } from './distribution.js';

export interface RegistryAccess {
  location: RegistryLocation;
  tag: string;
  login?: RegistryLogin;
  secrets: Secrets;
}

const REPOSITORY = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

export function registryAccess(provider: string, credentials: string, parameters: Record<string, unknown> = {}, templateName = 'image'): RegistryAccess {
  const doc = readProviderDocument(provider);
  const registry = stringSetting(doc.fields, 'registry') ?? stringSetting(doc.fields, 'url') ?? doc.name;
  if (!registry) throw new ProviderError('invalid_provider', 'the registry provider names no registry ("registry": "https://host:port")');
  const base = /^https?:\/\//.test(registry) ? registry : `https://${registry}`;
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new ProviderError('invalid_provider', 'the registry is not a host or an http(s) URL');
  }
  const repository = (param(parameters, 'repository') ?? stringSetting(doc.fields, 'repository') ?? defaultRepository(templateName)).toLowerCase();
  if (!REPOSITORY.test(repository)) throw new ProviderError('invalid_provider', `"${repository}" is not a valid repository name`);
  const tag = param(parameters, 'tag') ?? stringSetting(doc.fields, 'tag') ?? 'latest';
  if (!TAG.test(tag)) throw new ProviderError('invalid_provider', `"${tag}" is not a valid tag`);

  const secrets = new Secrets();
  let login: RegistryLogin | undefined;
  if (credentials.trim()) {
    const fields = readCredentials(credentials, 'docker');
    const username = fields.username ?? fields.user;
    const password = fields.password ?? fields.token;
    if (!username || !password) throw new ProviderError('invalid_credentials', 'registry credentials need a username and a password');
    login = { username, password };
    secrets.add(password, basic(login));
  }
  return { location: { baseUrl: `${url.protocol}//${url.host}`, host: url.host, repository }, tag, ...(login ? { login } : {}), secrets };
}

function param(parameters: Record<string, unknown>, name: string): string | undefined {
  const value = parameters[name];
  return typeof value === 'string' && value.trim() ? value.trim() : undefined;
}

function defaultRepository(templateName: string): string {
  return templateName.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '') || 'image';
}
