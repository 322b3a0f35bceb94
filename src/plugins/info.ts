import { describeValue, PluginError } from './errors.js';

/** `[os, version, arch]`; `null` stands for any version or any arch. */
export type OsTarget = readonly [os: string, version: string | null, arch: string | null];
/** `[target]`, e.g. `["ec2"]`. */
export type CloudTarget = readonly [target: string];

export interface PluginMaintainer {
  name: string;
  email: string;
  url: string;
}

interface PluginInfoCommon {
  description: string;
  maintainer: PluginMaintainer;
  version: string;
  license: string;
  /** Path of the implementing ES module, relative to the .info file; `null` for a built-in plugin. */
  module: string | null;
}

/** A validated `NAME.info` file. */
export type PluginInfo = (PluginInfoCommon & { type: 'os'; targets: OsTarget[] }) | (PluginInfoCommon & { type: 'cloud'; targets: CloudTarget[] });

export type PluginType = PluginInfo['type'];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Checks a parsed `.info` document and returns its typed form, or throws a
 * `PluginError` (`info_invalid`) listing every problem, each naming its field.
 * `type` is compared case-insensitively because the original upper-cased it.
 */
export function parsePluginInfo(raw: unknown): PluginInfo {
  if (!isRecord(raw)) {
    throw new PluginError('info_invalid', `the .info file must hold a JSON object, got ${describeValue(raw)}`);
  }
  const problems: string[] = [];

  let type: PluginType | null = null;
  if (raw.type === undefined) problems.push('type is required ("os" or "cloud")');
  else if (typeof raw.type === 'string' && (raw.type.toLowerCase() === 'os' || raw.type.toLowerCase() === 'cloud')) {
    type = raw.type.toLowerCase() as PluginType;
  } else problems.push(`type must be "os" or "cloud", got ${JSON.stringify(raw.type)}`);

  const targets = type === null ? [] : checkTargets(raw.targets, type, problems);

  for (const field of ['description', 'version', 'license'] as const) {
    if (typeof raw[field] !== 'string') problems.push(`${field} must be a string`);
  }
  if (!isRecord(raw.maintainer)) problems.push('maintainer must be an object with name, email and url');
  else {
    for (const field of ['name', 'email', 'url'] as const) {
      if (typeof raw.maintainer[field] !== 'string') problems.push(`maintainer.${field} must be a string`);
    }
  }
  if (raw.module !== undefined && (typeof raw.module !== 'string' || raw.module === '')) {
    problems.push('module must be a non-empty string (a path relative to the .info file)');
  }

  if (problems.length > 0 || type === null) throw new PluginError('info_invalid', problems.join('; '));
  const maintainer = raw.maintainer as Record<string, string>;
  const common: PluginInfoCommon = {
    description: raw.description as string,
    maintainer: { name: maintainer.name!, email: maintainer.email!, url: maintainer.url! },
    version: raw.version as string,
    license: raw.license as string,
    module: (raw.module as string | undefined) ?? null,
  };
  return type === 'os' ? { ...common, type, targets: targets as OsTarget[] } : { ...common, type, targets: targets as CloudTarget[] };
}

function checkTargets(value: unknown, type: PluginType, problems: string[]): (OsTarget | CloudTarget)[] {
  const shape = type === 'os' ? '[os, version, arch]' : '[target]';
  if (!Array.isArray(value) || value.length === 0) {
    problems.push(`targets must be a non-empty array of ${shape}`);
    return [];
  }
  const targets: (OsTarget | CloudTarget)[] = [];
  value.forEach((target: unknown, i) => {
    const where = `targets[${i}]`;
    if (!Array.isArray(target) || target.length !== (type === 'os' ? 3 : 1)) {
      problems.push(`${where} must be an array ${shape}`);
      return;
    }
    const before = problems.length;
    if (typeof target[0] !== 'string' || target[0] === '') problems.push(`${where}[0] must be a non-empty string`);
    if (type === 'os') {
      for (const j of [1, 2]) {
        if (target[j] !== null && typeof target[j] !== 'string') problems.push(`${where}[${j}] must be a string or null`);
      }
      // Matching widens from the right, so (os, null, arch) would never be looked up.
      if (problems.length === before && target[1] === null && target[2] !== null) {
        problems.push(`${where}[2] must be null when ${where}[1] is null (matching widens from the right)`);
      }
    }
    if (problems.length === before) targets.push(target as unknown as OsTarget | CloudTarget);
  });
  return targets;
}
