export { MediaError, type MediaErrorCode } from './errors.js';
export { localRunner, runChecked, type RunTool } from './tools.js';
export { DownloadCache, describeUrl, type CachedFile, type DownloadCacheOptions, type DownloadProgress, type GetOptions } from './download-cache.js';
export { verifyChecksum, parseChecksumFile, findChecksum, hashFile, type ChecksumEntry, type ChecksumKind, type VerifiedChecksum, type VerifyOptions } from './checksum.js';
export { locateInstaller, parseIni, httpProbe, type InstallerLocation, type TreeProbe } from './tree.js';
export { newcArchive, type CpioEntry } from './cpio.js';
export { appendToInitrd, type AppendOptions, type AppendResult } from './initrd.js';
export {
  remasterIso,
  assertIso9660,
  listIso,
  isoVolumeId,
  extractFromIso,
  isoInstallerCandidates,
  locateInstallerOnIso,
  installerKernelArgs,
  type AnswerPlacement,
  type IsoAddition,
  type IsoToolOptions,
  type KernelArgsOptions,
} from './iso.js';
