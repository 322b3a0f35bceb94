import type { ImageKind } from '../model/index.js';

/** Every route lives under this prefix, as in the original daemon. */
export const BASE_PATH = '/imagefactory';

export interface KindNames {
  /** URL segment and list envelope key: `base_images`. */
  collection: string;
  /** Detail envelope key and body wrapper: `base_image`. */
  singular: string;
  /** Path parameter naming an image of this kind: `base_image_id`. */
  param: string;
}

export const KIND_NAMES: Record<ImageKind, KindNames> = {
  BaseImage: { collection: 'base_images', singular: 'base_image', param: 'base_image_id' },
  TargetImage: { collection: 'target_images', singular: 'target_image', param: 'target_image_id' },
  ProviderImage: { collection: 'provider_images', singular: 'provider_image', param: 'provider_image_id' },
};

/** A URL form that names a collection of one kind (flat, or nested under its ancestors). */
export interface CollectionLocation {
  kind: ImageKind;
  /** Polka pattern, e.g. `/imagefactory/base_images/:base_image_id/target_images`. */
  path: string;
}

/** A URL form that names one image (flat, or nested under its ancestors). */
export interface ImageLocation {
  kind: ImageKind;
  path: string;
}

const base = `${BASE_PATH}/base_images`;
const target = `${BASE_PATH}/target_images`;
const provider = `${BASE_PATH}/provider_images`;
const underBase = `${base}/:base_image_id/target_images`;
const underTarget = `${target}/:target_image_id/provider_images`;
const underBaseTarget = `${underBase}/:target_image_id/provider_images`;

/** The collections and their nested forms; the parent ids come from the path. */
export const COLLECTION_LOCATIONS: readonly CollectionLocation[] = [
  { kind: 'BaseImage', path: base },
  { kind: 'TargetImage', path: target },
  { kind: 'TargetImage', path: underBase },
  { kind: 'ProviderImage', path: provider },
  { kind: 'ProviderImage', path: underTarget },
  { kind: 'ProviderImage', path: underBaseTarget },
];

/** Every form that names one image; the image must belong to the ancestors the path names. */
export const IMAGE_LOCATIONS: readonly ImageLocation[] = COLLECTION_LOCATIONS.map((c) => ({
  kind: c.kind,
  path: `${c.path}/:${KIND_NAMES[c.kind].param}`,
}));

/** Polka's `/a/:b` as OpenAPI's `/a/{b}`. */
export function toOpenApiPath(pattern: string): string {
  return pattern.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');
}
