import { existsSync, statSync } from 'node:fs';
import { EXIT, UsageError } from '../client/exit.js';
import { ClientError } from '../client/http.js';
import { KINDS, type ImageDetail, type Kind } from '../client/images.js';
import { mergeParameters, readText, type ParameterFlag } from '../client/parameters.js';
import { optionText, type Context } from './context.js';
import { waitForImage } from './wait.js';

/** `base_image`, `target_image` and `provider_image`: build the request, submit it, and (by default) wait. */

export interface BuildFlags {
  parameters?: unknown;
  wait?: unknown;
  id?: unknown;
  template?: unknown;
}

const [BASE, TARGET, PROVIDER] = KINDS;

export function baseImage(ctx: Context, templateFile: string, flags: BuildFlags, params: ParameterFlag[]): Promise<number> {
  const fields = { template: readText(templateFile, 'TEMPLATE'), ...parametersField(flags, params) };
  return submit(ctx, BASE, fields, flags);
}

export function targetImage(ctx: Context, target: string, flags: BuildFlags, params: ParameterFlag[]): Promise<number> {
  const parent = parentOrTemplate(flags, 'base_image_id', 'target_image');
  return submit(ctx, TARGET, { target: String(target), ...parent, ...parametersField(flags, params) }, flags);
}

export function providerImage(ctx: Context, target: string, provider: string, credentialsFile: string, flags: BuildFlags, params: ParameterFlag[]): Promise<number> {
  const parent = parentOrTemplate(flags, 'target_image_id', 'provider_image');
  const fields = {
    target: String(target),
    provider: providerDocument(String(provider)),
    credentials: readText(String(credentialsFile), 'CREDENTIALS'),
    ...parent,
    ...parametersField(flags, params),
  };
  return submit(ctx, PROVIDER, fields, flags);
}

/** `@name` is a name; an existing file is a JSON/XML provider document; anything else is a name. */
export function providerDocument(provider: string): string {
  if (provider.startsWith('@')) return provider.slice(1);
  if (existsSync(provider) && statSync(provider).isFile()) return readText(provider, 'PROVIDER');
  return provider;
}

function parentOrTemplate(flags: BuildFlags, parentField: string, command: string): Record<string, string> {
  const id = optionText(flags.id, '--id');
  const template = optionText(flags.template, '--template');
  if ((id === undefined) === (template === undefined)) throw new UsageError(`give exactly one of --id and --template`, command);
  return id !== undefined ? { [parentField]: id } : { template: readText(template!, '--template') };
}

function parametersField(flags: BuildFlags, params: ParameterFlag[]): { parameters?: Record<string, unknown> } {
  const parameters = mergeParameters(optionText(flags.parameters, '--parameters'), params);
  return Object.keys(parameters).length ? { parameters } : {};
}

async function submit(ctx: Context, kind: Kind, fields: Record<string, unknown>, flags: BuildFlags): Promise<number> {
  const startedAt = Date.now();
  const { body } = await ctx.client.json<Record<string, ImageDetail>>('POST', `/imagefactory/${kind.collection}`, { [kind.singular]: fields });
  const image = body?.[kind.singular];
  if (!image?.id) throw new ClientError('bad_response', `POST /imagefactory/${kind.collection} did not answer a ${kind.singular}`);
  if (flags.wait === false) {
    ctx.io.out.write(ctx.json ? JSON.stringify(image, null, 2) + '\n' : `${image.id}\n`);
    return EXIT.ok;
  }
  ctx.io.err.write(`imagefactory: ${kind.label} ${image.id} submitted; waiting for it (Ctrl-C cancels the build)\n`);
  return waitForImage(ctx, kind, image, { cancelOnInterrupt: true, startedAt });
}
