import { defineCloudPlugin } from '../plugin.js';
import { diskProduce } from '../produce.js';
import type { QemuFormat } from '../qemu-img.js';
import { StepError } from '../../os/plugin.js';

/**
 * Plain conversions, no cloud behind them: `raw`, `qcow2`, `vmdk`
 * (monolithicSparse), `vhd` (dynamic, exact size) and `vhdx`. Nothing is
 * changed in the image beyond what target_content.xml lists for the name.
 */
const TARGETS: Record<string, { format: QemuFormat; options?: Record<string, string> }> = {
  raw: { format: 'raw' },
  qcow2: { format: 'qcow2' },
  vmdk: { format: 'vmdk' },
  vhd: { format: 'vpc', options: { subformat: 'dynamic', force_size: 'on' } },
  vhdx: { format: 'vhdx' },
};

export default () =>
  defineCloudPlugin({
    check(target) {
      if (!TARGETS[target]) throw new StepError('bad_parameter', `the formats plugin converts to ${Object.keys(TARGETS).join(', ')}, not ${target}`);
    },
    produce: (ctx) => {
      const t = TARGETS[ctx.target]!;
      return diskProduce({ format: t.format, ...(t.options ? { options: t.options } : {}), diskFormat: ctx.target, label: ctx.target });
    },
  });
