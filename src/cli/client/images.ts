import { Client, ClientError } from './http.js';

/** The three kinds of image and where the REST API keeps each. */
export const KINDS = [
  { type: 'BaseImage', collection: 'base_images', singular: 'base_image', label: 'base image' },
  { type: 'TargetImage', collection: 'target_images', singular: 'target_image', label: 'target image' },
  { type: 'ProviderImage', collection: 'provider_images', singular: 'provider_image', label: 'provider image' },
] as const;

export type Kind = (typeof KINDS)[number];

/** An image as `GET /imagefactory/<collection>/:id` shows it (the fields the client reads; the rest passes through). */
export interface ImageDetail {
  _type: string;
  id: string;
  status: string;
  percent_complete: number;
  phase?: string;
  created?: string;
  status_detail?: { activity?: string | null; error?: string | null; error_code?: string | null };
  [field: string]: unknown;
}

/** Statuses after which an image no longer changes on its own. */
export const FINAL_STATUSES: ReadonlySet<string> = new Set(['COMPLETE', 'FAILED', 'CANCELLED', 'DELETED', 'DELETEFAILED']);

export const kindOfType = (type: string): Kind | undefined => KINDS.find((k) => k.type === type);

export const imagePath = (kind: Kind, id: string) => `/imagefactory/${kind.collection}/${encodeURIComponent(id)}`;

/** The image's detail, unwrapped from `{"base_image": {...}}`. */
export async function getImage(client: Client, kind: Kind, id: string): Promise<ImageDetail> {
  const { body } = await client.json<Record<string, ImageDetail>>('GET', imagePath(kind, id));
  const image = body?.[kind.singular];
  if (!image) throw new ClientError('bad_response', `GET ${imagePath(kind, id)} did not answer a ${kind.singular}`);
  return image;
}

/** Finds which collection holds `id` by asking each in turn; `image_not_found` when none does. */
export async function locateImage(client: Client, id: string): Promise<{ kind: Kind; image: ImageDetail }> {
  for (const kind of KINDS) {
    try {
      return { kind, image: await getImage(client, kind, id) };
    } catch (e) {
      if (!(e instanceof ClientError && e.status === 404)) throw e;
    }
  }
  throw new ClientError('image_not_found', `no image with id ${id}`, 404);
}
