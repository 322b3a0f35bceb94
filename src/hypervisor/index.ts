export * from './types.js';
export { chooseAccel, detectAccel, type AccelChoice, type AccelProbe, type AccelSetting } from './accel.js';
export { assertDomainName, HypervisorError, InstallError, type HypervisorErrorCode, type InstallErrorCode, type InstallFailureDetails } from './errors.js';
export { domainXml, LibvirtDriver, type LibvirtDriverOptions } from './libvirt.js';
export { qemuCommandLine, QemuDriver, type QemuDriverOptions } from './qemu.js';
export { openHypervisor, type HypervisorSetting, type OpenHypervisorOptions, type OpenedHypervisor } from './select.js';
export { watchInstall, type WatchInstallOptions, type WatchResult } from './watchdog.js';
export { listQemuProcesses, type QemuProcess } from './processes.js';
