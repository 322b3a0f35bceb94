import { defineCloudPlugin } from '../plugin.js';
import { diskProduce } from '../produce.js';

/** libvirt: a standalone qcow2 (no backing file) with qemu-guest-agent, for a libvirt storage pool. */
export default () =>
  defineCloudPlugin({
    needs: () => ({ packages: ['qemu-guest-agent'] }),
    produce: () => diskProduce({ format: 'qcow2', diskFormat: 'qcow2', label: 'qcow2' }),
  });
