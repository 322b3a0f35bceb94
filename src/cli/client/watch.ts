import type { IncomingMessage } from 'node:http';
import { Client, ClientError } from './http.js';
import { FINAL_STATUSES, getImage, type ImageDetail, type Kind } from './images.js';
import type { ProgressState } from './progress.js';
import { SseParser } from './sse.js';

/**
 * Follows one image until its status is final, reporting each change:
 * through the daemon's event stream (`GET /imagefactory/events?id=ID`), with
 * a GET now and then in case an event was lost; when the stream cannot be
 * opened or breaks, by polling the image every second instead.
 */

export interface FollowOptions {
  client: Client;
  kind: Kind;
  id: string;
  onUpdate: (state: ProgressState) => void;
  /** Told when the client changes how it follows (stream lost, daemon unreachable). */
  onNote?: (line: string) => void;
  /** Interval of polling when there is no event stream; 1 s. */
  pollMs?: number;
  /** Interval of the safety GET while the stream is open; 5 s. */
  checkMs?: number;
  /** How long polling keeps trying an unreachable daemon before giving up; 60 s. */
  maxUnreachableMs?: number;
  /** false: poll from the start. */
  useEvents?: boolean;
}

export function stateOf(image: Pick<ImageDetail, 'status' | 'phase' | 'percent_complete' | 'status_detail'>): ProgressState {
  return { status: image.status, phase: image.phase ?? '', activity: image.status_detail?.activity ?? '', percent: image.percent_complete ?? 0 };
}

/** Resolves with the image's final detail; rejects with a `ClientError` (e.g. the image was removed). */
export async function follow(o: FollowOptions): Promise<ImageDetail> {
  const reporter = new Reporter(o.onUpdate);
  if (o.useEvents !== false) {
    const result = await followEvents(o, reporter);
    if (result !== 'lost') return result;
  }
  return poll(o, reporter);
}

/** Passes on states in order: a GET answer older than the last event seen is dropped. */
class Reporter {
  private lastUpdated = '';
  constructor(private readonly onUpdate: (s: ProgressState) => void) {}

  report(state: ProgressState, updated: unknown): void {
    if (typeof updated === 'string') {
      if (updated < this.lastUpdated) return;
      this.lastUpdated = updated;
    }
    this.onUpdate(state);
  }
}

async function followEvents(o: FollowOptions, reporter: Reporter): Promise<ImageDetail | 'lost'> {
  let res: IncomingMessage;
  try {
    res = await o.client.stream(`/imagefactory/events?id=${encodeURIComponent(o.id)}`, 'text/event-stream');
  } catch (e) {
    if (e instanceof ClientError && e.code === 'image_not_found') throw e;
    o.onNote?.(`imagefactory: no event stream (${(e as Error).message}); polling every ${Math.round((o.pollMs ?? 1000) / 1000)} s`);
    return 'lost';
  }
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (outcome: ImageDetail | 'lost' | Error) => {
      if (settled) return;
      settled = true;
      clearInterval(timer);
      res.destroy();
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    // The subscription is live once the stream answered: a GET now cannot miss a change.
    const check = async () => {
      try {
        const image = await getImage(o.client, o.kind, o.id);
        if (settled) return;
        reporter.report(stateOf(image), image.updated);
        if (FINAL_STATUSES.has(image.status)) finish(image);
      } catch (e) {
        if (e instanceof ClientError && e.status === 404) finish(e);
        // Anything else: the stream (or the next check) will tell.
      }
    };
    const timer = setInterval(() => void check(), o.checkMs ?? 5000);
    const parser = new SseParser();
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      for (const ev of parser.push(chunk)) {
        if (settled) return;
        if (ev.event === 'deleted') {
          void check();
          continue;
        }
        let image: { status?: unknown; phase?: unknown; activity?: unknown; percent_complete?: unknown; updated?: unknown } | undefined;
        try {
          image = (JSON.parse(ev.data) as { image?: typeof image }).image;
        } catch {
          continue;
        }
        if (!image || typeof image.status !== 'string') continue;
        reporter.report(
          { status: image.status, phase: String(image.phase ?? ''), activity: String(image.activity ?? ''), percent: Number(image.percent_complete ?? 0) },
          image.updated,
        );
        // The event has the summary; the final answer (status_detail.error…) comes from a GET.
        if (FINAL_STATUSES.has(image.status)) void check();
      }
    });
    const lost = () => {
      if (settled) return;
      o.onNote?.(`imagefactory: the event stream ended; polling every ${Math.round((o.pollMs ?? 1000) / 1000)} s`);
      finish('lost');
    };
    res.on('end', lost);
    res.on('close', lost);
    res.on('error', lost);
    void check();
  });
}

async function poll(o: FollowOptions, reporter: Reporter): Promise<ImageDetail> {
  const pollMs = o.pollMs ?? 1000;
  const maxUnreachableMs = o.maxUnreachableMs ?? 60_000;
  let unreachableSince: number | undefined;
  for (;;) {
    try {
      const image = await getImage(o.client, o.kind, o.id);
      if (unreachableSince !== undefined) o.onNote?.('imagefactory: the daemon answers again');
      unreachableSince = undefined;
      reporter.report(stateOf(image), image.updated);
      if (FINAL_STATUSES.has(image.status)) return image;
    } catch (e) {
      if (!(e instanceof ClientError && e.code === 'unreachable')) throw e;
      if (unreachableSince === undefined) {
        unreachableSince = Date.now();
        o.onNote?.(`${e.message}; retrying for ${Math.round(maxUnreachableMs / 1000)} s`);
      } else if (Date.now() - unreachableSince > maxUnreachableMs) throw e;
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
