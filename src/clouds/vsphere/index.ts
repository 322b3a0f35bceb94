import { defineCloudPlugin } from '../plugin.js';
import { enumParam } from '../params.js';
import { diskProduce } from '../produce.js';

/**
 * vsphere: a VMDK. The original's `vsphere_vmdk_format`: `streaming`
 * (default) gives a streamOptimized VMDK, what vSphere imports and ovftool
 * uploads; `standard` a monolithicSparse one (Workstation, Fusion). The
 * paravirtual SCSI and vmxnet3 drivers must be available at boot;
 * open-vm-tools comes from target_content.xml.
 */
const FORMATS = { streaming: 'streamOptimized', standard: 'monolithicSparse' } as const;

export default () =>
  defineCloudPlugin({
    check: (_t, parameters) => void enumParam(parameters, 'vsphere_vmdk_format', ['streaming', 'standard'], 'streaming'),
    needs: () => ({ bootModules: ['vmw_pvscsi', 'vmxnet3'] }),
    produce: (ctx) => diskProduce({ format: 'vmdk', options: { subformat: FORMATS[enumParam(ctx.parameters, 'vsphere_vmdk_format', ['streaming', 'standard'], 'streaming')] }, diskFormat: 'vmdk', label: 'a VMDK' }),
  });
