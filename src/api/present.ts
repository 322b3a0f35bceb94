import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { ImageRecord, TransitionRecord } from '../model/index.js';
import { BASE_PATH, KIND_NAMES } from './paths.js';
import { maskRootpw, redactParameters, redactUrlPassword } from './redact.js';

/** How images look over REST: the original field names plus this project's extensions. */

export interface ImageSummary {
  _type: string;
  id: string;
  href: string;
  status: string;
  percent_complete: number;
}

export interface StatusDetail {
  activity: string;
  error: string | null;
  error_code: string | null;
  error_details: Record<string, unknown> | null;
}

export interface ImageDetail extends ImageSummary {
  status_detail: StatusDetail;
  template: string | null;
  icicle: string | null;
  parameters: Record<string, unknown>;
  properties: Record<string, unknown>;
  base_image_id?: string | null;
  target_image_id?: string | null;
  target?: string | null;
  provider?: string | null;
  identifier_on_provider?: string | null;
  provider_account_identifier?: string | null;
  phase: string;
  created: string;
  updated: string;
  transitions_href: string;
}

export interface TransitionView {
  from: string | null;
  to: string;
  event: string;
  at: string;
}

/** `http://host:port` as the client reached us, for absolute hrefs like the original's. */
export function requestBaseUrl(req: IncomingMessage): string {
  const scheme = (req.socket as TLSSocket).encrypted ? 'https' : 'http';
  const host = req.headers.host;
  if (host && /^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(host)) return `${scheme}://${host}`;
  const addr = req.socket.localAddress ?? '127.0.0.1';
  return `${scheme}://${addr.includes(':') ? `[${addr}]` : addr}:${req.socket.localPort ?? 80}`;
}

/** The canonical (flat) href of an image, whatever path it was reached by. */
export function imageHref(image: ImageRecord, baseUrl: string): string {
  return `${baseUrl}${BASE_PATH}/${KIND_NAMES[image.kind].collection}/${image.id}`;
}

export function presentSummary(image: ImageRecord, baseUrl: string): ImageSummary {
  return {
    _type: image.kind,
    id: image.id,
    href: imageHref(image, baseUrl),
    status: image.status,
    percent_complete: image.percentComplete,
  };
}

export function presentImage(image: ImageRecord, baseUrl: string): ImageDetail {
  const href = imageHref(image, baseUrl);
  const detail: ImageDetail = {
    ...presentSummary(image, baseUrl),
    status_detail: {
      activity: image.activity,
      // An error may quote a URL or a command's output: URL passwords and secret-named fields are masked there too.
      error: image.error ? redactUrlPassword(image.error.message) : null,
      error_code: image.error?.code ?? null,
      error_details: image.error?.details ? redactParameters(image.error.details) : null,
    },
    template: image.template === null ? null : maskRootpw(image.template),
    icicle: image.icicle,
    parameters: redactParameters(image.parameters),
    properties: image.properties,
    phase: image.phase,
    created: image.created,
    updated: image.updated,
    transitions_href: `${href}/transitions`,
  };
  if (image.kind === 'TargetImage') {
    detail.base_image_id = image.baseImageId;
    detail.target = image.target;
  }
  if (image.kind === 'ProviderImage') {
    detail.target_image_id = image.targetImageId;
    detail.target = image.target;
    detail.provider = image.provider;
    detail.identifier_on_provider = image.identifierOnProvider;
    detail.provider_account_identifier = image.providerAccountIdentifier;
  }
  return detail;
}

/** `{"base_image": {...}}` and its siblings. */
export function wrapImage(image: ImageRecord, body: unknown): Record<string, unknown> {
  return { [KIND_NAMES[image.kind].singular]: body };
}

export function presentTransition(t: TransitionRecord): TransitionView {
  return { from: t.from, to: t.to, event: t.event, at: t.at };
}
