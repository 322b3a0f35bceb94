import type { BaseImageRequest, ProviderImageRequest, TargetImageRequest } from '../engine/types.js';
import type { ParsedBody } from './body.js';
import { ApiError, badRequest } from './errors.js';
import { redactUrlPassword } from './redact.js';

/**
 * REST bodies → engine requests. JSON bodies are wrapped as REST.md shows
 * (`{"target_image": {...}}`); form-encoded bodies carry the same field names
 * flat, as the original daemon's curl examples sent them
 * (`target=ec2&base_image_id=…`), with `parameters` as a JSON string.
 */

type Fields = Record<string, unknown>;

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function fieldsOf(body: ParsedBody, singular: string): Fields {
  if (body.format === 'none') throw badRequest(`a request body {"${singular}": {…}} is required`);
  if (body.format === 'form') return body.value;
  const inner = isObject(body.value) ? body.value[singular] : undefined;
  if (!isObject(inner)) throw badRequest(`the request body must be a JSON object {"${singular}": {…}}`);
  return inner;
}

/** A text field; absent, null and "" all mean "not given". */
function text(fields: Fields, name: string): string | undefined {
  const v = fields[name];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw badRequest(`"${name}" must be a string`, { field: name });
  return v;
}

function requiredText(fields: Fields, name: string, what: string): string {
  const v = text(fields, name);
  if (v === undefined) throw badRequest(`"${name}" is required to create ${what}`, { field: name });
  return v;
}

/** `provider` and `credentials`: a string (name, XML or JSON text) or a JSON object, passed on as text. */
function document(fields: Fields, name: string, what: string): string {
  const v = fields[name];
  if (isObject(v)) return JSON.stringify(v);
  return requiredText(fields, name, what);
}

function parameters(fields: Fields): Record<string, unknown> | undefined {
  let v = fields.parameters;
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v) as unknown;
    } catch {
      throw badRequest('"parameters" must be a JSON object', { field: 'parameters' });
    }
  }
  if (!isObject(v)) throw badRequest('"parameters" must be a JSON object', { field: 'parameters' });
  checkCallbacks(v.callbacks);
  return v;
}

const MAX_CALLBACKS = 16;
const MAX_CALLBACK_CHARS = 2048;

/**
 * `parameters.callbacks`: one URL or a list of them, each http or https with
 * a host. Refused at submission (400 `invalid_callback`), so that nothing the
 * engine later delivers to can fail on the URL itself; an error names the
 * URL without its password.
 */
export function checkCallbacks(callbacks: unknown): void {
  if (callbacks === undefined || callbacks === null) return;
  const list = Array.isArray(callbacks) ? callbacks : [callbacks];
  const refuse = (message: string, details: Record<string, unknown>) => {
    throw new ApiError(400, 'invalid_callback', message, { field: 'parameters.callbacks', ...details });
  };
  if (list.length > MAX_CALLBACKS) refuse(`"parameters.callbacks" holds ${list.length} URLs; at most ${MAX_CALLBACKS} are allowed`, {});
  list.forEach((url, index) => {
    if (typeof url !== 'string') return refuse(`callback ${index + 1} must be a URL string, not ${Array.isArray(url) ? 'an array' : typeof url}`, { index });
    const shown = shownCallback(url);
    if (url.length > MAX_CALLBACK_CHARS) return refuse(`callback ${index + 1} is longer than ${MAX_CALLBACK_CHARS} characters`, { index });
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return refuse(`callback ${index + 1} (${shown}) is not a URL`, { index, url: shown });
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return refuse(`callback ${index + 1} (${shown}) must be an http or https URL, not ${u.protocol.replace(/:$/, '')}`, { index, url: shown });
    if (!u.hostname) return refuse(`callback ${index + 1} (${shown}) has no host`, { index, url: shown });
    if (/[\s\u0000-\u001f]/.test(url)) return refuse(`callback ${index + 1} (${shown}) contains white space or control characters`, { index, url: shown });
  });
}

/** A callback as it may appear in an error: no password, not too long, printable. */
function shownCallback(url: string): string {
  const text = redactUrlPassword(url.trim()).replace(/[\u0000-\u001f\u007f]/g, '?');
  return JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text);
}

/** The parent id from the body, the path, or both when they agree. */
function parentId(fields: Fields, name: string, fromPath: string | undefined): string | undefined {
  const fromBody = text(fields, name);
  if (fromBody !== undefined && fromPath !== undefined && fromBody !== fromPath) {
    throw badRequest(`"${name}" in the body (${fromBody}) differs from the one in the path (${fromPath})`, { field: name });
  }
  return fromBody ?? fromPath;
}

function exactlyOne(parent: string | undefined, template: string | undefined, parentName: string): void {
  if ((parent === undefined) === (template === undefined)) {
    throw badRequest(`exactly one of "${parentName}" and "template" is required`, { fields: [parentName, 'template'] });
  }
}

function withParameters<T extends object>(req: T, fields: Fields): T & { parameters?: Record<string, unknown> } {
  const p = parameters(fields);
  return p === undefined ? req : { ...req, parameters: p };
}

export function baseImageRequest(body: ParsedBody): BaseImageRequest {
  const fields = fieldsOf(body, 'base_image');
  return withParameters({ template: requiredText(fields, 'template', 'a base image') }, fields);
}

export function targetImageRequest(body: ParsedBody, baseImageIdFromPath?: string): TargetImageRequest {
  const fields = fieldsOf(body, 'target_image');
  const target = requiredText(fields, 'target', 'a target image');
  const baseImageId = parentId(fields, 'base_image_id', baseImageIdFromPath);
  const template = text(fields, 'template');
  exactlyOne(baseImageId, template, 'base_image_id');
  return withParameters({ target, ...(baseImageId !== undefined ? { baseImageId } : { template: template! }) }, fields);
}

export function providerImageRequest(body: ParsedBody, targetImageIdFromPath?: string): ProviderImageRequest {
  const fields = fieldsOf(body, 'provider_image');
  const what = 'a provider image';
  const target = requiredText(fields, 'target', what);
  const provider = document(fields, 'provider', what);
  const credentials = document(fields, 'credentials', what);
  const targetImageId = parentId(fields, 'target_image_id', targetImageIdFromPath);
  const template = text(fields, 'template');
  exactlyOne(targetImageId, template, 'target_image_id');
  return withParameters({ target, provider, credentials, ...(targetImageId !== undefined ? { targetImageId } : { template: template! }) }, fields);
}

export interface DeleteOptions {
  cascade?: boolean;
  provider?: string;
  credentials?: string;
  target?: string;
}

const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off', '']);

/**
 * DELETE options: `cascade` from the query; a provider image's `provider`,
 * `credentials` and `target` from the body (flat, or wrapped in
 * `provider_image`) or the query.
 */
export function deleteOptions(body: ParsedBody, query: Record<string, string | undefined>): DeleteOptions {
  const opts: DeleteOptions = {};
  const cascade = query.cascade?.toLowerCase();
  if (cascade !== undefined) {
    if (TRUE.has(cascade)) opts.cascade = true;
    else if (FALSE.has(cascade)) opts.cascade = false;
    else throw badRequest(`"cascade" must be true or false, not "${query.cascade}"`, { field: 'cascade' });
  }
  let fields: Fields = {};
  if (body.format === 'form') fields = body.value;
  else if (body.format === 'json') {
    if (!isObject(body.value)) throw badRequest('the request body must be a JSON object');
    fields = isObject(body.value.provider_image) ? body.value.provider_image : body.value;
  }
  for (const name of ['provider', 'credentials', 'target'] as const) {
    const v = isObject(fields[name]) ? JSON.stringify(fields[name]) : (text(fields, name) ?? (query[name] || undefined));
    if (v !== undefined) opts[name] = v;
  }
  return opts;
}
