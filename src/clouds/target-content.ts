import { readFile } from 'node:fs/promises';
import { parseBool } from '../tdl/values.js';
import { screenXml } from '../tdl/xml-guard.js';
import { parseXmlTree, type XmlElement } from '../tdl/xml-tree.js';
import type { Package, Repository, Template } from '../tdl/index.js';
import { StepError } from '../os/plugin.js';

/**
 * target_content.xml, as the original Image Factory read it: per target, and
 * optionally per OS name, version and arch, the packages and repositories a
 * target needs. When a target is built from a template, the matching content
 * is merged into the template so that it is installed at bootstrap (no extra
 * boot); when a target is made from an existing base, the adapt step installs
 * what the base lacks.
 *
 *   <template_includes>
 *     <include target="ec2" os="Debian" version="12" arch="x86_64">
 *       <packages><package name="cloud-init"/></packages>
 *       <repositories><repository name="x"><url>…</url><signed>yes</signed></repository></repositories>
 *     </include>
 *   </template_includes>
 */

export interface TargetContent {
  packages: string[];
  repositories: Repository[];
}

export interface ContentInclude extends TargetContent {
  target: string | null;
  os: string | null;
  version: string | null;
  arch: string | null;
  /** Where the include starts in the file, for messages. */
  line: number;
}

export interface TargetContentFile {
  path: string;
  includes: ContentInclude[];
}

export class TargetContentError extends StepError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('target_content_invalid', message, details);
    this.name = 'TargetContentError';
  }
}

const ATTRS = ['target', 'os', 'version', 'arch'] as const;

/** Parses the document; every problem is reported with its line and column. */
export function parseTargetContent(text: string, path = 'target_content.xml'): TargetContentFile {
  const screened = screenXml(text);
  if (screened) throw new TargetContentError(`${path}: line ${screened.line}, col ${screened.col}: ${screened.message}`);
  const tree = parseXmlTree(text);
  if ('errors' in tree) {
    const e = tree.errors[0]!;
    throw new TargetContentError(`${path}: line ${e.line}, col ${e.col}: ${e.message}`);
  }
  const root = tree.root;
  const fail = (el: XmlElement, message: string): never => {
    throw new TargetContentError(`${path}: line ${el.line}, col ${el.col}: ${message}`);
  };
  if (root.name !== 'template_includes') fail(root, `the root element must be <template_includes>, not <${root.name}>`);
  const includes: ContentInclude[] = [];
  for (const el of root.children) {
    if (el.name !== 'include') fail(el, `<template_includes> holds only <include> elements, not <${el.name}>`);
    const attr = (name: (typeof ATTRS)[number]) => {
      const v = el.attrs.get(name);
      if (v !== undefined && v.trim() === '') fail(el, `attribute ${name} must not be empty (leave it out to match any ${name})`);
      return v === undefined ? null : v.trim();
    };
    for (const name of el.attrs.keys()) if (!(ATTRS as readonly string[]).includes(name)) fail(el, `unknown attribute ${name} (known: ${ATTRS.join(', ')})`);
    const include: ContentInclude = { target: attr('target'), os: attr('os'), version: attr('version'), arch: attr('arch'), packages: [], repositories: [], line: el.line };
    if (include.arch !== null && include.version === null) fail(el, 'an include with arch must also name the version (matching widens from the right)');
    if (include.version !== null && include.os === null) fail(el, 'an include with version must also name the os (matching widens from the right)');
    if (include.os !== null && include.target === null) fail(el, 'an include with os must also name the target');
    for (const section of el.children) {
      if (section.name === 'packages') {
        for (const p of section.children) {
          if (p.name !== 'package') fail(p, `<packages> holds only <package> elements, not <${p.name}>`);
          const name = p.attrs.get('name')?.trim();
          if (!name) fail(p, '<package> needs a name attribute');
          if (!include.packages.includes(name!)) include.packages.push(name!);
        }
      } else if (section.name === 'repositories') {
        for (const r of section.children) include.repositories.push(repositoryOf(r, fail));
      } else fail(section, `<include> holds <packages> and <repositories>, not <${section.name}>`);
    }
    includes.push(include);
  }
  return { path, includes };
}

function repositoryOf(el: XmlElement, fail: (el: XmlElement, message: string) => never): Repository {
  if (el.name !== 'repository') fail(el, `<repositories> holds only <repository> elements, not <${el.name}>`);
  const name = el.attrs.get('name')?.trim();
  if (!name) fail(el, '<repository> needs a name attribute');
  const child = (n: string) => el.children.find((c) => c.name === n)?.text.trim();
  const url = child('url');
  if (!url) fail(el, `repository ${name}: <url> is required`);
  const flag = (n: string, dflt: boolean) => {
    const v = child(n);
    if (v === undefined) return dflt;
    const b = parseBool(v);
    if (b === null) fail(el, `repository ${name}: <${n}> must be yes/no/true/false, got ${JSON.stringify(v)}`);
    return b!;
  };
  return { name: name!, url: url!, signed: flag('signed', false), persisted: flag('persisted', true), sslverify: flag('sslverify', true) };
}

export async function loadTargetContent(path: string): Promise<TargetContentFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { path, includes: [] };
    throw new TargetContentError(`${path}: cannot be read: ${(e as Error).message}`);
  }
  return parseTargetContent(text, path);
}

/**
 * The include for a target and an OS, most specific first, as the original:
 * target+os+version+arch, then target+os+version (no arch attribute), then
 * target+os, then target alone, then an include with no attributes at all.
 * The first include at the first level that has one wins; null when none.
 */
export function selectInclude(file: TargetContentFile, target: string, os: { name: string; version: string; arch: string }): ContentInclude | null {
  const levels: [string | null, string | null, string | null, string | null][] = [
    [target, os.name, os.version, os.arch],
    [target, os.name, os.version, null],
    [target, os.name, null, null],
    [target, null, null, null],
    [null, null, null, null],
  ];
  for (const [t, o, v, a] of levels) {
    const found = file.includes.find((i) => i.target === t && i.os === o && i.version === v && i.arch === a);
    if (found) return found;
  }
  return null;
}

/** What the engine puts in `CloudStepContext.targetContent`. */
export function targetContentFor(file: TargetContentFile, target: string, template: Template): TargetContent | null {
  const include = selectInclude(file, target, template.os);
  return include ? { packages: [...include.packages], repositories: include.repositories.map((r) => ({ ...r })) } : null;
}

/**
 * The template with the target's content merged in: its packages and
 * repositories appended (those the template already names are kept as the
 * template has them), so the bootstrap installs them. The template is not
 * changed; a new one is returned.
 */
export function mergeTargetContent(template: Template, content: TargetContent | null): Template {
  if (!content) return template;
  const names = new Set(template.packages.map((p) => p.name));
  const repoNames = new Set(template.repositories.map((r) => r.name));
  const packages: Package[] = [...template.packages];
  for (const name of content.packages) if (!names.has(name)) packages.push({ name, repository: null, file: null, arguments: null });
  const repositories: Repository[] = [...template.repositories];
  for (const r of content.repositories) if (!repoNames.has(r.name)) repositories.push({ ...r });
  return { ...template, packages, repositories };
}
