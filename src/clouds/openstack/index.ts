import { defineCloudPlugin } from '../plugin.js';
import { enumParam } from '../params.js';
import { diskProduce } from '../produce.js';

/**
 * openstack-kvm: a qcow2 (or raw, by the original's `openstack_image_format`,
 * whose default is the configuration key of the same name) with cloud-init,
 * for Glance with disk_format qcow2/raw, container_format bare.
 */
export default () =>
  defineCloudPlugin({
    check: (_t, parameters, settings) => void enumParam(parameters, 'openstack_image_format', ['qcow2', 'raw'], settings.openstack_image_format),
    needs: () => ({ packages: ['cloud-init'], serialConsole: true }),
    produce: (ctx) => {
      const format = enumParam(ctx.parameters, 'openstack_image_format', ['qcow2', 'raw'], ctx.settings.openstack_image_format);
      return diskProduce({ format, diskFormat: format, label: format });
    },
  });
