// Which libvirt and where in it. The provider is `libvirt` (the local system daemon), a connection
// URI (`qemu:///system`, `qemu+ssh://host/system`), or a document
// `{"uri": …, "pool": …, "pool_path": …, "domain_type": "kvm"|"qemu", "memory_mib": …, "vcpus": …,
// "network": …, "firmware": "bios"|"uefi"}`. No credentials: libvirt authenticates the connection
// (socket permissions, ssh keys).
import { numberSetting, readProviderDocument, stringSetting } from '../documents.js';
import { ProviderError } from '../errors.js';

export interface LibvirtAccess {
  uri: string;
  pool: string;
  /** Where the pool is created when it does not exist. */
  poolPath: string;
  domainType: 'kvm' | 'qemu';
  memoryMiB: number;
  vcpus: number;
  network?: string;
  firmware: 'bios' | 'uefi';
}

export const DEFAULT_POOL = 'imagefactory';
export const DEFAULT_POOL_PATH = '/var/lib/libvirt/images/imagefactory';

export function libvirtAccess(provider: string): LibvirtAccess {
  const doc = readProviderDocument(provider);
  const named = doc.name && doc.name !== 'libvirt' ? doc.name : undefined;
  const uri = stringSetting(doc.fields, 'uri') ?? (named && /^[a-z0-9+]+:\/\//.test(named) ? named : undefined) ?? 'qemu:///system';
  if (named && !/^[a-z0-9+]+:\/\//.test(named) && !stringSetting(doc.fields, 'uri')) {
    throw new ProviderError('invalid_provider', `a libvirt provider is "libvirt", a connection URI or a JSON document; got "${named}"`);
  }
  const pool = stringSetting(doc.fields, 'pool') ?? DEFAULT_POOL;
  const poolPath = stringSetting(doc.fields, 'pool_path') ?? (pool === DEFAULT_POOL ? DEFAULT_POOL_PATH : `/var/lib/libvirt/images/${pool}`);
  const domainType = stringSetting(doc.fields, 'domain_type') ?? 'kvm';
  if (domainType !== 'kvm' && domainType !== 'qemu') throw new ProviderError('invalid_provider', 'domain_type must be kvm or qemu');
  const firmware = stringSetting(doc.fields, 'firmware') ?? 'bios';
  if (firmware !== 'bios' && firmware !== 'uefi') throw new ProviderError('invalid_provider', 'firmware must be bios or uefi');
  if (!/^[A-Za-z0-9_.-]+$/.test(pool)) throw new ProviderError('invalid_provider', 'the pool name may hold letters, digits, _ . - only');
  const network = stringSetting(doc.fields, 'network');
  return {
    uri,
    pool,
    poolPath,
    domainType,
    memoryMiB: numberSetting(doc.fields, 'memory_mib') ?? 1024,
    vcpus: numberSetting(doc.fields, 'vcpus') ?? 1,
    ...(network ? { network } : {}),
    firmware,
  };
}
