/**
 * The inspector page's one script, served by the daemon as
 * `/inspector/assets/inspector.js` (compiled from this file; it runs in the
 * browser, not in the daemon). It lists builds, draws the selected build's
 * machine from `…/:id/machine` with Graphviz (viz.js, also served by the
 * daemon) and follows it live over `/imagefactory/events`. No framework and
 * no external origin: everything comes from the daemon that served the page.
 *
 * The first half is pure (machine definition → drawing model → DOT) and is
 * exported so tests pin what is drawn; the DOM half starts only on the page.
 */

import { queryParams, signatureBaseString, signingKey, type Param } from '../auth/signature-base.js';

// ---- machine definition → DOT ----------------------------------------------

/** A transition as `machine.toJSON()` writes it. */
export interface TransitionJson {
  target?: readonly string[] | null;
  eventType: string;
  guard?: { type?: string } | string | null;
}

/** A state node as `machine.toJSON()` writes it (the root included). */
export interface StateNodeJson {
  id: string;
  key: string;
  type?: string;
  initial?: { target?: readonly string[] } | null;
  states?: Record<string, StateNodeJson>;
  transitions?: readonly TransitionJson[];
  always?: readonly TransitionJson[];
  meta?: { status?: string; activity?: string } | null;
}

export interface DrawnState {
  /** The state's name as the engine reports it (`installing`, or `parent.child` when nested). */
  name: string;
  /** The DOM id of its node in the SVG. */
  domId: string;
  label: string;
  final: boolean;
  /** The image status the state stands for (`meta.status`), if any. */
  status: string | null;
  /** The names of the enclosing compound states, outermost first. */
  parents: string[];
  compound: boolean;
}

export interface DrawnEdge {
  from: string;
  to: string;
  domId: string;
  /** Every event that takes this edge, raw (`xstate.done.actor.step`). */
  events: string[];
  /** The events as drawn (`done: step`), with guards. */
  labels: string[];
}

export interface MachineDrawing {
  initial: string | null;
  states: DrawnState[];
  edges: DrawnEdge[];
  dot: string;
}

/** The name under which a state node is drawn and reported: its id without the machine's own id. */
function stateName(rootId: string, id: string): string {
  return id.startsWith(`${rootId}.`) ? id.slice(rootId.length + 1) : id;
}

/** How an event is written on an edge: XState's internal event names shortened, the rest as sent. */
export function eventLabel(eventType: string): string {
  if (eventType === '') return 'always';
  if (eventType === '*') return 'any event';
  let m = /^xstate\.done\.actor\.(.+)$/.exec(eventType);
  if (m) return `done: ${m[1]}`;
  m = /^xstate\.error\.actor\.(.+)$/.exec(eventType);
  if (m) return `error: ${m[1]}`;
  m = /^xstate\.after\.([^.]+)\./.exec(eventType);
  if (m) return /^\d+$/.test(m[1]!) ? `after ${m[1]} ms` : `after ${m[1]}`;
  m = /^xstate\.done\.state\.(.+)$/.exec(eventType);
  if (m) return `done: ${m[1]}`;
  return eventType;
}

function guardName(t: TransitionJson): string | null {
  if (!t.guard) return null;
  return typeof t.guard === 'string' ? t.guard : (t.guard.type ?? 'guard');
}

/** A DOT double-quoted string. */
function q(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\r?\n/g, '\\n')}"`;
}

const FONT = 'Helvetica,Arial,sans-serif';

/**
 * Lays a machine definition out as a drawing model and its DOT text: one node
 * per atomic state (compound states become clusters), one edge per pair of
 * states with every event that leads from one to the other on its label, and
 * DOM ids that the page uses to highlight states and taken edges.
 */
export function drawMachine(definition: StateNodeJson, opts: { rankdir?: 'TB' | 'LR' } = {}): MachineDrawing {
  const rootId = definition.id;
  const byId = new Map<string, StateNodeJson>();
  const states: DrawnState[] = [];
  const stateByName = new Map<string, DrawnState>();

  const walk = (node: StateNodeJson, parents: string[]) => {
    for (const child of Object.values(node.states ?? {})) {
      byId.set(child.id, child);
      const name = stateName(rootId, child.id);
      const compound = Object.keys(child.states ?? {}).length > 0;
      const drawn: DrawnState = {
        name,
        domId: `state-${states.length}`,
        label: child.key,
        final: child.type === 'final',
        status: child.meta?.status ?? null,
        parents,
        compound,
      };
      states.push(drawn);
      stateByName.set(name, drawn);
      if (compound) walk(child, [...parents, name]);
    }
  };
  byId.set(rootId, definition);
  walk(definition, []);

  /** A target as written (`#build.queued`) → the node it names. */
  const resolve = (target: string): StateNodeJson | undefined => {
    const id = target.startsWith('#') ? target.slice(1) : target;
    return byId.get(id) ?? byId.get(`${rootId}.${id}`);
  };
  /** An edge into a compound state ends at the atomic state it enters first. */
  const entryLeaf = (node: StateNodeJson): StateNodeJson => {
    const children = Object.values(node.states ?? {});
    if (children.length === 0) return node;
    const initial = node.initial?.target?.[0];
    const first = (initial ? resolve(initial) : undefined) ?? children[0]!;
    return entryLeaf(first);
  };
  const leafName = (node: StateNodeJson) => stateName(rootId, entryLeaf(node).id);

  const rootInitial = definition.initial?.target?.[0];
  const initialNode = rootInitial ? resolve(rootInitial) : Object.values(definition.states ?? {})[0];
  const initial = initialNode ? leafName(initialNode) : null;

  // Edges grouped by (from, to), in definition order.
  const edges: DrawnEdge[] = [];
  const edgeByPair = new Map<string, DrawnEdge & { lhead?: string; ltail?: string }>();
  const ANY = '*';
  const addEdge = (source: StateNodeJson, t: TransitionJson) => {
    const fromCompound = source !== definition && Object.keys(source.states ?? {}).length > 0;
    const from = source === definition ? ANY : leafName(source);
    const targets = t.target && t.target.length > 0 ? t.target.map(resolve).filter((n): n is StateNodeJson => n !== undefined) : [source];
    for (const targetNode of targets) {
      const to = targetNode === definition ? (initial ?? ANY) : leafName(targetNode);
      const toCompound = targetNode !== definition && Object.keys(targetNode.states ?? {}).length > 0;
      const key = `${from}\u0000${to}`;
      let edge = edgeByPair.get(key);
      if (!edge) {
        edge = {
          from,
          to,
          domId: `edge-${edges.length}`,
          events: [],
          labels: [],
          ...(fromCompound ? { ltail: stateName(rootId, source.id) } : {}),
          ...(toCompound ? { lhead: stateName(rootId, targetNode.id) } : {}),
        };
        edgeByPair.set(key, edge);
        edges.push(edge);
      }
      const guard = guardName(t);
      edge.events.push(t.eventType);
      edge.labels.push(eventLabel(t.eventType) + (guard ? ` [${guard}]` : ''));
    }
  };
  for (const node of byId.values()) {
    for (const t of node.transitions ?? []) addEdge(node, t);
    for (const t of node.always ?? []) addEdge(node, { ...t, eventType: '' });
  }

  // DOT: clusters for compound states, nodes for the others.
  const lines: string[] = [];
  lines.push('digraph machine {');
  lines.push(`  graph [rankdir=${opts.rankdir ?? 'TB'}, compound=true, nodesep=0.3, ranksep=0.42, fontname=${q(FONT)}, bgcolor="transparent", pad=0.15];`);
  lines.push(`  node [shape=box, style="rounded,filled", fillcolor="#ffffff", color="#7b8598", fontcolor="#1f2933", fontname=${q(FONT)}, fontsize=12, height=0.34, margin="0.16,0.05", penwidth=1.2];`);
  lines.push(`  edge [fontname=${q(FONT)}, fontsize=9, color="#a0a8b6", fontcolor="#52606d", arrowsize=0.6, penwidth=1];`);
  if (initial !== null) {
    lines.push(`  "__initial" [shape=point, width=0.11, color="#52606d", fillcolor="#52606d", label=""];`);
    lines.push(`  "__initial" -> ${q(initial)} [color="#52606d"];`);
  }
  if (edges.some((e) => e.from === ANY)) lines.push(`  ${q(ANY)} [label="any state", shape=plaintext, style=""];`);

  const emitStates = (parents: string[], indent: string) => {
    for (const s of states.filter((x) => x.parents.join('\u0000') === parents.join('\u0000'))) {
      if (s.compound) {
        lines.push(`${indent}subgraph ${q(`cluster_${s.name}`)} {`);
        lines.push(`${indent}  id=${q(s.domId)}; label=${q(s.label)}; style="rounded"; color="#7b8598"; fontsize=11;`);
        emitStates([...parents, s.name], `${indent}  `);
        lines.push(`${indent}}`);
        continue;
      }
      const attrs = [`id=${q(s.domId)}`, `label=${q(s.label)}`, `tooltip=${q(s.status ? `${s.name} (${s.status})` : s.name)}`];
      if (s.status) attrs.push(`class=${q(`st-${s.status.toLowerCase()}`)}`);
      if (s.final) attrs.push('peripheries=2');
      lines.push(`${indent}${q(s.name)} [${attrs.join(', ')}];`);
    }
  };
  emitStates([], '  ');

  for (const e of edgeByPair.values()) {
    const attrs = [`id=${q(e.domId)}`, `label=${q(e.labels.join('\n'))}`, `tooltip=${q(e.events.join('\n'))}`];
    if (e.ltail) attrs.push(`ltail=${q(`cluster_${e.ltail}`)}`);
    if (e.lhead) attrs.push(`lhead=${q(`cluster_${e.lhead}`)}`);
    if (e.from === e.to && e.events.every((ev) => ev !== '')) attrs.push('style=dashed');
    lines.push(`  ${q(e.from)} -> ${q(e.to)} [${attrs.join(', ')}];`);
  }
  lines.push('}');

  return {
    initial,
    states,
    edges: edges.map(({ from, to, domId, events, labels }) => ({ from, to, domId, events, labels })),
    dot: lines.join('\n'),
  };
}

// ---- the page --------------------------------------------------------------

const API = '/imagefactory';
const VIZ_URL = '/inspector/assets/viz.js';
const LOG_TAIL_BYTES = 48 * 1024;
const LOG_TAIL_LINES = 250;
const DETAIL_CONCURRENCY = 4;

type Kind = 'BaseImage' | 'TargetImage' | 'ProviderImage';
const COLLECTION: Record<Kind, string> = { BaseImage: 'base_images', TargetImage: 'target_images', ProviderImage: 'provider_images' };
const SINGULAR: Record<Kind, string> = { BaseImage: 'base_image', TargetImage: 'target_image', ProviderImage: 'provider_image' };
const KIND_OF_COLLECTION: Record<string, Kind> = { base_images: 'BaseImage', target_images: 'TargetImage', provider_images: 'ProviderImage' };
const KIND_LABEL: Record<Kind, string> = { BaseImage: 'base', TargetImage: 'target', ProviderImage: 'provider' };
const FINAL_STATUSES = new Set(['COMPLETE', 'FAILED', 'CANCELLED', 'DELETED', 'DELETEFAILED']);

interface Transition {
  from: string | null;
  to: string;
  event: string;
  at: string;
}

interface Entry {
  id: string;
  kind: Kind;
  status: string;
  percent: number;
  phase: string | null;
  activity: string | null;
  created: string | null;
  updated: string | null;
  /** The base image of a target, the target image of a provider image. */
  parentId: string | null;
  error: string | null;
  errorCode: string | null;
}

interface ImageDetailJson {
  _type: Kind;
  id: string;
  status: string;
  percent_complete: number;
  phase: string;
  created: string;
  updated: string;
  status_detail: { activity: string; error: string | null; error_code?: string | null };
  base_image_id?: string | null;
  target_image_id?: string | null;
  target?: string | null;
  provider?: string | null;
}

interface EventJson {
  image: { _type: Kind; id: string; status: string; percent_complete: number; phase: string; activity: string; updated: string };
  transition?: Transition;
}

interface MachineViewJson {
  definition: StateNodeJson;
  value: string;
  visited: string[];
}

/** The part of viz.js's API the page uses. */
interface Viz {
  renderSVGElement(dot: string): SVGSVGElement;
}

interface Selection {
  id: string;
  kind: Kind;
  abort: AbortController;
  loaded: boolean;
  /** SSE transitions that arrived while the first load was in flight. */
  pending: Transition[];
  transitions: Transition[];
  drawing: MachineDrawing | null;
  svg: SVGSVGElement | null;
  /** Visited states as the machine view reports them (it may know some the transitions do not). */
  visited: Set<string>;
  log: string;
}

function imageUrl(kind: Kind, id: string): string {
  return `${API}/${COLLECTION[kind]}/${encodeURIComponent(id)}`;
}

function pageHash(kind: Kind, id: string): string {
  return `#/${COLLECTION[kind]}/${encodeURIComponent(id)}`;
}

// ---- OAuth in the browser ------------------------------------------------------

/** A consumer key and secret the user typed, kept for this tab only (sessionStorage). */
export interface Credentials {
  key: string;
  secret: string;
  method: 'HMAC-SHA1' | 'HMAC-SHA256';
}

const CREDENTIALS_ITEM = 'imagefactory.inspector.oauth';

function base64(bytes: Uint8Array): string {
  let text = '';
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text);
}

/**
 * The OAuth 1.0a protocol parameters, `oauth_signature` included, for a
 * request of this page (WebCrypto, so only in a secure context: HTTPS or
 * loopback). The base string is built by the same module the daemon checks
 * it with.
 */
export async function signForBrowser(method: string, url: URL, creds: Credentials, at = { timestamp: Math.floor(Date.now() / 1000), nonce: '' }): Promise<Param[]> {
  const nonce = at.nonce || base64(crypto.getRandomValues(new Uint8Array(16))).replace(/[^A-Za-z0-9]/g, '');
  const protocol: Param[] = [
    ['oauth_consumer_key', creds.key],
    ['oauth_nonce', nonce],
    ['oauth_signature_method', creds.method],
    ['oauth_timestamp', String(at.timestamp)],
    ['oauth_version', '1.0'],
  ];
  const encoder = new TextEncoder();
  const key = await crypto.subtle.importKey('raw', encoder.encode(signingKey(creds.secret)), { name: 'HMAC', hash: creds.method === 'HMAC-SHA256' ? 'SHA-256' : 'SHA-1' }, false, ['sign']);
  const base = signatureBaseString(method, url, [...queryParams(url), ...protocol]);
  const signature = new Uint8Array(await crypto.subtle.sign('HMAC', key, encoder.encode(base)));
  return [...protocol, ['oauth_signature', base64(signature)]];
}

/** Raised when the daemon asks for a signature (401): the page shows its sign-in form. */
class NeedsCredentials extends Error {}

let credentials: Credentials | null = null;
let onNeedsCredentials: (message: string, signed: boolean) => void = () => undefined;

function loadCredentials(): void {
  try {
    const saved = JSON.parse(sessionStorage.getItem(CREDENTIALS_ITEM) ?? 'null') as Credentials | null;
    credentials = saved && typeof saved.key === 'string' && typeof saved.secret === 'string' ? saved : null;
  } catch {
    credentials = null;
  }
}

/** `path` (with its query) as an absolute URL whose query carries a fresh signature: for EventSource, which cannot send headers. */
async function signedUrl(path: string): Promise<string> {
  const url = new URL(path, location.href);
  if (!credentials) return url.pathname + url.search;
  for (const [name, value] of await signForBrowser('GET', url, credentials)) url.searchParams.append(name, value);
  return url.pathname + url.search;
}

/** fetch() with an `Authorization: OAuth …` header when the user signed in; a 401 asks for credentials. */
async function apiFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const signedWith = credentials;
  if (signedWith) {
    const url = new URL(path, location.href);
    const params = await signForBrowser(init.method ?? 'GET', url, signedWith);
    headers.set('authorization', `OAuth ${params.map(([n, v]) => `${n}="${encodeURIComponent(v)}"`).join(', ')}`);
  }
  const res = await fetch(path, { ...init, headers });
  if (res.status === 401) {
    let message = 'this daemon needs an OAuth consumer key and secret';
    try {
      const body = (await res.json()) as { error?: { message?: string } };
      if (signedWith && body.error?.message) message = body.error.message;
    } catch {
      // not JSON: keep the general message
    }
    onNeedsCredentials(message, signedWith !== null);
    throw new NeedsCredentials(message);
  }
  return res;
}

async function getJson<T>(url: string, signal?: AbortSignal): Promise<T> {
  const res = await apiFetch(url, { headers: { accept: 'application/json' }, ...(signal ? { signal } : {}) });
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try {
      const body = (await res.json()) as { error?: { message?: string } };
      if (body.error?.message) message = body.error.message;
    } catch {
      // not JSON: keep the status line
    }
    throw new Error(message);
  }
  return (await res.json()) as T;
}

/** `850 ms`, `2.4 s`, `3 min 05 s`, `1 h 02 min`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

function clockTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toLocaleTimeString(undefined, { hour12: false })}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: { className?: string; text?: string; title?: string; href?: string } = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (props.className) node.className = props.className;
  if (props.text !== undefined) node.textContent = props.text;
  if (props.title) node.title = props.title;
  if (props.href && node instanceof HTMLAnchorElement) node.href = props.href;
  node.append(...children);
  return node;
}

function must<T extends HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`the page has no #${id}`);
  return node as T;
}

class Inspector {
  private readonly entries = new Map<string, Entry>();
  private selection: Selection | null = null;
  private readonly drawings = new Map<Kind, { drawing: MachineDrawing; svg: SVGSVGElement }>();
  private readonly viz: Promise<Viz>;
  private listQueued = false;
  private events: EventSource | null = null;
  private wasDisconnected = false;

  private readonly ui = {
    connection: must<HTMLElement>('connection'),
    statusFilter: must<HTMLSelectElement>('filter-status'),
    kindFilter: must<HTMLSelectElement>('filter-kind'),
    list: must<HTMLUListElement>('build-list'),
    listEmpty: must<HTMLElement>('build-list-empty'),
    detailEmpty: must<HTMLElement>('detail-empty'),
    detail: must<HTMLElement>('detail'),
    kind: must<HTMLElement>('d-kind'),
    id: must<HTMLElement>('d-id'),
    status: must<HTMLElement>('d-status'),
    phase: must<HTMLElement>('d-phase'),
    activity: must<HTMLElement>('d-activity'),
    progress: must<HTMLProgressElement>('d-progress'),
    percent: must<HTMLElement>('d-percent'),
    target: must<HTMLElement>('d-target'),
    error: must<HTMLElement>('d-error'),
    links: must<HTMLElement>('d-links'),
    chart: must<HTMLElement>('chart'),
    timeline: must<HTMLTableSectionElement>('timeline-body'),
    log: must<HTMLElement>('log'),
    login: must<HTMLFormElement>('login'),
    loginWhy: must<HTMLElement>('login-why'),
    loginKey: must<HTMLInputElement>('login-key'),
    loginSecret: must<HTMLInputElement>('login-secret'),
    loginMethod: must<HTMLSelectElement>('login-method'),
  };

  constructor() {
    // Graphviz is compiled once, while the list loads.
    this.viz = import(VIZ_URL).then((m: { instance: () => Promise<Viz> }) => m.instance());
    this.viz.catch(() => undefined);
  }

  start(): void {
    loadCredentials();
    onNeedsCredentials = (message, signed) => this.askForCredentials(message, signed);
    this.ui.login.addEventListener('submit', (e) => {
      e.preventDefault();
      credentials = { key: this.ui.loginKey.value.trim(), secret: this.ui.loginSecret.value, method: this.ui.loginMethod.value === 'HMAC-SHA256' ? 'HMAC-SHA256' : 'HMAC-SHA1' };
      sessionStorage.setItem(CREDENTIALS_ITEM, JSON.stringify(credentials));
      this.ui.loginSecret.value = '';
      this.ui.login.hidden = true;
      this.connect();
      void this.loadList().then(() => this.followHash(true));
    });
    this.ui.statusFilter.addEventListener('change', () => this.renderList());
    this.ui.kindFilter.addEventListener('change', () => this.renderList());
    window.addEventListener('hashchange', () => this.followHash());
    // The live duration of the current state.
    setInterval(() => this.tickTimeline(), 1000);
    this.connect();
    void this.loadList().then(() => this.followHash());
  }

  /** Shows the sign-in form (once), stops the event stream, and says why. */
  private askForCredentials(message: string, signed: boolean): void {
    this.events?.close();
    this.events = null;
    this.setConnection('signed-out', 'sign in');
    const insecure = typeof crypto === 'undefined' || !crypto.subtle;
    // Requests in flight when the first refusal came answer too: the reason of a signed one is kept over the general one.
    if (insecure) this.ui.loginWhy.textContent = 'Signing requests needs a secure page (HTTPS, or this host over loopback).';
    else if (signed || this.ui.login.hidden) this.ui.loginWhy.textContent = message;
    if (credentials) {
      credentials = null;
      sessionStorage.removeItem(CREDENTIALS_ITEM);
    }
    this.ui.login.hidden = false;
    this.ui.listEmpty.textContent = 'Sign in to see the builds.';
  }

  // ---- the list ------------------------------------------------------------

  private async loadList(): Promise<void> {
    const lists = await Promise.all(
      (Object.keys(COLLECTION) as Kind[]).map(async (kind) => {
        const body = await getJson<Record<string, Record<string, { id: string; status: string; percent_complete: number }>[]>>(`${API}/${COLLECTION[kind]}`);
        return (body[COLLECTION[kind]] ?? []).map((wrapped) => ({ kind, summary: wrapped[SINGULAR[kind]]! }));
      }),
    ).catch((e: Error) => {
      if (!(e instanceof NeedsCredentials)) this.ui.listEmpty.textContent = `Could not list builds: ${e.message}`;
      return [];
    });
    const seen = new Set<string>();
    for (const { kind, summary } of lists.flat()) {
      seen.add(summary.id);
      const old = this.entries.get(summary.id);
      this.entries.set(summary.id, {
        id: summary.id,
        kind,
        status: summary.status,
        percent: summary.percent_complete,
        phase: old?.phase ?? null,
        activity: old?.activity ?? null,
        created: old?.created ?? null,
        updated: old?.updated ?? null,
        parentId: old?.parentId ?? null,
        error: old?.error ?? null,
        errorCode: old?.errorCode ?? null,
      });
    }
    for (const id of [...this.entries.keys()]) if (!seen.has(id)) this.entries.delete(id);
    this.renderList();
    // Phase, times and parents come with the details, a few requests at a time.
    const queue = [...this.entries.values()];
    await Promise.all(
      Array.from({ length: DETAIL_CONCURRENCY }, async () => {
        for (let entry = queue.shift(); entry; entry = queue.shift()) await this.refreshEntry(entry.kind, entry.id);
      }),
    );
  }

  private async refreshEntry(kind: Kind, id: string): Promise<ImageDetailJson | null> {
    try {
      const body = await getJson<Record<string, ImageDetailJson>>(imageUrl(kind, id));
      const d = body[SINGULAR[kind]]!;
      // An event may have come in while the details were on their way: the newer news wins.
      const old = this.entries.get(id);
      const live = old?.updated && old.updated > d.updated ? old : null;
      this.entries.set(id, {
        id,
        kind,
        status: live?.status ?? d.status,
        percent: live?.percent ?? d.percent_complete,
        phase: live?.phase ?? d.phase,
        activity: live?.activity ?? d.status_detail.activity,
        created: d.created,
        updated: live?.updated ?? d.updated,
        parentId: d.base_image_id && kind === 'TargetImage' ? d.base_image_id : d.target_image_id && kind === 'ProviderImage' ? d.target_image_id : null,
        error: d.status_detail.error,
        errorCode: d.status_detail.error_code ?? null,
      });
      this.scheduleList();
      if (this.selection?.id === id) this.renderHeader(d);
      else if (this.selection && this.entries.get(id)?.parentId === this.selection.id) this.renderLinks();
      return d;
    } catch {
      return null;
    }
  }

  private scheduleList(): void {
    if (this.listQueued) return;
    this.listQueued = true;
    requestAnimationFrame(() => {
      this.listQueued = false;
      this.renderList();
    });
  }

  private renderList(): void {
    const status = this.ui.statusFilter.value;
    const kind = this.ui.kindFilter.value;
    const shown = [...this.entries.values()]
      .filter((e) => (status === '' || (status === 'ACTIVE' ? !FINAL_STATUSES.has(e.status) : e.status === status)) && (kind === '' || e.kind === kind))
      .sort((a, b) => (b.created ?? b.updated ?? '').localeCompare(a.created ?? a.updated ?? ''));
    const rows = shown.map((e) => {
      const a = el('a', { className: 'build', href: pageHash(e.kind, e.id), title: e.id });
      a.dataset.id = e.id;
      if (this.selection?.id === e.id) a.setAttribute('aria-current', 'true');
      const bar = el('span', { className: 'bar' }, el('span', { className: 'fill' }));
      (bar.firstChild as HTMLElement).style.width = `${Math.max(0, Math.min(100, e.percent))}%`;
      a.append(
        el('span', { className: `kind kind-${KIND_LABEL[e.kind]}`, text: KIND_LABEL[e.kind] }),
        el('code', { className: 'short-id', text: e.id.slice(0, 8) }),
        el('span', { className: `status status-${e.status.toLowerCase()}`, text: e.status }),
        el('span', { className: 'phase', text: e.phase ?? '' }),
        bar,
        el('span', { className: 'pct', text: `${e.percent}%` }),
      );
      return el('li', {}, a);
    });
    this.ui.list.replaceChildren(...rows);
    this.ui.listEmpty.hidden = rows.length > 0;
    if (rows.length === 0 && this.entries.size > 0) this.ui.listEmpty.textContent = 'No build matches the filters.';
    else if (rows.length === 0) this.ui.listEmpty.textContent = 'No builds yet. Submit one over the REST API; it appears here at once.';
  }

  // ---- live events ---------------------------------------------------------

  private connect(): void {
    void signedUrl(`${API}/events`).then((url) => this.open(url), () => this.setConnection('reconnecting', 'cannot sign the event stream'));
  }

  private open(url: string): void {
    this.events?.close();
    const events = (this.events = new EventSource(url));
    const handle = (type: string) => (e: MessageEvent<string>) => {
      try {
        this.onEvent(type, JSON.parse(e.data) as EventJson);
      } catch (err) {
        console.error('inspector: a bad event', err);
      }
    };
    events.addEventListener('transition', handle('transition'));
    events.addEventListener('progress', handle('progress'));
    events.addEventListener('deleted', handle('deleted'));
    events.addEventListener('open', () => {
      this.setConnection('live', 'live');
      // Events missed while away are read back from the API.
      if (this.wasDisconnected) {
        this.wasDisconnected = false;
        void this.loadList().then(() => this.followHash(true));
      }
    });
    events.addEventListener('error', () => {
      this.wasDisconnected = true;
      this.setConnection('reconnecting', 'reconnecting…');
      // A signed URL cannot be used twice (its nonce is spent), and a refused stream is not retried by the browser: reconnect with a fresh one.
      if (credentials || events.readyState === EventSource.CLOSED) {
        events.close();
        if (this.events === events) setTimeout(() => this.events === events && this.connect(), 2000);
      }
    });
  }

  private setConnection(state: string, text: string): void {
    this.ui.connection.dataset.state = state;
    this.ui.connection.textContent = text;
  }

  private onEvent(type: string, data: EventJson): void {
    const image = data.image;
    if (type === 'deleted') {
      this.entries.delete(image.id);
      this.scheduleList();
      if (this.selection?.id === image.id) {
        this.ui.status.textContent = 'DELETED';
        this.ui.status.className = 'status status-deleted';
      }
      return;
    }
    const old = this.entries.get(image.id);
    const entry: Entry = {
      id: image.id,
      kind: image._type,
      status: image.status,
      percent: image.percent_complete,
      phase: image.phase,
      activity: image.activity,
      created: old?.created ?? image.updated,
      updated: image.updated,
      parentId: old?.parentId ?? null,
      error: old?.error ?? null,
      errorCode: old?.errorCode ?? null,
    };
    this.entries.set(image.id, entry);
    this.scheduleList();
    // A build seen for the first time: its details tell its parent and creation time.
    if (!old) void this.refreshEntry(entry.kind, entry.id);

    const sel = this.selection;
    if (!sel || sel.id !== image.id) return;
    this.renderStatus(entry);
    if (type === 'transition' && data.transition) {
      if (!sel.loaded) sel.pending.push(data.transition);
      else {
        this.addTransitions(sel, [data.transition]);
        this.highlight();
        this.renderTimeline();
      }
      // The error, the final activity: re-read the details on every change of state.
      void this.refreshEntry(sel.kind, sel.id);
    }
  }

  // ---- selection -----------------------------------------------------------

  private followHash(force = false): void {
    const m = /^#\/(base_images|target_images|provider_images)\/([^/]+)$/.exec(location.hash);
    if (!m) {
      if (this.selection) this.selection.abort.abort();
      this.selection = null;
      this.ui.detail.hidden = true;
      this.ui.detailEmpty.hidden = false;
      this.renderList();
      return;
    }
    const kind = KIND_OF_COLLECTION[m[1]!]!;
    const id = decodeURIComponent(m[2]!);
    if (!force && this.selection?.id === id) return;
    void this.select(kind, id);
  }

  private async select(kind: Kind, id: string): Promise<void> {
    this.selection?.abort.abort();
    const sel: Selection = { id, kind, abort: new AbortController(), loaded: false, pending: [], transitions: [], drawing: null, svg: null, visited: new Set(), log: '' };
    this.selection = sel;
    const { signal } = sel.abort;
    this.ui.detailEmpty.hidden = true;
    this.ui.detail.hidden = false;
    this.ui.detail.dataset.id = id;
    this.ui.kind.textContent = `${KIND_LABEL[kind]} image`;
    this.ui.kind.className = `kind kind-${KIND_LABEL[kind]}`;
    this.ui.id.textContent = id;
    this.ui.error.hidden = true;
    this.ui.links.replaceChildren();
    this.ui.timeline.replaceChildren();
    this.ui.log.textContent = '';
    this.ui.chart.replaceChildren(el('p', { className: 'muted', text: 'Drawing the machine…' }));
    this.renderList();

    const url = imageUrl(kind, id);
    try {
      const [detailBody, machine, transitions] = await Promise.all([
        getJson<Record<string, ImageDetailJson>>(url, signal),
        getJson<MachineViewJson>(`${url}/machine`, signal),
        getJson<Transition[]>(`${url}/transitions`, signal),
      ]);
      if (this.selection !== sel) return;
      const detail = detailBody[SINGULAR[kind]]!;
      this.renderHeader(detail);
      this.addTransitions(sel, transitions);
      this.addTransitions(sel, sel.pending.splice(0));
      sel.loaded = true;
      this.renderTimeline();
      void this.followLog(sel, `${url}/log?follow=1`);
      void this.loadChildren(sel);
      await this.drawChart(sel, kind, machine);
    } catch (e) {
      if (signal.aborted) return;
      this.ui.chart.replaceChildren(el('p', { className: 'error', text: `Could not load ${KIND_LABEL[kind]} image ${id}: ${(e as Error).message}` }));
    }
  }

  /** Adds transitions not seen yet (an SSE event may repeat one already read), oldest first. */
  private addTransitions(sel: Selection, list: Transition[]): void {
    const key = (t: Transition) => `${t.at}\u0000${t.from ?? ''}\u0000${t.to}`;
    const seen = new Set(sel.transitions.map(key));
    for (const t of list) if (!seen.has(key(t))) sel.transitions.push(t);
    sel.transitions.sort((a, b) => a.at.localeCompare(b.at));
  }

  private async loadChildren(sel: Selection): Promise<void> {
    const child: Kind | null = sel.kind === 'BaseImage' ? 'TargetImage' : sel.kind === 'TargetImage' ? 'ProviderImage' : null;
    if (child) {
      try {
        const body = await getJson<Record<string, Record<string, { id: string }>[]>>(`${imageUrl(sel.kind, sel.id)}/${COLLECTION[child]}`, sel.abort.signal);
        for (const wrapped of body[COLLECTION[child]] ?? []) {
          const c = wrapped[SINGULAR[child]]!;
          const known = this.entries.get(c.id);
          if (!known || known.parentId !== sel.id) await this.refreshEntry(child, c.id);
        }
      } catch {
        // the links show what the list knows
      }
    }
    if (this.selection === sel) this.renderLinks();
  }

  // ---- the selected build --------------------------------------------------

  private renderHeader(d: ImageDetailJson): void {
    const entry = this.entries.get(d.id);
    if (entry) this.renderStatus(entry);
    const err = d.status_detail.error;
    this.ui.error.hidden = !err;
    this.ui.error.textContent = err ? `${d.status_detail.error_code ? `${d.status_detail.error_code}: ` : ''}${err}` : '';
    const where = [d.target ? `target ${d.target}` : '', d.provider ? `provider ${d.provider.length > 60 ? `${d.provider.slice(0, 57)}…` : d.provider}` : '', d.created ? `created ${new Date(d.created).toLocaleString()}` : '']
      .filter(Boolean)
      .join(' · ');
    this.ui.target.textContent = where;
    this.renderLinks();
  }

  private renderStatus(e: Entry): void {
    this.ui.status.textContent = e.status;
    this.ui.status.className = `status status-${e.status.toLowerCase()}`;
    this.ui.phase.textContent = e.phase ?? '';
    this.ui.activity.textContent = e.activity ?? '';
    this.ui.progress.value = e.percent;
    this.ui.percent.textContent = `${e.percent}%`;
    if (e.phase && this.selection?.id === e.id) {
      this.ui.chart.dataset.current = e.phase;
      this.highlight();
    }
  }

  /** The parent and the children of the selected build, as links. */
  private renderLinks(): void {
    const sel = this.selection;
    if (!sel) return;
    const entry = this.entries.get(sel.id);
    const items: HTMLElement[] = [];
    const link = (e: Entry | { id: string; kind: Kind; status?: string }, rel: string) => {
      const a = el('a', { href: pageHash(e.kind, e.id), className: `link-${rel}`, title: e.id }, el('span', { className: `kind kind-${KIND_LABEL[e.kind]}`, text: KIND_LABEL[e.kind] }), el('code', { text: e.id.slice(0, 8) }));
      a.dataset.id = e.id;
      if ('status' in e && e.status) a.append(el('span', { className: `status status-${e.status.toLowerCase()}`, text: e.status }));
      return a;
    };
    if (entry?.parentId) {
      const parentKind: Kind = sel.kind === 'TargetImage' ? 'BaseImage' : 'TargetImage';
      const parent = this.entries.get(entry.parentId) ?? { id: entry.parentId, kind: parentKind };
      items.push(el('span', { className: 'rel', text: `built from ${KIND_LABEL[parentKind]} image` }), link(parent, 'parent'));
    }
    const children = [...this.entries.values()].filter((c) => c.parentId === sel.id);
    if (children.length) {
      items.push(el('span', { className: 'rel', text: sel.kind === 'BaseImage' ? 'target images built from it' : 'provider images built from it' }));
      for (const c of children) items.push(link(c, 'child'));
    }
    this.ui.links.replaceChildren(...items);
    this.ui.links.hidden = items.length === 0;
  }

  private async drawChart(sel: Selection, kind: Kind, machine: MachineViewJson): Promise<void> {
    let viz: Viz;
    try {
      viz = await this.viz;
    } catch (e) {
      this.ui.chart.replaceChildren(el('p', { className: 'error', text: `Graphviz did not load: ${(e as Error).message}` }));
      return;
    }
    if (this.selection !== sel) return;
    // Every build of a kind runs the same machine: it is laid out once.
    let cached = this.drawings.get(kind);
    if (!cached) {
      const drawing = drawMachine(machine.definition);
      const svg = viz.renderSVGElement(drawing.dot);
      svg.removeAttribute('width');
      svg.removeAttribute('height');
      svg.setAttribute('role', 'img');
      svg.setAttribute('aria-label', `the ${KIND_LABEL[kind]} image build machine`);
      cached = { drawing, svg };
      this.drawings.set(kind, cached);
    }
    sel.drawing = cached.drawing;
    sel.svg = cached.svg.cloneNode(true) as SVGSVGElement;
    this.ui.chart.replaceChildren(sel.svg);
    sel.visited = new Set(machine.visited);
    this.highlight();
  }

  /** Marks the current state, the visited states and the edges taken. */
  private highlight(): void {
    const sel = this.selection;
    if (!sel?.svg || !sel.drawing) return;
    const current = this.entries.get(sel.id)?.phase ?? sel.transitions[sel.transitions.length - 1]?.to ?? null;
    const visited = new Set([...sel.visited, ...sel.transitions.map((t) => t.to)]);
    const taken = new Set(sel.transitions.filter((t) => t.from !== null).map((t) => `${t.from}\u0000${t.to}`));
    for (const s of sel.drawing.states) {
      const node = sel.svg.getElementById(s.domId);
      if (!node) continue;
      node.classList.toggle('current', s.name === current);
      node.classList.toggle('visited', visited.has(s.name) && s.name !== current);
    }
    for (const e of sel.drawing.edges) {
      const node = sel.svg.getElementById(e.domId);
      node?.classList.toggle('taken', taken.has(`${e.from}\u0000${e.to}`));
    }
    if (current) this.ui.chart.dataset.current = current;
  }

  private renderTimeline(): void {
    const sel = this.selection;
    if (!sel?.loaded) return;
    const list = sel.transitions;
    const entry = this.entries.get(sel.id);
    const final = entry ? FINAL_STATUSES.has(entry.status) : false;
    const rows = list.map((t, i) => {
      const next = list[i + 1];
      const start = Date.parse(t.at);
      const isLast = next === undefined;
      const spent = next ? Date.parse(next.at) - start : final ? NaN : Date.now() - start;
      const tr = el(
        'tr',
        { className: isLast ? 'last' : '' },
        el('td', { className: 'num', text: String(i + 1) }),
        el('td', {}, el('span', { className: 'from', text: t.from ?? '(start)' }), ' → ', el('strong', { text: t.to })),
        el('td', { className: 'event', text: t.event ? eventLabel(t.event) : '', title: t.event }),
        el('td', { className: 'at', text: clockTime(t.at), title: t.at }),
        el('td', { className: `dur${isLast && !final ? ' running' : ''}`, text: Number.isNaN(spent) ? '' : formatDuration(spent) }),
      );
      return tr;
    });
    this.ui.timeline.replaceChildren(...rows);
  }

  /** Counts up the time spent in the current state, and nothing else. */
  private tickTimeline(): void {
    const sel = this.selection;
    const last = sel?.transitions[sel.transitions.length - 1];
    const cell = this.ui.timeline.querySelector<HTMLElement>('tr.last td.dur.running');
    if (!sel?.loaded || !last || !cell) return;
    cell.textContent = formatDuration(Date.now() - Date.parse(last.at));
  }

  /** The tail of the build log, streamed while the build runs. */
  private async followLog(sel: Selection, url: string): Promise<void> {
    try {
      const res = await apiFetch(url, { signal: sel.abort.signal, headers: { accept: 'text/plain' } });
      if (!res.ok || !res.body) throw new Error(`${res.status} ${res.statusText}`);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done || this.selection !== sel) break;
        sel.log = (sel.log + value).slice(-LOG_TAIL_BYTES);
        this.renderLog(sel);
      }
    } catch (e) {
      if (!sel.abort.signal.aborted && this.selection === sel) this.ui.log.textContent = `${sel.log}\n(the log could not be read: ${(e as Error).message})`;
    }
  }

  private renderLog(sel: Selection): void {
    const box = this.ui.log;
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 24;
    box.textContent = sel.log.split('\n').slice(-LOG_TAIL_LINES).join('\n');
    if (atBottom) box.scrollTop = box.scrollHeight;
  }
}

if (typeof document !== 'undefined' && document.getElementById('inspector-app')) {
  new Inspector().start();
}
