import { defineCloudPlugin } from '../plugin.js';
import { dockerOptions, dockerProduce } from '../oci.js';

/**
 * docker: the root filesystem as an OCI image archive (see ../oci.ts). The
 * original's parameters: `repository`, `tag`, `compress`,
 * `create_docker_metadata`, `docker_cmd`, `docker_env`, `docker_label`,
 * `comment`. A container needs no kernel work: only packages that
 * target_content.xml lists for `docker` are installed.
 */
export default () =>
  defineCloudPlugin({
    check: (_t, parameters) => void dockerOptions(parameters, 'image'),
    produce: () => dockerProduce((ctx) => dockerOptions(ctx.parameters, ctx.template.name)),
  });
