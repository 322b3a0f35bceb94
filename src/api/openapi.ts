import { INSPECTOR_ASSETS, INSPECTOR_CSP } from './inspector/assets.js';
import { METRICS_PATH } from './routes/metrics.js';
import { COLLECTION_LOCATIONS, IMAGE_LOCATIONS, KIND_NAMES, BASE_PATH, toOpenApiPath } from './paths.js';
import type { ImageKind } from '../model/index.js';
import { STATUSES } from '../model/index.js';

/** The part of OpenAPI 3.0 this document uses, typed so a typo is a compile error. */
export interface Schema {
  $ref?: string;
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  format?: string;
  description?: string;
  nullable?: boolean;
  enum?: readonly (string | number)[];
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  items?: Schema;
  oneOf?: Schema[];
  allOf?: Schema[];
  minimum?: number;
  maximum?: number;
  example?: unknown;
}
export interface MediaTypeObject {
  schema: Schema;
}
export interface ResponseObject {
  description: string;
  headers?: Record<string, { description: string; schema: Schema }>;
  content?: Record<string, MediaTypeObject>;
}
export interface ParameterObject {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  description?: string;
  schema: Schema;
}
export interface Operation {
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  parameters?: ParameterObject[];
  requestBody?: { required?: boolean; description?: string; content: Record<string, MediaTypeObject> };
  responses: Record<string, ResponseObject | { $ref: string }>;
}
export interface PathItem {
  get?: Operation;
  post?: Operation;
  delete?: Operation;
}
export interface OpenApiDocument {
  openapi: '3.0.3';
  info: { title: string; version: string; description: string };
  tags: { name: string; description: string }[];
  paths: Record<string, PathItem>;
  components: { schemas: Record<string, Schema>; responses: Record<string, ResponseObject> };
}

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const errorRef = (name: string) => ({ $ref: `#/components/responses/${name}` });
const json = (schema: Schema): Record<string, MediaTypeObject> => ({ 'application/json': { schema } });
const str = (description?: string, nullable = false): Schema => ({ type: 'string', ...(description ? { description } : {}), ...(nullable ? { nullable } : {}) });

const TITLE: Record<ImageKind, string> = { BaseImage: 'base image', TargetImage: 'target image', ProviderImage: 'provider image' };

/** `getBaseImagesIdTargetImages`-style ids, unique because paths are. */
function operationId(method: string, path: string): string {
  const words = path
    .replace(BASE_PATH, '')
    .split('/')
    .filter(Boolean)
    .flatMap((s) => (s.startsWith(':') ? ['id'] : s.split(/[_.]/)));
  return method + (words.map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join('') || 'Root');
}

function pathParameters(path: string): ParameterObject[] {
  return [...path.matchAll(/:([a-z_]+)/g)].map(([, name]) => ({
    name: name!,
    in: 'path' as const,
    required: true,
    description: name === 'plugin_id' ? 'a plugin id' : `id (uuid) of the ${name!.replace(/_id$/, '').replace('_', ' ')}`,
    schema: { type: 'string' as const },
  }));
}

function op(method: string, path: string, tag: string, o: Omit<Operation, 'operationId' | 'tags' | 'parameters'> & { parameters?: ParameterObject[] }): Operation {
  const parameters = [...pathParameters(path), ...(o.parameters ?? [])];
  return { operationId: operationId(method, path), tags: [tag], ...o, ...(parameters.length ? { parameters } : {}) };
}

const COMMON_ERRORS = { '401': errorRef('Unauthorized'), '404': errorRef('NotFound'), '406': errorRef('NotAcceptable'), '500': errorRef('Internal') };

/** Said of the nested forms, whose path names the image's ancestors. */
const nestedNote = (nested: boolean) => (nested ? ' Nested form: the images the path names must belong to one another, else 404.' : '');

function collectionPaths(): Record<string, PathItem> {
  const out: Record<string, PathItem> = {};
  for (const { kind, path } of COLLECTION_LOCATIONS) {
    const { collection, singular } = KIND_NAMES[kind];
    const parent = kind === 'TargetImage' && path.includes(':base_image_id') ? 'base_image_id' : kind === 'ProviderImage' && path.includes(':target_image_id') ? 'target_image_id' : null;
    out[toOpenApiPath(path)] = {
      get: op('get', path, 'images', {
        summary: `List ${TITLE[kind]}s${parent ? ` of the ${parent.replace('_id', '').replace('_', ' ')}` : ''}`,
        description: `Every ${TITLE[kind]} as a summary.${nestedNote(parent !== null)}`,
        responses: {
          '200': {
            description: `{"${collection}":[{"${singular}":{…}}…]}`,
            content: json({ type: 'object', required: [collection], properties: { [collection]: { type: 'array', items: { type: 'object', properties: { [singular]: ref('ImageSummary') } } } } }),
          },
          ...COMMON_ERRORS,
        },
      }),
      post: op('post', path, 'images', {
        summary: `Build a ${TITLE[kind]}`,
        description:
          `Starts a build and answers at once (202).${parent ? ` The parent (${parent}) comes from the path.` : ''}` +
          ' JSON bodies are wrapped in the singular name; form-encoded bodies carry the same fields flat (`parameters` as a JSON string).' +
          ' A template that does not validate is answered as the original Image Factory did: 202 with the new image, FAILED at once, the errors (line, column, code) in status_detail;' +
          ' with `Prefer: handling=strict` it is refused at once, 400 template_invalid (and a request that is accepted says `Preference-Applied: handling=strict`).' +
          (kind === 'BaseImage' ? '' : ' The target\'s parameters are checked by its cloud plugin first: 400 bad_parameter, 501 not_supported.') +
          (kind === 'BaseImage' ? '' : ' From a template, the images it is made from are built first, each its own build, with the target content merged into the base template.') +
          nestedNote(parent !== null),
        parameters: [{ name: 'Prefer', in: 'header', description: '`handling=strict` (RFC 7240): refuse an invalid template with 400 instead of a FAILED image', schema: { type: 'string' } }],
        requestBody: {
          required: true,
          content: {
            'application/json': { schema: { type: 'object', required: [singular], properties: { [singular]: ref(`${kind}Request`) } } },
            'application/x-www-form-urlencoded': { schema: ref(`${kind}FormRequest`) },
          },
        },
        responses: {
          '202': {
            description: 'accepted; the build runs',
            headers: { Location: { description: 'href of the new image', schema: { type: 'string' } } },
            content: json({ type: 'object', required: [singular], properties: { [singular]: ref(kind) } }),
          },
          '400': errorRef('BadRequest'),
          '403': errorRef('Forbidden'),
          '413': errorRef('TooLarge'),
          '415': errorRef('UnsupportedMediaType'),
          '501': errorRef('NotImplemented'),
          '503': errorRef('Unavailable'),
          ...COMMON_ERRORS,
        },
      }),
    };
  }
  return out;
}

function imagePaths(): Record<string, PathItem> {
  const out: Record<string, PathItem> = {};
  for (const { kind, path } of IMAGE_LOCATIONS) {
    const { singular } = KIND_NAMES[kind];
    const t = TITLE[kind];
    const note = nestedNote((path.match(/:/g)?.length ?? 0) > 1);
    const envelope = json({ type: 'object', required: [singular], properties: { [singular]: ref(kind) } });
    out[toOpenApiPath(path)] = {
      get: op('get', path, 'images', { summary: `One ${t}, every field`, description: `Credentials are never shown; the template's rootpw is masked.${note}`, responses: { '200': { description: 'the image', content: envelope }, ...COMMON_ERRORS } }),
      delete: op('delete', path, 'images', {
        summary: `Delete a ${t}`,
        description:
          'Asynchronous. An image with children is refused (409) unless cascade=true; a building image is cancelled first.' +
          (kind === 'ProviderImage'
            ? ' With provider and/or credentials (and target) in the body (flat or wrapped in provider_image) or the query, the image is removed from the provider too (an AMI and its snapshot; what a failed push left); the credentials are used for that and dropped. A failure there leaves the image DELETEFAILED with the provider\'s code (auth_failed…). Without them only the record and body go.'
            : '') +
          note,
        parameters: [
          { name: 'cascade', in: 'query', description: 'also delete the child images', schema: { type: 'boolean' } },
          ...(kind === 'ProviderImage'
            ? (['provider', 'credentials', 'target'] as const).map((name) => ({ name, in: 'query' as const, description: `the provider image's ${name} (or in the body)`, schema: { type: 'string' as const } }))
            : []),
        ],
        ...(kind === 'ProviderImage'
          ? {
              requestBody: {
                required: false,
                content: { 'application/json': { schema: ref('ProviderDeletion') }, 'application/x-www-form-urlencoded': { schema: ref('ProviderDeletion') } },
              },
            }
          : {}),
        responses: { '204': { description: 'deletion started' }, '400': errorRef('BadRequest'), '403': errorRef('Forbidden'), '409': errorRef('Conflict'), '501': errorRef('NotImplemented'), ...COMMON_ERRORS },
      }),
    };
    out[toOpenApiPath(`${path}/raw_image`)] = {
      get: op('get', `${path}/raw_image`, 'images', {
        summary: `The ${t}'s body file`,
        description: `An attachment; a single \`Range: bytes=a-b\` gets 206.${note}`,
        parameters: [{ name: 'Range', in: 'header', description: 'bytes=a-b, bytes=a- or bytes=-n', schema: { type: 'string' } }],
        responses: {
          '200': { description: 'the whole body', headers: { 'Content-Disposition': { description: 'attachment; filename=…', schema: { type: 'string' } } }, content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } },
          '206': { description: 'one byte range', headers: { 'Content-Range': { description: 'bytes a-b/size', schema: { type: 'string' } } }, content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } },
          '416': errorRef('RangeNotSatisfiable'),
          ...COMMON_ERRORS,
        },
      }),
    };
    out[toOpenApiPath(`${path}/cancel`)] = {
      post: op('post', `${path}/cancel`, 'builds', {
        summary: `Cancel the ${t}'s build`,
        description: `202 when the cancel is accepted; the build then stops, cleans up and ends CANCELLED.${note}`,
        responses: { '202': { description: 'cancel accepted', content: envelope }, '403': errorRef('Forbidden'), '409': errorRef('Conflict'), ...COMMON_ERRORS },
      }),
    };
    out[toOpenApiPath(`${path}/transitions`)] = {
      get: op('get', `${path}/transitions`, 'builds', {
        summary: `Every state change of the ${t}'s build machine, oldest first`,
        ...(note ? { description: note.trim() } : {}),
        responses: { '200': { description: 'transitions', content: json({ type: 'array', items: ref('Transition') }) }, ...COMMON_ERRORS },
      }),
    };
    out[toOpenApiPath(`${path}/machine`)] = {
      get: op('get', `${path}/machine`, 'builds', {
        summary: `The ${t}'s build machine and its current state, for drawing`,
        ...(note ? { description: note.trim() } : {}),
        responses: { '200': { description: 'the machine', content: json(ref('MachineView')) }, ...COMMON_ERRORS },
      }),
    };
    out[toOpenApiPath(`${path}/log`)] = {
      get: op('get', `${path}/log`, 'builds', {
        summary: `The ${t}'s build log and guest console`,
        description: `Empty while there is no log. \`follow=1\` streams new text until the build is final.${note}`,
        parameters: [{ name: 'follow', in: 'query', description: 'keep streaming until the build is final', schema: { type: 'boolean' } }],
        responses: { '200': { description: 'the log', content: { 'text/plain': { schema: { type: 'string' } } } }, ...COMMON_ERRORS },
      }),
    };
  }
  return out;
}

/** The inspector page and its assets (GET /inspector): HTML, CSS, JS and Graphviz, all from the daemon itself. */
function inspectorPaths(): Record<string, PathItem> {
  const out: Record<string, PathItem> = {};
  for (const asset of INSPECTOR_ASSETS) {
    out[asset.path] = {
      get: {
        operationId: asset.path === '/inspector' ? 'getInspector' : `getInspector${asset.path.replace('/inspector/assets/', '').replace(/(^|[^A-Za-z0-9])([a-z])/g, (_m, _s, c: string) => c.toUpperCase())}`,
        summary: asset.path === '/inspector' ? 'A web page that draws every build machine live' : asset.description,
        description:
          asset.path === '/inspector'
            ? 'Lists builds (filter by status and kind); for the selected build, its machine drawn with the current state highlighted, its transitions with durations, progress, error, related builds and the tail of its log, live over /imagefactory/events. Everything it loads comes from this daemon; served with `Content-Security-Policy: ' +
              INSPECTOR_CSP +
              '`.'
            : `Served with an ETag (304 on If-None-Match) and gzip when accepted.`,
        tags: ['inspector'],
        responses: {
          '200': { description: asset.description, content: { [String(asset.produces)]: { schema: { type: 'string' } } } },
          '304': { description: 'not modified (If-None-Match)' },
          '406': errorRef('NotAcceptable'),
          '503': errorRef('Unavailable'),
        },
      },
    };
  }
  return out;
}

const statusDetail: Schema = {
  type: 'object',
  required: ['activity', 'error'],
  properties: {
    activity: str('what the build is doing'),
    error: str('the failure message', true),
    error_code: str('extension: the failure code, e.g. install_stalled', true),
    error_details: { type: 'object', nullable: true, description: 'extension: facts about the failure', additionalProperties: true },
  },
};

const imageProperties: Record<string, Schema> = {
  _type: { type: 'string', enum: ['BaseImage', 'TargetImage', 'ProviderImage'] },
  id: { type: 'string', format: 'uuid' },
  href: { type: 'string', format: 'uri' },
  status: { type: 'string', enum: STATUSES },
  status_detail: statusDetail,
  percent_complete: { type: 'integer', minimum: 0, maximum: 100 },
  template: str('the TDL template, rootpw masked', true),
  icicle: str('the package manifest (ICICLE XML)', true),
  parameters: { type: 'object', additionalProperties: true },
  properties: { type: 'object', additionalProperties: true },
  phase: str("extension: the build machine's current state"),
  created: { type: 'string', format: 'date-time' },
  updated: { type: 'string', format: 'date-time' },
  transitions_href: { type: 'string', format: 'uri' },
};
const imageRequired = Object.keys(imageProperties);

/** GET only: the child images, in the original's shape — the collection answer nested under its own name. */
const childList = (collection: string, singular: string): Schema => ({
  type: 'object',
  description: `GET only: {"${collection}":[{"${singular}":{…}}…]}, as the original Image Factory embedded it`,
  properties: { [collection]: { type: 'array', items: { type: 'object', properties: { [singular]: ref('ImageSummary') } } } },
});

const parametersField: Schema = { type: 'object', additionalProperties: true, description: 'free-form build parameters (callbacks, oz_overrides, target options…)' };
const formParameters: Schema = { type: 'string', description: 'parameters as a JSON object text' };
const documentField = (what: string): Schema => ({ oneOf: [{ type: 'string' }, { type: 'object', additionalProperties: true }], description: what });

function errorResponse(description: string): ResponseObject {
  return { description, content: json(ref('Error')) };
}

export const OPENAPI: OpenApiDocument = {
  openapi: '3.0.3',
  info: {
    title: 'Image Factory',
    version: '2.0',
    description:
      "Image Factory's REST API 2.0 with this project's extensions (cancel, transitions, machine, log, events, metrics, CANCELLED). " +
      'Every error is {"error":{"code","message","details"}}. ' +
      'Security: HTTPS by default; every route except GET /imagefactory (and the inspector page\'s static files) needs a two-legged OAuth 1.0a signature ' +
      '(HMAC-SHA1 or HMAC-SHA256, consumer keys from the daemon\'s `clients`), in an `Authorization: OAuth …` header or as oauth_* query or form parameters; ' +
      'a missing or wrong signature, a timestamp more than 300 s off or a reused nonce is answered 401 with `WWW-Authenticate: OAuth`. ' +
      'State-changing requests that a browser marks as cross-site (Origin, Sec-Fetch-Site), and form posts from browsers, are answered 403 cross_site_refused.',
  },
  tags: [
    { name: 'service', description: 'the daemon itself' },
    { name: 'images', description: 'base, target and provider images' },
    { name: 'builds', description: 'watching and steering builds' },
    { name: 'plugins', description: 'OS and cloud plugins' },
    { name: 'inspector', description: 'the web page that draws build machines live' },
  ],
  paths: {
    [BASE_PATH]: {
      get: op('get', BASE_PATH, 'service', {
        summary: 'Name and versions of the daemon',
        responses: {
          '200': {
            description: 'the service',
            content: json({ type: 'object', required: ['name', 'version', 'api_version'], properties: { name: { type: 'string', enum: ['imagefactory'] }, version: str(), api_version: { type: 'string', enum: ['2.0'] } } }),
          },
          '406': errorRef('NotAcceptable'),
        },
      }),
    },
    [`${BASE_PATH}/openapi.json`]: {
      get: op('get', `${BASE_PATH}/openapi.json`, 'service', { summary: 'This document', responses: { '200': { description: 'OpenAPI 3.0', content: json({ type: 'object' }) } } }),
    },
    [`${BASE_PATH}/events`]: {
      get: op('get', `${BASE_PATH}/events`, 'builds', {
        summary: 'Server-Sent Events of every build',
        description:
          'One event per transition (`event: transition`), progress change (`progress`) or deletion (`deleted`); `id:` counts per connection; `data:` is JSON {image, transition?}. A heartbeat comment every 15 s.',
        parameters: [{ name: 'id', in: 'query', description: 'only the events of this image', schema: { type: 'string' } }],
        responses: { '200': { description: 'an event stream', content: { 'text/event-stream': { schema: ref('EventData') } } }, ...COMMON_ERRORS },
      }),
    },
    [`${BASE_PATH}/plugins`]: {
      get: op('get', `${BASE_PATH}/plugins`, 'plugins', {
        summary: 'Every plugin',
        responses: { '200': { description: 'plugins', content: json({ type: 'object', required: ['plugins'], properties: { plugins: { type: 'array', items: ref('Plugin') } } }) }, '406': errorRef('NotAcceptable') },
      }),
    },
    [toOpenApiPath(`${BASE_PATH}/plugins/:plugin_id`)]: {
      get: op('get', `${BASE_PATH}/plugins/:plugin_id`, 'plugins', {
        summary: 'One plugin',
        responses: { '200': { description: 'the plugin', content: json({ type: 'object', required: ['plugin'], properties: { plugin: ref('Plugin') } }) }, ...COMMON_ERRORS },
      }),
    },
    ...collectionPaths(),
    ...imagePaths(),
    ...inspectorPaths(),
    [METRICS_PATH]: {
      get: {
        operationId: 'getMetrics',
        summary: 'Prometheus metrics of the daemon',
        description:
          'The Prometheus text format: imagefactory_builds_finished_total{kind,status,error_code}, imagefactory_builds_submitted_total{kind}, imagefactory_phase_duration_seconds{kind,phase} (histogram), imagefactory_build_queue_length, imagefactory_builds_active{kind}, imagefactory_running_guests, imagefactory_pushed_bytes_total{provider}, and the process metrics. Behind OAuth; `metrics_port` can also serve it on a loopback-only port without OAuth.',
        tags: ['service'],
        responses: {
          '200': { description: 'metrics', content: { 'text/plain': { schema: { type: 'string' } } } },
          '401': errorRef('Unauthorized'),
          '404': errorRef('NotFound'),
          '406': errorRef('NotAcceptable'),
        },
      },
    },
  },
  components: {
    schemas: {
      ImageSummary: {
        type: 'object',
        required: ['_type', 'id', 'href', 'status', 'percent_complete'],
        properties: { _type: imageProperties._type!, id: imageProperties.id!, href: imageProperties.href!, status: imageProperties.status!, percent_complete: imageProperties.percent_complete! },
      },
      BaseImage: { type: 'object', required: imageRequired, properties: { ...imageProperties, target_images: childList('target_images', 'target_image') } },
      TargetImage: {
        type: 'object',
        required: [...imageRequired, 'base_image_id', 'target'],
        properties: {
          ...imageProperties,
          base_image_id: { type: 'string', format: 'uuid', nullable: true },
          target: str('cloud or format name, e.g. ec2', true),
          base_image: { allOf: [ref('ImageSummary')], nullable: true, description: 'GET only: the base image (the original\'s link)' },
          provider_images: childList('provider_images', 'provider_image'),
        },
      },
      ProviderImage: {
        type: 'object',
        required: [...imageRequired, 'target_image_id', 'target', 'provider', 'identifier_on_provider', 'provider_account_identifier'],
        properties: {
          ...imageProperties,
          target_image_id: { type: 'string', format: 'uuid', nullable: true },
          target: str('cloud name', true),
          provider: str('provider name or document', true),
          identifier_on_provider: str('e.g. the AMI id', true),
          provider_account_identifier: str(undefined, true),
          target_image: { allOf: [ref('ImageSummary')], nullable: true, description: 'GET only: the target image (the original\'s link)' },
        },
      },
      BaseImageRequest: { type: 'object', required: ['template'], properties: { template: str('TDL template XML'), parameters: parametersField } },
      TargetImageRequest: {
        type: 'object',
        required: ['target'],
        description: 'exactly one of base_image_id (or the path) and template',
        properties: { target: str('e.g. ec2, openstack-kvm, vsphere'), base_image_id: str(), template: str('TDL template XML'), parameters: parametersField },
      },
      ProviderImageRequest: {
        type: 'object',
        required: ['target', 'provider', 'credentials'],
        description: 'exactly one of target_image_id (or the path) and template',
        properties: {
          target: str(),
          provider: documentField('a provider name (ec2-us-east-1) or a JSON/XML provider document'),
          credentials: documentField('<provider_credentials> XML or JSON; never stored or returned'),
          target_image_id: str(),
          template: str('TDL template XML'),
          parameters: parametersField,
        },
      },
      BaseImageFormRequest: { type: 'object', required: ['template'], properties: { template: str(), parameters: formParameters } },
      TargetImageFormRequest: { type: 'object', required: ['target'], properties: { target: str(), base_image_id: str(), template: str(), parameters: formParameters } },
      ProviderImageFormRequest: {
        type: 'object',
        required: ['target', 'provider', 'credentials'],
        properties: { target: str(), provider: str(), credentials: str(), target_image_id: str(), template: str(), parameters: formParameters },
      },
      ProviderDeletion: { type: 'object', properties: { provider: documentField('provider name or document'), credentials: documentField('credentials document'), target: str() } },
      Transition: { type: 'object', required: ['from', 'to', 'event', 'at'], properties: { from: str(undefined, true), to: str(), event: str(), at: { type: 'string', format: 'date-time' } } },
      MachineView: {
        type: 'object',
        required: ['definition', 'value', 'visited'],
        properties: { definition: { type: 'object', additionalProperties: true, description: 'the XState machine definition' }, value: str('current state'), visited: { type: 'array', items: { type: 'string' } } },
      },
      EventData: {
        type: 'object',
        required: ['image'],
        properties: {
          image: { allOf: [ref('ImageSummary'), { type: 'object', properties: { phase: str(), activity: str(), updated: { type: 'string', format: 'date-time' } } }] },
          transition: ref('Transition'),
        },
      },
      Plugin: {
        type: 'object',
        required: ['_type', 'id', 'href'],
        additionalProperties: true,
        properties: {
          _type: { type: 'string', enum: ['plugin'] },
          id: str(),
          href: { type: 'string', format: 'uri' },
          type: { type: 'string', enum: ['os', 'cloud'] },
          targets: { type: 'array', items: { type: 'array', items: { type: 'string', nullable: true } } },
          description: str(),
          maintainer: { type: 'object', additionalProperties: true },
          version: str(),
          license: str(),
          error: str('why the plugin failed to load'),
        },
      },
      Error: {
        type: 'object',
        required: ['error'],
        properties: {
          error: {
            type: 'object',
            required: ['code', 'message'],
            properties: { code: str('stable code, e.g. image_not_found'), message: str(), details: { description: 'extra facts; {correlation_id} for internal errors' } },
          },
        },
      },
    },
    responses: {
      BadRequest: errorResponse('bad_request, bad_json, template_invalid (with Prefer: handling=strict) or bad_parameter (a target parameter its cloud plugin refuses)'),
      NotImplemented: errorResponse('not_supported: a target parameter or a provider target this daemon does not support'),
      NotFound: errorResponse('not_found, image_not_found, plugin_not_found or no_body'),
      NotAcceptable: errorResponse('not_acceptable: the Accept header allows no type this route answers with'),
      Conflict: errorResponse('conflict: the image is in a state that refuses the request'),
      TooLarge: errorResponse('body_too_large'),
      UnsupportedMediaType: errorResponse('unsupported_media_type: bodies are JSON or form-encoded'),
      RangeNotSatisfiable: errorResponse('range_not_satisfiable'),
      Unavailable: errorResponse('queue_full or shutting_down; inspector_unavailable when a file of the inspector page is missing'),
      Internal: errorResponse('internal, with details.correlation_id (also in the log)'),
      Unauthorized: {
        description:
          'oauth_parameter_absent, oauth_parameter_rejected, oauth_signature_method_rejected, oauth_timestamp_refused, oauth_nonce_used, oauth_signature_invalid, oauth_token_rejected or oauth_version_rejected',
        headers: { 'WWW-Authenticate': { description: 'OAuth realm="imagefactory", oauth_problem="…"', schema: { type: 'string' } } },
        content: json(ref('Error')),
      },
      Forbidden: errorResponse('cross_site_refused (a browser request from another site, or a browser form post), inspector_loopback_only'),
    },
  },
};
