import type { Repository, Template } from '../../tdl/index.js';
import { StepError } from '../plugin.js';
import { sourceLine } from './bootstrap.js';

/**
 * Which of a template's repositories the bootstrap on the build host may
 * use, and which only the guest may.
 *
 * apt runs a package's maintainer scripts as root; on the host that is host
 * root (a chroot is no boundary for root). So the host bootstrap installs
 * only what apt verifies against the *distribution's* archive keyring (pinned
 * with mmdebstrap's `--keyring`, so no other key the host trusts counts):
 * the install mirror, and template repositories marked signed whose source
 * line changes nothing about verification. Every other repository — unsigned,
 * `trusted=yes`, signed by a key of its own (`signed-by=`, or a key the
 * template ships in its files), not http(s) — is written and used only in the
 * guest, during the customization boot; then the template's packages are
 * installed there, since any of them may come from such a repository (or
 * replace a base package with its own version).
 */

/** Source-line options that do not change what apt verifies or where it reads. */
const HARMLESS_OPTIONS = new Set(['arch', 'lang', 'target', 'pdiffs', 'by-hash']);

/** Options that make apt accept what the distribution's key did not sign. */
const UNVERIFIED_OPTIONS: Record<string, RegExp> = {
  trusted: /^yes$/i,
  'allow-insecure': /^yes$/i,
  'allow-weak': /^yes$/i,
  'allow-downgrade-to-insecure': /^yes$/i,
};

/** Where the template's own apt keys would go: legacy global trust, and the keyrings `signed-by` points at. */
const KEY_LOCATIONS = [/^\/etc\/apt\/trusted\.gpg$/, /^\/etc\/apt\/trusted\.gpg\.d\//];
const KEY_FILE_LOCATIONS = [...KEY_LOCATIONS, /^\/etc\/apt\/keyrings\//, /^\/usr\/share\/keyrings\//];

export interface SourceLineParts {
  type: 'deb' | 'deb-src';
  options: Map<string, string>;
  uri: string;
  suite: string;
  components: string[];
}

/** The parts of a one-line apt source (`deb [opt=v …] URI SUITE [COMPONENT…]`), or null when it is not one. */
export function parseSourceLine(line: string): SourceLineParts | null {
  const m = /^(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)((?:\s+\S+)*)\s*$/.exec(line.trim());
  if (!m) return null;
  const options = new Map<string, string>();
  for (const opt of (m[2] ?? '').trim().split(/\s+/).filter(Boolean)) {
    const eq = /^([A-Za-z]+(?:-[A-Za-z]+)*)[+-]?=(.*)$/.exec(opt);
    if (!eq) return null;
    options.set(eq[1]!.toLowerCase(), eq[2]!);
  }
  return { type: m[1] as 'deb' | 'deb-src', options, uri: m[3]!, suite: m[4]!, components: m[5]!.trim().split(/\s+/).filter(Boolean) };
}

export interface PlacedRepository {
  repo: Repository;
  /** The apt source line written for it. */
  line: string;
  where: 'host' | 'guest';
  /** Why it is not on the host (for the build log); empty for host repositories. */
  why: string;
}

/** True when apt would install from the repository without the distribution's signature: unsigned, or an option that waives it. */
export function isUnverified(repo: Repository, suite: string): boolean {
  if (!repo.signed) return true;
  const parts = parseSourceLine(sourceLine(repo, suite));
  return !!parts && [...parts.options].some(([k, v]) => UNVERIFIED_OPTIONS[k]?.test(v));
}

/** Decides, for each repository of the template, whether the host bootstrap may use it. */
export function placeRepositories(template: Template, suite: string): PlacedRepository[] {
  const shipsKeys = template.files.some((f) => KEY_LOCATIONS.some((re) => re.test(f.name)));
  return template.repositories.map((repo) => {
    const line = sourceLine(repo, suite);
    const parts = parseSourceLine(line);
    const why = !repo.signed
      ? 'it is not signed'
      : !parts
        ? 'its source line is not one the host bootstrap can check'
        : !/^https?:\/\//i.test(parts.uri)
          ? `${parts.uri.split(':')[0]}: repositories are read in the guest only`
          : [...parts.options.keys()].some((k) => !HARMLESS_OPTIONS.has(k))
            ? `its options (${[...parts.options.keys()].filter((k) => !HARMLESS_OPTIONS.has(k)).join(', ')}) change how apt verifies it`
            : shipsKeys
              ? 'the template brings apt keys of its own, so it may be signed by one of them'
              : '';
    return { repo, line, where: why ? 'guest' : 'host', why };
  });
}

/** Whether the template's packages must be installed in the guest: precommands run before them, or a repository only the guest may use. */
export function packagesInGuest(template: Template, placed: PlacedRepository[]): boolean {
  return template.precommands.length > 0 || placed.some((p) => p.where === 'guest');
}

/** Whether a template file is an apt key or keyring (written before the guest's package install, so its repositories verify). */
export function isAptKeyFile(name: string): boolean {
  return KEY_FILE_LOCATIONS.some((re) => re.test(name));
}

/** `parameters.allow_unsigned_repositories`: true or "true". */
export function unsignedRepositoriesAllowed(parameters: Record<string, unknown>): boolean {
  const v = parameters.allow_unsigned_repositories;
  return v === true || (typeof v === 'string' && /^(true|yes|1)$/i.test(v));
}

/**
 * The refusal of a template with an unsigned (or `trusted=yes`) repository
 * without `parameters.allow_unsigned_repositories=true`, or null. Pure, so the
 * API can answer 400 at submission; the plugin fails the build with it too.
 */
export function unsignedRepositoryProblem(template: Template, suite: string, parameters: Record<string, unknown>): StepError | null {
  if (unsignedRepositoriesAllowed(parameters)) return null;
  const unsigned = template.repositories.filter((r) => isUnverified(r, suite));
  if (!unsigned.length) return null;
  const names = unsigned.map((r) => JSON.stringify(r.name)).join(', ');
  return new StepError(
    'unsigned_repository_refused',
    `repository ${names} ${unsigned.length > 1 ? 'are' : 'is'} not signed (or waives verification); set parameters.allow_unsigned_repositories=true to install from ${unsigned.length > 1 ? 'them' : 'it'} (in the guest, never on the build host)`,
    { repositories: unsigned.map((r) => r.name) },
  );
}
