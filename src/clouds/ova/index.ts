import { defineCloudPlugin } from '../plugin.js';
import { intParam } from '../params.js';
import { ovaProduce } from '../produce.js';

/**
 * ova: an OVF descriptor, its manifest and a streamOptimized VMDK in one tar,
 * for vSphere, VirtualBox and every OVF importer. The original's parameters:
 * `ovf_cpu_count` (default 1), `ovf_memory_mb` (default 1024), `ovf_name`
 * (default: the template's name).
 */
export default () =>
  defineCloudPlugin({
    check(_t, parameters) {
      intParam(parameters, 'ovf_cpu_count', 1, 1, 768);
      intParam(parameters, 'ovf_memory_mb', 1024, 4, 24 * 1024 * 1024);
    },
    needs: () => ({ bootModules: ['vmw_pvscsi', 'vmxnet3'] }),
    produce: () =>
      ovaProduce((ctx) => ({
        cpus: intParam(ctx.parameters, 'ovf_cpu_count', 1, 1, 768),
        memoryMiB: intParam(ctx.parameters, 'ovf_memory_mb', 1024, 4, 24 * 1024 * 1024),
        name: String(ctx.parameters.ovf_name ?? ctx.template.name),
      })),
  });
