import type { EngineEvent } from '../engine/types.js';
import { presentSummary, presentTransition, type ImageSummary, type TransitionView } from './present.js';

/** One Server-Sent Event; `data` is one line of JSON (JSON.stringify never emits raw newlines). */
export function formatEvent(id: number, event: string, data: unknown): string {
  return `id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

export function formatComment(text: string): string {
  return `: ${text.replace(/[\r\n]+/g, ' ')}\n\n`;
}

export interface EventData {
  image: ImageSummary & { phase: string; activity: string; updated: string };
  transition?: TransitionView;
}

/** The payload of an engine event: the image summary (plus phase), and the transition if there is one. */
export function eventData(event: EngineEvent, baseUrl: string): EventData {
  const image = { ...presentSummary(event.image, baseUrl), phase: event.image.phase, activity: event.image.activity, updated: event.image.updated };
  return event.type === 'transition' ? { image, transition: presentTransition(event.transition) } : { image };
}
