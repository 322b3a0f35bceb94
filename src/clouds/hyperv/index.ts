import { defineCloudPlugin } from '../plugin.js';
import { diskProduce } from '../produce.js';

const MiB = 1024 * 1024;

/**
 * hyperv and azure: a fixed VHD whose virtual size is a whole number of MiB
 * (Azure refuses others), written by qemu-img with `force_size` so the VHD
 * footer states exactly that size instead of a CHS-rounded one. The Hyper-V
 * drivers (VMBus, storage, network) must be available at boot; Azure also
 * gets a serial console (its serial console is ttyS0). Packages (cloud-init
 * for azure, hyperv-daemons) come from target_content.xml.
 */
export default () =>
  defineCloudPlugin({
    alignBytes: MiB,
    needs: (ctx) => ({ bootModules: ['hv_vmbus', 'hv_storvsc', 'hv_netvsc'], serialConsole: ctx.target === 'azure' }),
    produce: () => diskProduce({ format: 'vpc', options: { subformat: 'fixed', force_size: 'on' }, diskFormat: 'vhd', label: 'a fixed VHD' }),
  });
