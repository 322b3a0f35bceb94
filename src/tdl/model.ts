/** The typed template that the rest of the system builds from. */

export const ARCHES = ['i386', 'x86_64', 'ppc64', 'ppc64le', 'aarch64', 'armv7l', 's390x'] as const;
export type Arch = (typeof ARCHES)[number];

export type ContentType = 'raw' | 'base64' | 'url';

export interface UrlInstall {
  type: 'url';
  url: string;
}

export interface IsoInstall {
  type: 'iso';
  iso: string;
  /** URL of a checksum file, at most one of the three kinds. */
  checksum: { kind: 'md5' | 'sha1' | 'sha256'; url: string } | null;
  extras: IsoExtra[];
}

export interface IsoExtra {
  kind: 'file' | 'directory';
  source: string;
  destination: string;
}

export interface OsSpec {
  name: string;
  version: string;
  arch: Arch;
  install: UrlInstall | IsoInstall;
  rootpw: string | null;
  key: string | null;
  kernelparam: string | null;
  /** `icicle/extra_command`, run per package to enrich the manifest. */
  icicleExtraCommand: string | null;
}

export interface Package {
  name: string;
  repository: string | null;
  file: string | null;
  arguments: string | null;
}

export interface Repository {
  name: string;
  /** For Debian/Ubuntu an apt source line or a bare URL; for Red Hat a baseurl. */
  url: string;
  signed: boolean;
  persisted: boolean;
  sslverify: boolean;
}

/**
 * Content of a file or command. `raw` and `base64` are decoded at parse time;
 * `url` is fetched when the build runs, so only its address is kept.
 */
export type Content = { type: 'raw' | 'base64'; data: Buffer } | { type: 'url'; url: string };

export interface TemplateFile {
  name: string;
  content: Content;
}

export interface Command {
  name: string;
  /** The `position` attribute, or null when the list uses document order. */
  position: number | null;
  content: Content;
}

export interface Template {
  version: '1.0' | null;
  name: string;
  description: string | null;
  os: OsSpec;
  packages: Package[];
  repositories: Repository[];
  files: TemplateFile[];
  /** Already in execution order. */
  precommands: Command[];
  /** Already in execution order. */
  commands: Command[];
  /** Disk size in bytes, or null for the OS plugin's default. */
  diskSizeBytes: bigint | null;
}
