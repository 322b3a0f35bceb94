import type { Logger } from 'pino';
import type { EngineApi } from '../engine/types.js';

/** Every build transition in the daemon's log, with its image id: each change at debug, each build's end at info. */
export function logBuildEvents(engine: EngineApi, logger: Logger): () => void {
  return engine.subscribe((event) => {
    const { image } = event;
    if (event.type === 'deleted') {
      logger.info({ imageId: image.id, kind: image.kind }, 'image deleted');
      return;
    }
    if (event.type !== 'transition') return;
    const { from, to, event: cause } = event.transition;
    logger.debug({ imageId: image.id, kind: image.kind, from, to, event: cause }, `build ${from ?? '(start)'} -> ${to}`);
    if (to === 'complete' || to === 'failed' || to === 'cancelled') {
      logger.info(
        { imageId: image.id, kind: image.kind, status: image.status, ...(image.error ? { errorCode: image.error.code } : {}) },
        `build ${image.status}${image.error ? `: ${image.error.code}` : ''}`,
      );
    }
  });
}
