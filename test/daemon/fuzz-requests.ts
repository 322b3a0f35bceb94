/**
 * Malformed and hostile requests for the fuzz run, from a seeded generator
 * (the same seed gives the same requests, so a failure can be replayed):
 * random bodies, wrong types, huge numbers, unicode, path tricks and bad
 * OAuth headers. `sign` says whether the request should carry a valid
 * signature, so that the junk reaches the routes behind the front door.
 */
import { template } from './helpers.js';

export interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** Sign it properly (the junk is then judged by the route), or leave the headers as they are. */
  sign: boolean;
}

/** mulberry32: small, fast, good enough to pick cases. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const UNICODE = ['é', 'ß', '日本', '🦀', '\u202e', '\u0000', '\ufeff', '\ud800', 'Ω', '\u2028'];
const HUGE = ['1e309', '-1e309', '99999999999999999999999', '9007199254740993', '-0', 'NaN', 'Infinity', '0x7fffffff', '1'.repeat(400)];

/** encodeURIComponent of well-formed text (a lone surrogate becomes U+FFFD); malformed escapes are cases of their own. */
function enc(text: string): string {
  return encodeURIComponent(text.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd'));
}

export function fuzzRequests(seed: number, count: number, knownIds: () => string[]): FuzzRequest[] {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const int = (n: number) => Math.floor(rnd() * n);
  const randomText = (n: number) => Array.from({ length: n }, () => (rnd() < 0.2 ? pick(UNICODE) : String.fromCharCode(32 + int(95)))).join('');
  const randomBytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  const id = () => (rnd() < 0.5 && knownIds().length ? pick(knownIds()) : pick(['00000000-0000-0000-0000-000000000000', 'x', '..', '%2e%2e', '%00', enc(pick(UNICODE)), 'a'.repeat(3000), '%ZZ', '🦀', '1e309']));
  const collection = () => pick(['base_images', 'target_images', 'provider_images']);

  const paths = (): string => {
    switch (int(14)) {
      case 0:
        return `/imagefactory/${collection()}`;
      case 1:
        return `/imagefactory/${collection()}/${id()}`;
      case 2:
        return `/imagefactory/${collection()}/${id()}/${pick(['cancel', 'transitions', 'machine', 'log', 'raw_image', 'target_images', 'provider_images'])}`;
      case 3:
        return `/imagefactory/base_images/${id()}/target_images/${id()}/provider_images`;
      case 4:
        return `/imagefactory/events?id=${enc(randomText(8))}`;
      case 5:
        return `/imagefactory/${collection()}/${id()}/log?follow=${pick(HUGE)}&follow=1&x=${enc(randomText(20))}`;
      case 6:
        return pick(['/imagefactory/../../etc/passwd', '/inspector/../../../etc/shadow', '/imagefactory/%2e%2e/%2e%2e/etc/passwd', '//imagefactory//base_images', '/imagefactory/base_images/..%2f..%2fetc', '/%00', '/imagefactory?%', '/imagefactory/base_images?cascade=%E0%A4%A']);
      case 7:
        return `/imagefactory/plugins/${enc(randomText(int(40)))}`;
      case 8:
        return `/${'a/'.repeat(int(500))}`;
      case 9:
        return `/imagefactory/base_images?${Array.from({ length: int(200) }, (_, i) => `p${i}=${enc(randomText(3))}`).join('&')}`;
      case 10:
        return pick(['/metrics', '/inspector', '/inspector/assets/inspector.js', '/imagefactory/openapi.json', '/imagefactory']);
      case 11:
        return `/imagefactory/${collection()}/${id()}?cascade=${pick(['true', 'false', 'maybe', pick(HUGE), '', enc(pick(UNICODE))])}`;
      case 12:
        return `/imagefactory/${enc(randomText(30))}`;
      default:
        return '/imagefactory/base_images';
    }
  };

  const jsonBodies = (): string => {
    const singular = pick(['base_image', 'target_image', 'provider_image']);
    switch (int(16)) {
      case 0:
        return JSON.stringify({ [singular]: pick([5, null, 'x', [], true, pick(HUGE)]) });
      case 1:
        return JSON.stringify({ [singular]: { template: pick([123, null, [], {}, true, randomText(50)]) } });
      case 2:
        return JSON.stringify({ base_image: { template: template(pick(['ok', 'fail-customize', '9'])), parameters: pick([{}, [], 'x', { a: randomText(10) }, { tag: pick(UNICODE) }]) } });
      case 3:
        return `{"base_image":{"template":${pick(HUGE)}}}`;
      case 4:
        return '['.repeat(20_000) + ']'.repeat(20_000);
      case 5:
        return `{"base_image":{"template":"${'<'.repeat(5000)}"}}`;
      case 6:
        return JSON.stringify({ target_image: { target: pick(['ec2', '', randomText(10), 7]), base_image_id: id(), template: pick([undefined, template('ok')]) } });
      case 7:
        return JSON.stringify({ provider_image: { target: 'ec2', provider: pick([{ a: 1 }, 'ec2-us-east-1', 5, randomText(20)]), credentials: pick(['<x/>', { k: 'v' }, null, 0]), target_image_id: id() } });
      case 8:
        return `{"base_image":{"template":"<template>${randomText(100).replace(/["\\]/g, '')}</template>"}}`;
      case 9:
        return JSON.stringify({ base_image: { template: template('ok').replace('<name>', `<name>${pick(UNICODE)}`) } });
      case 10:
        return `{"__proto__":{"polluted":true},"base_image":{"template":"x","constructor":{"prototype":{"x":1}}}}`;
      case 11:
        return `{"base_image":{"template":"<!DOCTYPE x [<!ENTITY e SYSTEM \\"file:///etc/passwd\\">]><template>&e;</template>"}}`;
      case 12:
        return JSON.stringify({ base_image: { template: template('ok'), parameters: { oz_overrides: { libvirt: { memory: pick(HUGE), cpus: -1 } } } } });
      case 13:
        return `{"base_image":{"template":"${randomText(40).replace(/["\\]/g, '')}"`;
      case 14:
        return JSON.stringify({ provider: 'p', credentials: 'c', target: 't', cascade: pick(HUGE) });
      default:
        return randomText(int(200));
    }
  };

  const out: FuzzRequest[] = [];
  for (let i = 0; i < count; i++) {
    const method = pick(['GET', 'GET', 'POST', 'POST', 'POST', 'DELETE', 'PUT', 'PATCH', 'OPTIONS', 'HEAD']);
    const headers: Record<string, string> = {};
    let body: Buffer | undefined;
    if (method !== 'GET' && method !== 'HEAD' && rnd() < 0.85) {
      const kind = int(6);
      if (kind <= 2) {
        body = Buffer.from(jsonBodies());
        headers['content-type'] = pick(['application/json', 'application/json; charset=utf-8', 'application/vnd.x+json', 'application/JSON']);
      } else if (kind === 3) {
        body = Buffer.from(`template=${enc(pick([template('ok'), randomText(50)]))}&parameters=${enc(pick(['{}', '[', 'null', pick(HUGE)]))}&target=${enc(randomText(5))}&template=dup`);
        headers['content-type'] = 'application/x-www-form-urlencoded';
      } else if (kind === 4) {
        body = randomBytes(int(4096));
        headers['content-type'] = pick(['application/json', 'application/octet-stream', 'text/plain', 'multipart/form-data; boundary=x', '', 'application/x-www-form-urlencoded']);
      } else {
        body = Buffer.alloc(int(3) === 0 ? 2 * 1024 * 1024 : 1024, pick([0x7b, 0x00, 0x41]));
        headers['content-type'] = 'application/json';
      }
      if (!headers['content-type']) delete headers['content-type'];
    }
    if (rnd() < 0.3) headers.accept = pick(['text/xml', '*/*;q=0', 'application/json;q=abc', '', ',,,', 'text/event-stream', 'application/*', pick(UNICODE).replace(/[^\x20-\x7e]/g, '?')]);
    if (rnd() < 0.2) headers.range = pick(['bytes=0-9', 'bytes=-1', 'bytes=99999999999999999999-', 'bytes=5-1', 'lines=1-2', 'bytes=0-1,2-3', `bytes=${pick(HUGE)}-`]);
    if (rnd() < 0.1) headers.origin = pick(['https://evil.example', 'null', 'file://', '\u00e9']).replace(/[^\x20-\x7e]/g, '?');
    if (rnd() < 0.05) headers['if-none-match'] = randomText(30).replace(/[^\x20-\x7e]/g, '?');
    const sign = rnd() < 0.65;
    if (!sign) {
      headers.authorization = pick([
        'OAuth',
        'OAuth oauth_consumer_key',
        'OAuth oauth_consumer_key="build-bot", oauth_signature="%ZZ"',
        `OAuth oauth_consumer_key="build-bot", oauth_nonce="n", oauth_timestamp="${pick(HUGE)}", oauth_signature_method="HMAC-SHA1", oauth_signature="AAAA"`,
        `OAuth oauth_consumer_key="__proto__", oauth_nonce="n", oauth_timestamp="${Math.floor(Date.now() / 1000)}", oauth_signature_method="HMAC-SHA1", oauth_signature="AAAA"`,
        `OAuth oauth_consumer_key="constructor", oauth_nonce="${'n'.repeat(300)}", oauth_timestamp="${Math.floor(Date.now() / 1000)}", oauth_signature_method="HMAC-SHA1", oauth_signature="AAAA"`,
        `OAuth ${'oauth_x="y", '.repeat(500)}oauth_signature="z"`,
        'Basic YWRtaW46YWRtaW4=',
        'Bearer x',
        `OAuth oauth_consumer_key="build-bot", oauth_signature_method="RSA-SHA1", oauth_nonce="1", oauth_timestamp="1", oauth_signature="x"`,
        randomText(100).replace(/[^\x20-\x7e]/g, '?'),
      ]);
    }
    out.push({ method, path: paths(), headers, ...(body !== undefined ? { body } : {}), sign });
  }
  return out;
}
