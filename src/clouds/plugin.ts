import { createAdaptStep, createConvertStep, type Produce } from './steps.js';
import { NO_ADAPTATION, withTargetContent, type AdaptationSpec } from './adaptation.js';
import type { CloudPlugin, CloudSettings, CloudStepContext } from './types.js';

/** What a cloud plugin module declares; `defineCloudPlugin` makes the two steps from it. */
export interface CloudPluginSpec {
  /** Throws `StepError('bad_parameter')` for a parameter the target cannot take. */
  check?(target: string, parameters: Record<string, unknown>, settings: CloudSettings): void;
  /** What the target itself always needs in the image; target_content.xml adds to the packages. */
  needs?(ctx: CloudStepContext): Partial<AdaptationSpec> | null;
  /** How the body is produced from the adapted overlay. */
  produce(ctx: CloudStepContext): Produce;
  /** The overlay's (and so the output's) virtual size is rounded up to this; 1 MiB by default. */
  alignBytes?: number;
}

export function defineCloudPlugin(spec: CloudPluginSpec): CloudPlugin {
  return {
    check: (target, parameters, settings) => spec.check?.(target, parameters, settings),
    adapt: createAdaptStep({
      spec: (ctx) => {
        spec.check?.(ctx.target, ctx.parameters, ctx.settings);
        const own = spec.needs?.(ctx);
        // null: the target asked for no modifications at all (the original's skip_ec2_modifications), content included.
        return own === null ? NO_ADAPTATION : withTargetContent(ctx, own ?? {});
      },
      ...(spec.alignBytes ? { alignBytes: spec.alignBytes } : {}),
    }),
    convert: createConvertStep((ctx, source) => spec.produce(ctx)(ctx, source)),
  };
}
