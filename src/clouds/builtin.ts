import type { CloudPlugin } from './types.js';

/**
 * Cloud plugins shipped with the daemon, by plugin id (the `.info` file's
 * name in conf/plugins.d/). A `.info` of type `cloud` without a `module`
 * field names one of these; its targets are in the `.info`.
 */
export const BUILTIN_CLOUD_PLUGINS: Record<string, () => Promise<CloudPlugin>> = {
  EC2: async () => (await import('./ec2/index.js')).default(),
  OpenStack: async () => (await import('./openstack/index.js')).default(),
  GCE: async () => (await import('./gce/index.js')).default(),
  HyperV: async () => (await import('./hyperv/index.js')).default(),
  VSphere: async () => (await import('./vsphere/index.js')).default(),
  OVA: async () => (await import('./ova/index.js')).default(),
  RHEVM: async () => (await import('./rhevm/index.js')).default(),
  Libvirt: async () => (await import('./libvirt/index.js')).default(),
  Docker: async () => (await import('./docker/index.js')).default(),
  Formats: async () => (await import('./formats/index.js')).default(),
};

/** What keeps `value` from being a CloudPlugin, or null if it is one. */
export function cloudPluginProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null) return 'plugin factory must return an object with check, adapt and convert';
  const plugin = value as Record<string, unknown>;
  if (typeof plugin.check !== 'function') return 'check must be a function';
  for (const name of ['adapt', 'convert']) {
    const step = plugin[name] as Record<string, unknown> | undefined;
    if (typeof step !== 'object' || step === null) return `plugin has no ${name} step (an object with run and undo functions)`;
    for (const fn of ['run', 'undo']) if (typeof step[fn] !== 'function') return `${name}.${fn} must be a function`;
  }
  return null;
}
