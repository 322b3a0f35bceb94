import { pathToFileURL } from 'node:url';
import { TemplateInvalidError, type TdlError, type TdlErrorCode } from './errors.js';
import {
  ARCHES,
  type Arch,
  type Command,
  type Content,
  type IsoExtra,
  type IsoInstall,
  type OsSpec,
  type Package,
  type Repository,
  type Template,
  type TemplateFile,
  type UrlInstall,
} from './model.js';
import { TEMPLATE_RULE } from './schema.js';
import { checkStructure, excerpt } from './structure.js';
import { allowedFileUrlPath, decodeBase64, fileNameProblem, isContentUrl, isLoopbackRepository, parseBool, parseDiskSize } from './values.js';
import { DEFAULT_XML_LIMITS, screenXml, tooLarge, type XmlLimits } from './xml-guard.js';
import { parseXmlTree, type XmlElement } from './xml-tree.js';

export interface ParseOptions {
  limits?: Partial<XmlLimits>;
  /** The configuration's `tdl_require_root_pw`. */
  requireRootPassword?: boolean;
  /**
   * The configuration's `file_url_dirs`: absolute directories of the build
   * host whose files `file:` URL contents may name. None by default, so a
   * template cannot read a host file (`file:///etc/shadow`).
   */
  fileUrlDirs?: readonly string[];
}

export type ParseResult = { ok: true; template: Template } | { ok: false; errors: TdlError[] };

/** Parses and validates a TDL document, reporting every error it contains. */
export function parseTdl(xml: string, options: ParseOptions = {}): ParseResult {
  const limits = { ...DEFAULT_XML_LIMITS, ...options.limits };
  // Every UTF-16 unit is at least one UTF-8 byte, so a string this long is refused unmeasured, before anything
  // reads a character of it (V8 would first flatten a concatenated string: a 50 MB copy).
  if (xml.length > limits.maxBytes) return { ok: false, errors: [tooLarge(xml.length, limits.maxBytes, 'at least ')] };
  const text = xml.charCodeAt(0) === 0xfeff ? xml.slice(1) : xml;
  const hostile = screenXml(text, limits);
  if (hostile) return { ok: false, errors: [hostile] };

  const tree = parseXmlTree(text);
  if ('errors' in tree) return { ok: false, errors: tree.errors };
  const root = tree.root;
  if (root.name !== 'template') {
    return {
      ok: false,
      errors: [{ code: 'wrong_root', path: `/${root.name}`, line: root.line, col: root.col, message: `root element must be <template>, got <${root.name}>` }],
    };
  }

  const errors: TdlError[] = [];
  checkStructure(root, TEMPLATE_RULE, '/template', errors);
  const template = new TemplateReader(errors, options).read(root);
  if (errors.length) return { ok: false, errors: inDocumentOrder(errors) };
  return { ok: true, template };
}

export function parseTdlOrThrow(xml: string, options: ParseOptions = {}): Template {
  const result = parseTdl(xml, options);
  if (!result.ok) throw new TemplateInvalidError(result.errors);
  return result.template;
}

function inDocumentOrder(errors: TdlError[]): TdlError[] {
  return errors.map((e, i) => ({ e, i })).sort((a, b) => a.e.line - b.e.line || a.e.col - b.e.col || a.i - b.i).map(({ e }) => e);
}

/**
 * Reads values into the typed model, adding value errors. Structure errors
 * were already reported, so a missing element reads as empty here rather
 * than being reported twice.
 */
class TemplateReader {
  constructor(
    private readonly errors: TdlError[],
    private readonly options: ParseOptions,
  ) {}

  read(root: XmlElement): Template {
    const version = root.attrs.get('version');
    if (version !== undefined && version.trim() !== '1.0') {
      this.fail('invalid_value', root, '/template', `version must be "1.0", got "${version}"`);
    }
    const disk = first(first(root, 'disk'), 'size');
    return {
      version: version === undefined ? null : '1.0',
      name: textOf(first(root, 'name')).trim(),
      description: optionalText(first(root, 'description')),
      os: this.readOs(first(root, 'os')),
      packages: this.readPackages(first(root, 'packages')),
      repositories: this.readRepositories(first(root, 'repositories')),
      files: this.readFiles(first(root, 'files')),
      precommands: this.readCommands(first(root, 'precommands'), '/template/precommands'),
      commands: this.readCommands(first(root, 'commands'), '/template/commands'),
      diskSizeBytes: disk ? this.readDiskSize(disk) : null,
    };
  }

  private readOs(os: XmlElement | undefined): OsSpec {
    const archEl = first(os, 'arch');
    const arch = textOf(archEl);
    if (archEl && !(ARCHES as readonly string[]).includes(arch)) {
      this.fail('invalid_value', archEl, '/template/os/arch', `arch must be one of ${ARCHES.join(', ')}; got "${excerpt(arch)}"`);
    }
    const rootpw = optionalText(first(os, 'rootpw'));
    if (os && rootpw === null && this.options.requireRootPassword) {
      this.fail('missing_element', os, '/template/os', 'missing required element <rootpw> (the configuration sets tdl_require_root_pw)');
    }
    return {
      name: textOf(first(os, 'name')).trim(),
      version: textOf(first(os, 'version')).trim(),
      arch: arch as Arch,
      install: this.readInstall(first(os, 'install')),
      rootpw,
      key: optionalText(first(os, 'key')),
      kernelparam: optionalText(first(os, 'kernelparam')),
      icicleExtraCommand: optionalText(first(first(os, 'icicle'), 'extra_command')),
    };
  }

  private readInstall(install: XmlElement | undefined): UrlInstall | IsoInstall {
    const path = '/template/os/install';
    const type = install?.attrs.get('type');
    if (!install || type === undefined) return { type: 'url', url: '' };
    const present = (name: string) => install.children.filter((c) => c.name === name);
    const forbid = (names: string[], why: string) => {
      for (const name of names) {
        for (const el of present(name)) this.fail('unexpected_element', el, `${path}/${name}`, `<${name}> ${why}`);
      }
    };
    const require = (name: string) => {
      if (!present(name).length) this.fail('missing_element', install, path, `missing required element <${name}> for an install of type "${type}"`);
    };

    if (type === 'url') {
      require('url');
      forbid(['iso', 'md5sum', 'sha1sum', 'sha256sum'], 'is only allowed in an install of type "iso"');
      forbid(['extras'], 'is only allowed in an install of type "iso" (extras are added to the install ISO)');
      const url = textOf(first(install, 'url')).trim();
      this.hostFileAllowed(url, first(install, 'url')!, `${path}/url`, 'the install tree');
      return { type: 'url', url };
    }
    if (type === 'iso') {
      require('iso');
      forbid(['url'], 'is only allowed in an install of type "url"');
      const sums = install.children.filter((c) => c.name === 'md5sum' || c.name === 'sha1sum' || c.name === 'sha256sum');
      for (const extra of sums.slice(1)) {
        this.fail('duplicate_element', extra, `${path}/${extra.name}`, `only one of <md5sum>, <sha1sum> and <sha256sum> may be given; <${sums[0]!.name}> already is`);
      }
      const sum = sums[0];
      this.hostFileAllowed(textOf(first(install, 'iso')).trim(), first(install, 'iso')!, `${path}/iso`, 'the install ISO');
      if (sum) this.hostFileAllowed(sum.text.trim(), sum, `${path}/${sum.name}`, 'the checksum file');
      return {
        type: 'iso',
        iso: textOf(first(install, 'iso')).trim(),
        checksum: sum ? { kind: sum.name.replace('sum', '') as 'md5' | 'sha1' | 'sha256', url: sum.text.trim() } : null,
        extras: this.readExtras(first(install, 'extras')),
      };
    }
    this.fail('invalid_value', install, path, `type must be "url" or "iso", got "${excerpt(type)}"`);
    return { type: 'url', url: '' };
  }

  /**
   * A file: URL names a file of the build host: allowed only under the
   * configuration's file_url_dirs, so that a template cannot read (or hand
   * its guest) any other host file. Other schemes pass; they are checked
   * where they are fetched.
   */
  private hostFileAllowed(url: string, el: XmlElement, path: string, what: string): boolean {
    if (!/^file:/i.test(url) || allowedFileUrlPath(url, this.options.fileUrlDirs ?? [])) return true;
    const dirs = this.options.fileUrlDirs ?? [];
    this.fail(
      'file_url_forbidden',
      el,
      path,
      `${what} "${excerpt(url, 80)}" is a file of the build host; ${dirs.length ? `file: URLs may only name files under ${dirs.join(', ')} (file_url_dirs)` : 'file: URLs are refused unless the configuration\'s file_url_dirs allows a directory'}`,
    );
    return false;
  }

  private readExtras(extras: XmlElement | undefined): IsoExtra[] {
    if (!extras) return [];
    if (!extras.children.length) {
      this.fail('missing_element', extras, '/template/os/install/extras', 'expected at least one <directory> or <file>');
    }
    extras.children.forEach((c, i) => {
      const source = c.attrs.get('source') ?? '';
      // Extras are copied from the build host onto the install ISO: the same rule as file: URLs.
      if (source) this.hostFileAllowed(/^[a-z][a-z0-9+.-]*:/i.test(source) ? source : pathToFileURL(source).href, c, `/template/os/install/extras/${c.name}[${i + 1}]`, 'the extra');
    });
    return extras.children
      .filter((c) => c.name === 'file' || c.name === 'directory')
      .map((c) => ({ kind: c.name as 'file' | 'directory', source: c.attrs.get('source') ?? '', destination: c.attrs.get('destination') ?? '' }));
  }

  private readPackages(packages: XmlElement | undefined): Package[] {
    return all(packages, 'package').map((p) => ({
      name: p.attrs.get('name') ?? '',
      repository: optionalText(first(p, 'repository')),
      file: optionalText(first(p, 'file')),
      arguments: optionalText(first(p, 'arguments')),
    }));
  }

  private readRepositories(repositories: XmlElement | undefined): Repository[] {
    const byName = new Map<string, Repository>();
    all(repositories, 'repository').forEach((r, i) => {
      const path = `/template/repositories/repository[${i + 1}]`;
      const urlEl = first(r, 'url');
      const url = textOf(urlEl).trim();
      if (urlEl && isLoopbackRepository(url)) {
        this.fail('localhost_repository', urlEl, `${path}/url`, `repository URL "${excerpt(url, 80)}" points at the build host's loopback, which the guest cannot reach`);
      }
      const flag = (name: string, fallback: boolean): boolean => {
        const el = first(r, name);
        if (!el) return fallback;
        const value = parseBool(el.text);
        if (value === null) this.fail('invalid_value', el, `${path}/${name}`, `${name} must be true, false, yes or no; got "${excerpt(el.text)}"`);
        return value ?? fallback;
      };
      const name = r.attrs.get('name') ?? '';
      // A later repository of the same name replaces an earlier one, as in Oz.
      byName.set(name, { name, url, signed: flag('signed', false), persisted: flag('persisted', true), sslverify: flag('sslverify', false) });
    });
    return [...byName.values()];
  }

  private readFiles(files: XmlElement | undefined): TemplateFile[] {
    const byName = new Map<string, TemplateFile>();
    all(files, 'file').forEach((f, i) => {
      const path = `/template/files/file[${i + 1}]`;
      const name = f.attrs.get('name') ?? '';
      // A missing name is reported by the structure check already.
      const problem = f.attrs.has('name') ? fileNameProblem(name) : null;
      if (problem) this.fail('invalid_file_name', f, path, `file name ${JSON.stringify(excerpt(name, 80))} ${problem}`);
      const content = this.readContent(f, path, { emptyAllowed: true });
      if (content) byName.set(name, { name, content });
    });
    return [...byName.values()];
  }

  private readCommands(list: XmlElement | undefined, listPath: string): Command[] {
    const commands: Command[] = [];
    all(list, 'command').forEach((c, i) => {
      const path = `${listPath}/command[${i + 1}]`;
      const rawPosition = c.attrs.get('position');
      let position: number | null = null;
      if (rawPosition !== undefined) {
        if (/^[0-9]+$/.test(rawPosition)) position = Number(rawPosition);
        else this.fail('invalid_position', c, path, `position must be a whole number, got "${excerpt(rawPosition)}"`);
      }
      const content = this.readContent(c, path, { emptyAllowed: false });
      if (content) commands.push({ name: c.attrs.get('name') ?? '', position, content });
    });
    const positioned = all(list, 'command').filter((c) => c.attrs.has('position'));
    if (!list || positioned.length === 0) return commands;
    if (positioned.length !== all(list, 'command').length) {
      this.fail('invalid_position', list, listPath, 'either every <command> has a position or none has; they are mixed here');
      return commands;
    }
    if (commands.length !== positioned.length || commands.some((c) => c.position === null)) return commands;
    const sorted = [...commands].sort((a, b) => a.position! - b.position!);
    const positions = sorted.map((c) => c.position);
    if (positions.some((p, i) => p !== i + 1)) {
      this.fail('invalid_position', list, listPath, `positions must be exactly 1..${sorted.length} with no gap or duplicate; got ${positions.join(', ')}`);
    }
    return sorted;
  }

  /** raw, base64 or url content of a file or command, stripped of surrounding white space as Oz does. */
  private readContent(el: XmlElement, path: string, { emptyAllowed }: { emptyAllowed: boolean }): Content | null {
    const type = el.attrs.get('type') ?? 'raw';
    const body = el.text.trim();
    const kind = el.name === 'command' ? 'command' : 'file';
    if (!emptyAllowed && body === '' && ['raw', 'base64', 'url'].includes(type)) {
      this.fail('empty_command', el, path, 'a command may not be empty');
      return null;
    }
    switch (type) {
      case 'raw':
        return { type: 'raw', data: Buffer.from(body, 'utf8') };
      case 'base64': {
        // White space may stand alone (an empty file) but not around or inside the data.
        const data = body === '' ? Buffer.alloc(0) : el.text === body ? decodeBase64(body) : null;
        if (data === null) {
          this.fail('invalid_base64', el, path, `${kind} content is not valid base64 ("${excerpt(el.text.trim())}")`);
          return null;
        }
        return { type: 'base64', data };
      }
      case 'url':
        if (!isContentUrl(body)) {
          this.fail('invalid_value', el, path, `${kind} content of type "url" must be a file://, http:// or https:// URL; got "${excerpt(body)}"`);
          return null;
        }
        if (!this.hostFileAllowed(body, el, path, `${kind} content`)) return null;
        return { type: 'url', url: body };
      default:
        this.fail('invalid_value', el, path, `type must be "raw", "base64" or "url", got "${excerpt(type)}"`);
        return null;
    }
  }

  private readDiskSize(size: XmlElement): bigint | null {
    const bytes = parseDiskSize(size.text);
    if (bytes === null) {
      this.fail(
        'invalid_disk_size',
        size,
        '/template/disk/size',
        `size must be a whole number with an optional unit (G, T, B, kB…YB, KiB…YiB), e.g. "10" or "16GiB"; got "${excerpt(size.text)}"`,
      );
    }
    return bytes;
  }

  private fail(code: TdlErrorCode, el: XmlElement, path: string, message: string): void {
    this.errors.push({ code, path, line: el.line, col: el.col, message });
  }
}

function first(el: XmlElement | undefined, name: string): XmlElement | undefined {
  return el?.children.find((c) => c.name === name);
}

function all(el: XmlElement | undefined, name: string): XmlElement[] {
  return el?.children.filter((c) => c.name === name) ?? [];
}

function textOf(el: XmlElement | undefined): string {
  return el?.text ?? '';
}

function optionalText(el: XmlElement | undefined): string | null {
  return el ? el.text : null;
}
