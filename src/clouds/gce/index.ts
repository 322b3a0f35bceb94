import { defineCloudPlugin } from '../plugin.js';
import { gceProduce } from '../produce.js';

/**
 * gce: the image Google Compute Engine imports from a bucket: a tar.gz holding
 * exactly `disk.raw` (GNU tar, sparse), with a serial console (GCE's serial
 * port 1) and the virtio-scsi and NVMe drivers (its two disk interfaces)
 * available at boot; cloud-init comes from target_content.xml.
 */
export default () =>
  defineCloudPlugin({
    needs: () => ({ bootModules: ['virtio_scsi', 'nvme'], serialConsole: true }),
    produce: () => gceProduce,
  });
