import { EXIT } from '../client/exit.js';
import type { ImageDetail } from '../client/images.js';
import { imagePath, locateImage } from '../client/images.js';
import { readText } from '../client/parameters.js';
import { optionText, type Context } from './context.js';
import { waitForImage } from './wait.js';

/** `delete`, `cancel` and `watch`: commands on one existing image, found by trying the three collections. */

export interface DeleteFlags {
  cascade?: unknown;
  provider?: unknown;
  credentials?: unknown;
  target?: unknown;
}

export async function deleteImage(ctx: Context, id: string, flags: DeleteFlags): Promise<number> {
  const { kind } = await locateImage(ctx.client, id);
  const provider = optionText(flags.provider, '--provider');
  const credentialsFile = optionText(flags.credentials, '--credentials');
  const target = optionText(flags.target, '--target');
  // Only a provider image has something to remove from a provider, with that provider's credentials.
  const body =
    kind.type === 'ProviderImage' && (provider ?? credentialsFile ?? target) !== undefined
      ? {
          [kind.singular]: {
            ...(provider !== undefined ? { provider: provider.startsWith('@') ? provider.slice(1) : provider } : {}),
            ...(credentialsFile !== undefined ? { credentials: readText(credentialsFile, '--credentials') } : {}),
            ...(target !== undefined ? { target } : {}),
          },
        }
      : undefined;
  await ctx.client.json('DELETE', `${imagePath(kind, id)}${flags.cascade === true ? '?cascade=true' : ''}`, body);
  ctx.io.err.write(`imagefactory: deleting ${kind.label} ${id}${flags.cascade === true ? ' and the images made from it' : ''}\n`);
  return EXIT.ok;
}

export async function cancelImage(ctx: Context, id: string): Promise<number> {
  const { kind } = await locateImage(ctx.client, id);
  const { body } = await ctx.client.json<Record<string, ImageDetail>>('POST', `${imagePath(kind, id)}/cancel`);
  if (ctx.json) ctx.io.out.write(JSON.stringify(body?.[kind.singular] ?? null, null, 2) + '\n');
  ctx.io.err.write(`imagefactory: the daemon is cancelling ${kind.label} ${id}\n`);
  return EXIT.ok;
}

export async function watchImage(ctx: Context, id: string): Promise<number> {
  const { kind, image } = await locateImage(ctx.client, id);
  return waitForImage(ctx, kind, image, { cancelOnInterrupt: false });
}
