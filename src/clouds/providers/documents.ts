// The request's `provider` and `credentials` strings, read as the original Image Factory accepted
// them: a provider is a name (`ec2-us-east-1`, `@ec2-us-east-1` on the command line) or a JSON (or
// XML) document of settings; credentials are `<provider_credentials><ec2_credentials>…` XML or the
// same fields as JSON. Errors never quote the documents: credentials could be in them.
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { ProviderError } from './errors.js';

/** Which `<…_credentials>` element a cloud reads. */
export type CredentialsKind = 'ec2' | 'openstack' | 'docker';

export interface ProviderDocument {
  /** The provider's name: the whole string when it is a name, the document's `name` field otherwise. */
  name?: string;
  /** The document's fields (empty for a bare name). */
  fields: Record<string, unknown>;
}

export function readProviderDocument(text: string): ProviderDocument {
  const trimmed = text.trim();
  if (!trimmed) throw new ProviderError('invalid_provider', 'the provider is empty');
  let fields: Record<string, unknown>;
  if (trimmed.startsWith('{')) fields = parseJsonObject(trimmed, 'invalid_provider', 'provider document');
  else if (trimmed.startsWith('<')) fields = xmlRootFields(trimmed, 'invalid_provider', 'provider document');
  else return { name: trimmed.replace(/^@/, ''), fields: {} };
  const name = typeof fields.name === 'string' ? fields.name.replace(/^@/, '') : undefined;
  return { ...(name ? { name } : {}), fields };
}

/**
 * The fields of one cloud's credentials as strings: from `<provider_credentials><KIND_credentials>`
 * (or a bare `<KIND_credentials>`), or from JSON (`{"KIND_credentials": {…}}` or the fields flat).
 */
export function readCredentials(text: string, kind: CredentialsKind): Record<string, string> {
  const trimmed = text.trim();
  if (!trimmed) throw new ProviderError('invalid_credentials', `no credentials were given (${kind} needs them)`);
  const element = `${kind}_credentials`;
  let fields: unknown;
  if (trimmed.startsWith('<')) {
    const root = parseXml(trimmed, 'invalid_credentials', 'credentials');
    const outer = root.provider_credentials;
    fields = isRecord(outer) ? outer[element] : root[element];
    if (fields === undefined) throw new ProviderError('invalid_credentials', `the credentials document has no <${element}> element`);
  } else if (trimmed.startsWith('{')) {
    const json = parseJsonObject(trimmed, 'invalid_credentials', 'credentials');
    fields = isRecord(json[element]) ? json[element] : json;
  } else {
    throw new ProviderError('invalid_credentials', 'the credentials are neither an XML nor a JSON document');
  }
  if (!isRecord(fields)) throw new ProviderError('invalid_credentials', `<${element}> holds no fields`);
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(fields)) {
    if (typeof value === 'string' || typeof value === 'number') out[name] = String(value).trim();
  }
  return out;
}

/** A required string field; the error names the field, never its value. */
export function requireField(fields: Record<string, string>, names: string[], code: 'invalid_credentials' | 'invalid_provider', where: string): string {
  for (const name of names) {
    const value = fields[name];
    if (value) return value;
  }
  throw new ProviderError(code, `${where} lack ${names.length > 1 ? `one of ${names.join(', ')}` : names[0]}`);
}

/** A string setting of a provider document (numbers are accepted and turned into strings). */
export function stringSetting(fields: Record<string, unknown>, name: string): string | undefined {
  const value = fields[name];
  if (typeof value === 'string' && value.trim()) return value.trim();
  if (typeof value === 'number') return String(value);
  return undefined;
}

/** A positive number setting of a provider document. */
export function numberSetting(fields: Record<string, unknown>, name: string): number | undefined {
  const value = fields[name];
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() ? Number(value) : undefined;
  if (n === undefined) return undefined;
  if (!Number.isFinite(n) || n <= 0) throw new ProviderError('invalid_provider', `the provider's ${name} must be a positive number`);
  return n;
}

function parseJsonObject(text: string, code: 'invalid_provider' | 'invalid_credentials', what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ProviderError(code, `the ${what} is not valid JSON`);
  }
  if (!isRecord(value)) throw new ProviderError(code, `the ${what} is not a JSON object`);
  return value;
}

function parseXml(text: string, code: 'invalid_provider' | 'invalid_credentials', what: string): Record<string, unknown> {
  const valid = XMLValidator.validate(text);
  if (valid !== true) throw new ProviderError(code, `the ${what} is not well-formed XML (line ${valid.err.line}, column ${valid.err.col})`);
  const parsed: unknown = new XMLParser({ ignoreAttributes: true, parseTagValue: false, trimValues: true, processEntities: true }).parse(text);
  if (!isRecord(parsed)) throw new ProviderError(code, `the ${what} is empty`);
  return parsed;
}

function xmlRootFields(text: string, code: 'invalid_provider' | 'invalid_credentials', what: string): Record<string, unknown> {
  const root = parseXml(text, code, what);
  const elements = Object.entries(root).filter(([name]) => !name.startsWith('?'));
  const [, fields] = elements[0] ?? [];
  if (elements.length !== 1 || !isRecord(fields)) throw new ProviderError(code, `the ${what} must be one element holding its settings`);
  return fields;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
