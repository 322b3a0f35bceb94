import type { EngineApi, SubmitOptions } from '../../engine/types.js';
import type { ImageKind, ImageRecord } from '../../model/index.js';
import { readBody } from '../body.js';
import { locate, type Located } from '../locate.js';
import { prefersStrictHandling, STRICT_APPLIED } from '../prefer.js';
import { COLLECTION_LOCATIONS, KIND_NAMES } from '../paths.js';
import { imageHref, presentImage, presentSummary, requestBaseUrl, wrapImage } from '../present.js';
import { baseImageRequest, providerImageRequest, targetImageRequest } from '../requests.js';
import { sendJson } from '../respond.js';
import type { RouteDef } from '../route.js';

/** List and create, for each collection and its nested forms. */
export function collectionRoutes(): RouteDef[] {
  return COLLECTION_LOCATIONS.flatMap(({ kind, path }): RouteDef[] => [
    {
      method: 'GET',
      path,
      produces: 'application/json',
      handle: (req, res, ctx) => {
        const parents = locate(ctx.engine, req.params);
        const images = listUnder(ctx.engine, kind, parents);
        const baseUrl = requestBaseUrl(req);
        const { collection, singular } = KIND_NAMES[kind];
        sendJson(res, 200, { [collection]: images.map((i) => ({ [singular]: presentSummary(i, baseUrl) })) });
      },
    },
    {
      method: 'POST',
      path,
      produces: 'application/json',
      handle: async (req, res, ctx) => {
        const parents = locate(ctx.engine, req.params);
        const body = await readBody(req, ctx.maxBodyBytes);
        const strict = prefersStrictHandling(req);
        const image = submit(ctx.engine, kind, body, parents, { invalidTemplate: strict ? 'refuse' : 'fail' });
        const baseUrl = requestBaseUrl(req);
        sendJson(res, 202, wrapImage(image, presentImage(image, baseUrl)), { location: imageHref(image, baseUrl), ...(strict ? STRICT_APPLIED : {}) });
      },
    },
  ]);
}

function listUnder(engine: EngineApi, kind: ImageKind, parents: Located): ImageRecord[] {
  const baseImageId = kind === 'TargetImage' ? parents.BaseImage?.id : undefined;
  const targetImageId = kind === 'ProviderImage' ? parents.TargetImage?.id : undefined;
  const filter = { kind, ...(baseImageId ? { baseImageId } : {}), ...(targetImageId ? { targetImageId } : {}) };
  // Filtered again here so a list never shows an image under a parent it does not belong to.
  return engine
    .listImages(filter)
    .filter((i) => i.kind === kind && (!baseImageId || i.baseImageId === baseImageId) && (!targetImageId || i.targetImageId === targetImageId));
}

function submit(engine: EngineApi, kind: ImageKind, body: Awaited<ReturnType<typeof readBody>>, parents: Located, opts: SubmitOptions): ImageRecord {
  switch (kind) {
    case 'BaseImage':
      return engine.submitBaseImage(baseImageRequest(body), opts);
    case 'TargetImage':
      return engine.submitTargetImage(targetImageRequest(body, parents.BaseImage?.id), opts);
    case 'ProviderImage':
      return engine.submitProviderImage(providerImageRequest(body, parents.TargetImage?.id), opts);
  }
}
