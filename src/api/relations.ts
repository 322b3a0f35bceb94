import type { EngineApi } from '../engine/types.js';
import type { ImageRecord } from '../model/index.js';
import { imageHref, presentSummary } from './present.js';

/**
 * The links between images in an image's GET, as the original Image Factory
 * embedded them: a base image lists its target images, a target image names
 * its base image and lists its provider images, a provider image names its
 * target image. The lists keep the original's shape exactly — the
 * collection answer nested under the collection's name
 * (`"target_images": {"target_images": [{"target_image": {…}}]}`) — so its
 * clients read them unchanged; the entries are this API's summaries (the
 * original's `_type`, `id`, `href`, plus `status` and `percent_complete`).
 */
export function relationsOf(engine: EngineApi, image: ImageRecord, baseUrl: string): Record<string, unknown> {
  const link = (id: string | null, kind: ImageRecord['kind']) => {
    if (!id) return null;
    const found = engine.getImage(id);
    return found ? presentSummary(found, baseUrl) : { _type: kind, id, href: imageHref({ id, kind } as ImageRecord, baseUrl) };
  };
  const list = (collection: 'target_images' | 'provider_images', singular: string, images: ImageRecord[]) => ({
    [collection]: images.map((i) => ({ [singular]: presentSummary(i, baseUrl) })),
  });
  switch (image.kind) {
    case 'BaseImage':
      return { target_images: list('target_images', 'target_image', engine.listImages({ kind: 'TargetImage', baseImageId: image.id }).filter((i) => i.baseImageId === image.id)) };
    case 'TargetImage':
      return {
        base_image: link(image.baseImageId, 'BaseImage'),
        provider_images: list('provider_images', 'provider_image', engine.listImages({ kind: 'ProviderImage', targetImageId: image.id }).filter((i) => i.targetImageId === image.id)),
      };
    case 'ProviderImage':
      return { target_image: link(image.targetImageId, 'TargetImage') };
  }
}
