import type { EngineApi } from '../engine/types.js';
import type { ImageKind, ImageRecord } from '../model/index.js';
import { imageNotFound } from './errors.js';
import { KIND_NAMES } from './paths.js';

/**
 * Resolves the images a path names (`base_image_id`, `target_image_id`,
 * `provider_image_id`), checking each has the kind its segment says and
 * belongs to the ancestor named before it. Any mismatch is 404
 * `image_not_found`: a target image reached under another base does not exist
 * at that URL.
 */
export interface Located {
  BaseImage?: ImageRecord;
  TargetImage?: ImageRecord;
  ProviderImage?: ImageRecord;
}

const ORDER: readonly ImageKind[] = ['BaseImage', 'TargetImage', 'ProviderImage'];

export function locate(engine: EngineApi, params: Record<string, string | undefined>): Located {
  const found: Located = {};
  let parent: ImageRecord | undefined;
  for (const kind of ORDER) {
    const id = params[KIND_NAMES[kind].param];
    if (id === undefined) continue;
    const image = engine.getImage(id);
    if (!image || image.kind !== kind) throw imageNotFound(`no ${KIND_NAMES[kind].singular.replace('_', ' ')} with id ${id}`);
    if (parent && parentId(image) !== parent.id) {
      throw imageNotFound(`${KIND_NAMES[kind].singular.replace('_', ' ')} ${id} does not belong to ${KIND_NAMES[parent.kind].singular.replace('_', ' ')} ${parent.id}`);
    }
    found[kind] = image;
    parent = image;
  }
  return found;
}

/** The image a per-image route is about: the deepest one its path names. */
export function locateImage(engine: EngineApi, kind: ImageKind, params: Record<string, string | undefined>): ImageRecord {
  const image = locate(engine, params)[kind];
  // Unreachable with the registered patterns (each names its own kind's id); kept as a guard.
  if (!image) throw imageNotFound(`no ${KIND_NAMES[kind].singular.replace('_', ' ')} named in the path`);
  return image;
}

function parentId(image: ImageRecord): string | null {
  return image.kind === 'TargetImage' ? image.baseImageId : image.kind === 'ProviderImage' ? image.targetImageId : null;
}
