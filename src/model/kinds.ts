/**
 * The three kinds of image, by the names each layer uses: the build
 * machines' short names, the catalog's record kinds, and the REST API's
 * singular and collection names.
 */

export type BuildKind = 'base' | 'target' | 'provider';
export type ImageKind = 'BaseImage' | 'TargetImage' | 'ProviderImage';

export interface KindNames {
  build: BuildKind;
  image: ImageKind;
  /** REST: the key of one image in a response body, and the id parameter's stem: `base_image`. */
  singular: 'base_image' | 'target_image' | 'provider_image';
  /** REST: the URL segment and list key: `base_images`. */
  collection: 'base_images' | 'target_images' | 'provider_images';
  /** The kind this one is built from, if any. */
  parent: ImageKind | null;
}

export const KINDS: Record<ImageKind, KindNames> = {
  BaseImage: { build: 'base', image: 'BaseImage', singular: 'base_image', collection: 'base_images', parent: null },
  TargetImage: { build: 'target', image: 'TargetImage', singular: 'target_image', collection: 'target_images', parent: 'BaseImage' },
  ProviderImage: { build: 'provider', image: 'ProviderImage', singular: 'provider_image', collection: 'provider_images', parent: 'TargetImage' },
};

export const IMAGE_KINDS = Object.keys(KINDS) as ImageKind[];

export const imageKindOf = (build: BuildKind): ImageKind => IMAGE_KINDS.find((k) => KINDS[k].build === build)!;
export const buildKindOf = (kind: ImageKind): BuildKind => KINDS[kind].build;
