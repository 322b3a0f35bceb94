import type { OsSpec, Template } from '../../tdl/index.js';
import { generateAutoinstall, nocloudMetaData } from './autoinstall.js';
import { identifyDistro } from './distro.js';
import { AnswerError } from './errors.js';
import { generateKickstart } from './kickstart.js';
import type { AnswerFile, AnswerOptions, InstallerKind } from './options.js';
import { generatePreseed } from './preseed.js';

export interface SelectOptions {
  /**
   * Ubuntu 20.04 and later install with subiquity `autoinstall` by default;
   * `preseed` uses debian-installer instead (Ubuntu 20.04's legacy netboot
   * images are the last d-i Ubuntu shipped).
   */
  ubuntuInstaller?: 'autoinstall' | 'preseed';
}

const GENERATORS: Record<InstallerKind, (template: Template, options: AnswerOptions) => AnswerFile> = {
  preseed: generatePreseed,
  kickstart: generateKickstart,
  autoinstall: generateAutoinstall,
};

/** Which installer answers for this OS: kickstart (Red Hat family), autoinstall (Ubuntu ≥ 20.04), preseed (Debian, older Ubuntu). */
export function chooseInstaller(os: Pick<OsSpec, 'name' | 'version'>, options: SelectOptions = {}): InstallerKind {
  const distro = identifyDistro(os);
  switch (distro.family) {
    case 'redhat':
      return 'kickstart';
    case 'debian':
      return 'preseed';
    case 'ubuntu':
      return distro.major >= 20 && options.ubuntuInstaller !== 'preseed' ? 'autoinstall' : 'preseed';
  }
}

/**
 * The answer file for a build. When the build parameters carry
 * `install_script` (Image Factory's parameter), its text replaces the
 * generated file verbatim; the installer is still chosen from the OS, since
 * it decides the file's name and how the installer is pointed at it.
 */
export function answerFileFor(template: Template, parameters: Record<string, unknown> = {}, options: AnswerOptions & SelectOptions = {}): AnswerFile {
  const installer = chooseInstaller(template.os, options);
  const script = parameters['install_script'];
  if (script === undefined || script === null) return GENERATORS[installer](template, options);
  if (typeof script !== 'string') throw new AnswerError('install_script_invalid', `parameter install_script must be the text of an answer file, got ${Array.isArray(script) ? 'array' : typeof script}`);
  if (script.trim() === '') throw new AnswerError('install_script_invalid', 'parameter install_script is empty');
  return {
    installer,
    fileName: FILE_NAMES[installer],
    content: script,
    // autoinstall's meta-data is not part of the script; it still needs one.
    companions: installer === 'autoinstall' ? [{ name: 'meta-data', content: nocloudMetaData(template) }] : [],
    source: 'install_script',
    rootPassword: null,
  };
}

const FILE_NAMES: Record<InstallerKind, string> = { preseed: 'preseed.cfg', kickstart: 'ks.cfg', autoinstall: 'user-data' };
