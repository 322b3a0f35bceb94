import { EXIT } from '../client/exit.js';
import { imagePath, type ImageDetail, type Kind } from '../client/images.js';
import { createProgress, formatElapsed } from '../client/progress.js';
import { follow, stateOf } from '../client/watch.js';
import type { Context } from './context.js';

export interface WaitOptions {
  /** Submitted builds: the first Ctrl-C cancels the build; `watch`: Ctrl-C only stops watching. */
  cancelOnInterrupt: boolean;
  /** When the wait began (ms since the epoch); by default the image's `created`. */
  startedAt?: number;
}

/**
 * Shows the image's progress until its status is final, then prints the
 * result: the id (or, with `--output json`, the image) on stdout, and for
 * anything but COMPLETE the status and error on stderr. 0 on COMPLETE, 1
 * otherwise.
 */
export async function waitForImage(ctx: Context, kind: Kind, image: ImageDetail, opts: WaitOptions): Promise<number> {
  const { io } = ctx;
  const startedAt = opts.startedAt ?? startOf(image);
  const progress = createProgress(io.err, { startedAt });
  let interrupts = 0;
  const onInterrupt = () => {
    interrupts++;
    if (!opts.cancelOnInterrupt || interrupts > 1) {
      progress.done();
      io.err.write(`imagefactory: stopped waiting; ${kind.label} ${image.id} is left as it is\n`);
      ctx.exit(EXIT.interrupted);
      return;
    }
    progress.note(`imagefactory: cancelling ${kind.label} ${image.id} (Ctrl-C again to stop waiting without cancelling)`);
    ctx.client.json('POST', `${imagePath(kind, image.id)}/cancel`).then(
      () => progress.note(`imagefactory: the daemon is cancelling ${kind.label} ${image.id}; waiting for the build to stop`),
      (e: Error) => progress.note(`imagefactory: could not cancel ${kind.label} ${image.id}: ${e.message}`),
    );
  };
  process.on('SIGINT', onInterrupt);
  let final: ImageDetail;
  try {
    progress.update(stateOf(image));
    final = await follow({ client: ctx.client, kind, id: image.id, onUpdate: (s) => progress.update(s), onNote: (line) => progress.note(line) });
  } finally {
    process.off('SIGINT', onInterrupt);
    progress.done();
  }
  io.out.write(ctx.json ? JSON.stringify(final, null, 2) + '\n' : `${final.id}\n`);
  const took = formatElapsed(Date.now() - startedAt);
  if (final.status === 'COMPLETE') {
    if (!ctx.json) io.err.write(`imagefactory: ${kind.label} ${final.id} COMPLETE in ${took}\n`);
    return EXIT.ok;
  }
  const error = final.status_detail?.error;
  io.err.write(`imagefactory: image ${final.id} ${final.status}${error ? `: ${error}` : ''}\n`);
  return EXIT.failed;
}

/** The image's creation time, or now when it is missing or ahead of this machine's clock. */
function startOf(image: ImageDetail): number {
  const created = typeof image.created === 'string' ? Date.parse(image.created) : NaN;
  const now = Date.now();
  return Number.isFinite(created) && created <= now ? created : now;
}
