import { createHash } from 'node:crypto';
import type { Template } from '../tdl/index.js';

/**
 * Keys of the content-addressed build cache: a build whose key equals that
 * of a COMPLETE image of its kind is that image again, and takes its body
 * (a hard link: referenced, never copied) instead of building.
 */

/** Parameters that say how to run or report a build, not what it builds. */
const NEUTRAL_PARAMETERS = new Set(['callbacks', 'rebuild', 'tag']);

/** JSON with object keys sorted, so equal values give equal text whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (Buffer.isBuffer(value)) return JSON.stringify(value.toString('base64'));
  if (typeof value === 'bigint') return JSON.stringify(value.toString());
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return `{${entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

export function buildParameters(parameters: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(parameters).filter(([k]) => !NEUTRAL_PARAMETERS.has(k)));
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** A base image: its template as parsed (every element that shapes the image), its OS plugin and version, its parameters. */
export function baseCacheKey(template: Template, plugin: { id: string; version: string }, parameters: Record<string, unknown>): string {
  return sha256(canonicalJson({ kind: 'base', template, plugin, parameters: buildParameters(parameters) }));
}

/** A target image: its base's body, the target, the cloud plugin and version, the target content and its parameters. */
export function targetCacheKey(parts: { baseSha256: string; target: string; plugin: { id: string; version: string }; content: unknown; parameters: Record<string, unknown> }): string {
  return sha256(canonicalJson({ kind: 'target', ...parts, parameters: buildParameters(parts.parameters) }));
}

/** `parameters.rebuild`: build even when the cache holds the same image. */
export function rebuildAsked(parameters: Record<string, unknown>): boolean {
  return parameters.rebuild === true || parameters.rebuild === 'true' || parameters.rebuild === '1';
}
