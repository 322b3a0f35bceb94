export { AnswerError, type AnswerErrorCode } from './errors.js';
export { Secret, generateRootPassword } from './secret.js';
export { sha512Crypt, randomSalt, isSha512Crypt } from './crypt.js';
export { identifyDistro, debianArch, DEBIAN_SUITES, UBUNTU_SUITES, DEFAULT_MIRRORS, type Distro, type DistroFamily } from './distro.js';
export {
  DEFAULT_DISK_SIZE_BYTES,
  planDisk,
  resolveRootPassword,
  type AnswerFile,
  type AnswerOptions,
  type DiskPlan,
  type InstallerKind,
  type RootPassword,
} from './options.js';
export { splitMirror, aptSourceLine, type MirrorParts } from './apt.js';
export { generatePreseed, INSTALLED_CONSOLE } from './preseed.js';
export { generateKickstart } from './kickstart.js';
export { generateAutoinstall, nocloudMetaData, writeNocloudSeed, type SeedOptions } from './autoinstall.js';
export { chooseInstaller, answerFileFor, type SelectOptions } from './select.js';
