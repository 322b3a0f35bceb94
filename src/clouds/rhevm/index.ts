import { defineCloudPlugin } from '../plugin.js';
import { enumParam } from '../params.js';
import { diskProduce } from '../produce.js';

/**
 * rhevm and ovirt: qcow2 (compat 1.1) or raw by the original's
 * `rhevm_image_format`, whose default is the configuration key of the same
 * name. The guest agent comes from target_content.xml.
 */
export default () =>
  defineCloudPlugin({
    check: (_t, parameters, settings) => void enumParam(parameters, 'rhevm_image_format', ['qcow2', 'raw'], settings.rhevm_image_format),
    produce: (ctx) => {
      const format = enumParam(ctx.parameters, 'rhevm_image_format', ['qcow2', 'raw'], ctx.settings.rhevm_image_format);
      return diskProduce({ format, ...(format === 'qcow2' ? { options: { compat: '1.1' } } : {}), diskFormat: format, label: format });
    },
  });
