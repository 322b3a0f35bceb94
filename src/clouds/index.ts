export type { BaseDisk, ChecksumPool, CloudPlugin, CloudPluginFactory, CloudSettings, CloudStep, CloudStepContext, ConversionReport } from './types.js';
export { BUILTIN_CLOUD_PLUGINS, cloudPluginProblem } from './builtin.js';
export { loadTargetContent, mergeTargetContent, parseTargetContent, selectInclude, targetContentFor, TargetContentError, type ContentInclude, type TargetContent, type TargetContentFile } from './target-content.js';
export { defineCloudPlugin, type CloudPluginSpec } from './plugin.js';
