import { defineCloudPlugin } from '../plugin.js';
import { boolParam, enumParam } from '../params.js';
import { diskProduce } from '../produce.js';
import { StepError } from '../../os/plugin.js';

/**
 * ec2: a raw disk for the EBS direct APIs (the provider push reads it block
 * by block), with cloud-init, a serial console (`console=ttyS0`, what the EC2
 * serial console and get-console-output show) and the NVMe (EBS volumes on
 * Nitro) and ENA (the network) drivers available at boot. The original's
 * parameters: `skip_ec2_modifications` (adapt nothing), `ec2_virt_type`
 * (`hvm` only: paravirtual instances are gone), `ec2_ami_type` and
 * `ec2_flatten`/`ec2_modify` (accepted; meaningful to the push).
 */
export default () =>
  defineCloudPlugin({
    check(_target, parameters) {
      if (enumParam(parameters, 'ec2_virt_type', ['hvm', 'paravirtual'], 'hvm') === 'paravirtual') {
        throw new StepError('not_supported', 'ec2_virt_type paravirtual is not supported: EC2 images are built for HVM', { parameter: 'ec2_virt_type' });
      }
      enumParam(parameters, 'ec2_ami_type', ['ebs', 's3'], 'ebs');
      boolParam(parameters, 'skip_ec2_modifications', false);
      boolParam(parameters, 'ec2_flatten', true);
      boolParam(parameters, 'ec2_modify', true);
    },
    needs: (ctx) => (boolParam(ctx.parameters, 'skip_ec2_modifications', false) ? null : { packages: ['cloud-init'], bootModules: ['nvme', 'ena'], serialConsole: true }),
    produce: () => diskProduce({ format: 'raw', diskFormat: 'raw', label: 'a raw disk' }),
  });
