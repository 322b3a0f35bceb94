import { webcrypto } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { NonceStore } from '../../src/api/auth/nonces.js';
import { OAuthVerifier, type OAuthRequest } from '../../src/api/auth/oauth.js';
import { signRequest } from '../../src/api/auth/sign.js';
import { parseAuthorizationHeader, parseFormPairs, signatureBaseString, type Param } from '../../src/api/auth/signature-base.js';
import { ApiError } from '../../src/api/errors.js';
import { signForBrowser } from '../../src/api/inspector/page.js';
import { independentHeader, independentSigner } from '../daemon/live.js';

const CLIENTS = { alice: 'wonder-land&secret', bob: 'b0b' };
const NOW = 1_700_000_000_000;
const URL_ = 'https://127.0.0.1:8075/imagefactory/base_images?cascade=true';

function verifier(now = NOW) {
  return new OAuthVerifier({ clients: CLIENTS, now: () => now });
}

function req(method: string, url: string, authorization?: string, form?: Param[]): OAuthRequest {
  return { method, url: new URL(url), authorization, ...(form ? { form } : {}) };
}

/** The ApiError a verification throws. */
function refusal(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('the OAuth 1.0a signature base string', () => {
  it('is RFC 5849’s own example, byte for byte (§3.4.1.1)', () => {
    const url = new URL('http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b');
    const header = parseAuthorizationHeader(
      'OAuth realm="Example", oauth_consumer_key="9djdj82h48djs9d2", oauth_token="kkk9d7dh3k39sjv7", oauth_signature_method="HMAC-SHA1", oauth_timestamp="137131201", oauth_nonce="7d8f3e4a", oauth_signature="bYT5CMsGcbgUdFHObYMEfcx6bsw%3D"',
    )!;
    const params = [...parseFormPairs(url.search.slice(1)), ...parseFormPairs('c2&a3=2+q'), ...header];
    expect(signatureBaseString('POST', url, params)).toBe(
      'POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7',
    );
  });

  it('refuses a malformed header or %-escape instead of guessing', () => {
    expect(parseAuthorizationHeader('Basic dXNlcjpwYXNz')).toBeNull();
    expect(() => parseAuthorizationHeader('OAuth oauth_nonce=unquoted')).toThrow(/name="value"/);
    expect(() => parseFormPairs('a=%E0%A4%A')).toThrow(/malformed %-escape/);
  });
});

describe('verifying two-legged OAuth 1.0a requests', () => {
  it('accepts the independent oauth-1.0a signer, HMAC-SHA1 and HMAC-SHA256, in the header and as query parameters', () => {
    const v = verifier(Date.now());
    for (const method of ['HMAC-SHA1', 'HMAC-SHA256'] as const) {
      const header = independentHeader({ key: 'alice', secret: CLIENTS.alice }, 'DELETE', URL_, undefined, method);
      expect(v.verify(req('DELETE', URL_, header))).toEqual({ consumerKey: 'alice', signatureMethod: method });
      // The query form, as an EventSource sends it.
      const oauth = independentSigner({ key: 'bob', secret: CLIENTS.bob }, method);
      const events = 'https://127.0.0.1:8075/imagefactory/events?id=abc';
      const signed = oauth.authorize({ url: events, method: 'GET' });
      const url = new URL(events);
      // authorize() also returns the query's own parameters: only the protocol ones are added.
      for (const [name, value] of Object.entries(signed)) if (name.startsWith('oauth_')) url.searchParams.append(name, String(value));
      expect(v.verify(req('GET', url.href)).consumerKey).toBe('bob');
    }
  });

  it('signs form-encoded fields too: the independent signer’s form post is accepted, an altered field is not', () => {
    const v = verifier(Date.now());
    const url = 'http://127.0.0.1:8075/imagefactory/target_images';
    const data = { target: 'ec2', base_image_id: 'b-1', parameters: '{"a b":"c+d"}' };
    const header = independentHeader({ key: 'alice', secret: CLIENTS.alice }, 'POST', url, data);
    const pairs = Object.entries(data) as Param[];
    expect(v.verify(req('POST', url, header, pairs)).consumerKey).toBe('alice');
    const altered = independentHeader({ key: 'alice', secret: CLIENTS.alice }, 'POST', url, data);
    const e = refusal(() => v.verify(req('POST', url, altered, [['target', 'gce'], ...pairs.slice(1)])));
    expect([e.status, e.code]).toEqual([401, 'oauth_signature_invalid']);
  });

  it('accepts our own signer and the inspector page’s WebCrypto signer', async () => {
    const v = verifier(Date.now());
    const own = signRequest({ method: 'POST', url: URL_, consumer: { key: 'bob', secret: CLIENTS.bob }, signatureMethod: 'HMAC-SHA256' });
    expect(v.verify(req('POST', URL_, own.header)).consumerKey).toBe('bob');
    // The page runs in a browser; Node 20 has the same WebCrypto as a global.
    expect(globalThis.crypto.subtle).toBe(webcrypto.subtle);
    for (const method of ['HMAC-SHA1', 'HMAC-SHA256'] as const) {
      const url = new URL('https://127.0.0.1:8075/imagefactory/events?id=x%20y');
      for (const [name, value] of await signForBrowser('GET', url, { key: 'alice', secret: CLIENTS.alice, method })) url.searchParams.append(name, value);
      expect(v.verify(req('GET', url.href)).consumerKey).toBe('alice');
    }
  });

  it('refuses, with 401, WWW-Authenticate: OAuth and a precise code: the reject matrix', () => {
    const ts = Math.floor(NOW / 1000);
    const sign = (over: Partial<Parameters<typeof signRequest>[0]> = {}) =>
      signRequest({ method: 'GET', url: URL_, consumer: { key: 'alice', secret: CLIENTS.alice }, timestamp: ts, ...over }).header;
    const cases: [string, () => unknown, string][] = [
      ['no signature at all', () => verifier().verify(req('GET', URL_)), 'oauth_parameter_absent'],
      ['a Basic header', () => verifier().verify(req('GET', URL_, 'Basic YTpi')), 'oauth_parameter_absent'],
      ['a wrong secret', () => verifier().verify(req('GET', URL_, sign({ consumer: { key: 'alice', secret: 'guess' } }))), 'oauth_signature_invalid'],
      ['an unknown consumer (the same answer as a wrong secret)', () => verifier().verify(req('GET', URL_, sign({ consumer: { key: 'mallory', secret: 'x' } }))), 'oauth_signature_invalid'],
      ['an altered query parameter', () => verifier().verify(req('GET', URL_.replace('cascade=true', 'cascade=false'), sign())), 'oauth_signature_invalid'],
      ['an altered method', () => verifier().verify(req('DELETE', URL_, sign())), 'oauth_signature_invalid'],
      ['another host', () => verifier().verify(req('GET', URL_.replace('127.0.0.1', 'localhost'), sign())), 'oauth_signature_invalid'],
      ['a timestamp 301 s old', () => verifier().verify(req('GET', URL_, sign({ timestamp: ts - 301 }))), 'oauth_timestamp_refused'],
      ['a timestamp 301 s ahead', () => verifier().verify(req('GET', URL_, sign({ timestamp: ts + 301 }))), 'oauth_timestamp_refused'],
      ['a token (three-legged)', () => verifier().verify(req('GET', URL_, sign().replace('OAuth ', 'OAuth oauth_token="t", '))), 'oauth_token_rejected'],
      ['PLAINTEXT', () => verifier().verify(req('GET', URL_, sign().replace('HMAC-SHA1', 'PLAINTEXT'))), 'oauth_signature_method_rejected'],
      ['oauth_version 2.0', () => verifier().verify(req('GET', URL_, sign().replace('oauth_version="1.0"', 'oauth_version="2.0"'))), 'oauth_version_rejected'],
      ['a parameter twice', () => verifier().verify(req('GET', URL_, sign().replace('OAuth ', 'OAuth oauth_nonce="again", '))), 'oauth_parameter_rejected'],
      ['header and query at once', () => verifier().verify(req('GET', `${URL_}&oauth_nonce=x`, sign())), 'oauth_parameter_rejected'],
      ['a header that is not name="value"', () => verifier().verify(req('GET', URL_, 'OAuth oauth_consumer_key=alice')), 'oauth_parameter_rejected'],
      ['a malformed %-escape in the query', () => verifier().verify(req('GET', 'https://127.0.0.1:8075/imagefactory/events?id=%E0%A4%A', sign())), 'oauth_parameter_rejected'],
      ['a timestamp that is not a number', () => verifier().verify(req('GET', URL_, sign().replace(/oauth_timestamp="\d+"/, 'oauth_timestamp="1e9"'))), 'oauth_parameter_rejected'],
    ];
    for (const [what, fn, code] of cases) {
      const e = refusal(fn);
      expect([e.status, e.code], what).toEqual([401, code]);
      expect(e.headers?.['www-authenticate'], what).toMatch(/^OAuth realm="imagefactory", oauth_problem="/);
      // The answer never quotes a secret.
      expect(e.message + JSON.stringify(e.details ?? {}), what).not.toMatch(/wonder-land|b0b|guess/);
    }
  });

  it('refuses a replayed request (same nonce and timestamp) and forgets nonces once their timestamp is stale', () => {
    let now = NOW;
    const v = new OAuthVerifier({ clients: CLIENTS, now: () => now });
    const header = signRequest({ method: 'GET', url: URL_, consumer: { key: 'alice', secret: CLIENTS.alice }, timestamp: Math.floor(NOW / 1000), nonce: 'n-1' }).header;
    expect(v.verify(req('GET', URL_, header)).consumerKey).toBe('alice');
    expect(refusal(() => v.verify(req('GET', URL_, header))).code).toBe('oauth_nonce_used');
    // The same nonce by another consumer is another request.
    const bob = signRequest({ method: 'GET', url: URL_, consumer: { key: 'bob', secret: CLIENTS.bob }, timestamp: Math.floor(NOW / 1000), nonce: 'n-1' }).header;
    expect(v.verify(req('GET', URL_, bob)).consumerKey).toBe('bob');
    // A refused request spends no nonce: an attacker cannot burn a client's nonces without its secret.
    const forged = signRequest({ method: 'GET', url: URL_, consumer: { key: 'alice', secret: 'forged' }, timestamp: Math.floor(NOW / 1000), nonce: 'n-2' }).header;
    expect(refusal(() => v.verify(req('GET', URL_, forged))).code).toBe('oauth_signature_invalid');
    const good = signRequest({ method: 'GET', url: URL_, consumer: { key: 'alice', secret: CLIENTS.alice }, timestamp: Math.floor(NOW / 1000), nonce: 'n-2' }).header;
    expect(v.verify(req('GET', URL_, good)).consumerKey).toBe('alice');
    // Past the window the replay is refused by its timestamp, and the store may forget it.
    now = NOW + 302_000;
    expect(refusal(() => v.verify(req('GET', URL_, header))).code).toBe('oauth_timestamp_refused');
  });
});

describe('the nonce store', () => {
  it('stays within its bound: expired nonces are swept, and a full store refuses rather than forgets', () => {
    let now = 0;
    const store = new NonceStore(3, () => now);
    expect(['a', 'b', 'c'].map((n) => store.remember('k', 1, n, 1000))).toEqual(['fresh', 'fresh', 'fresh']);
    expect(store.remember('k', 1, 'a', 1000)).toBe('reused');
    expect(store.remember('k', 1, 'd', 1000)).toBe('full');
    now = 1000;
    expect(store.remember('k', 1, 'd', 2000)).toBe('fresh');
    expect(store.size).toBe(1);
  });

  it('answers 503 oauth_busy when it is full of live nonces', () => {
    const v = new OAuthVerifier({ clients: CLIENTS, now: () => NOW, maxNonces: 2 });
    const sign = (nonce: string) => signRequest({ method: 'GET', url: URL_, consumer: { key: 'alice', secret: CLIENTS.alice }, timestamp: Math.floor(NOW / 1000), nonce }).header;
    v.verify(req('GET', URL_, sign('1')));
    v.verify(req('GET', URL_, sign('2')));
    const e = refusal(() => v.verify(req('GET', URL_, sign('3'))));
    expect([e.status, e.code]).toEqual([503, 'oauth_busy']);
    expect(v.rememberedNonces).toBe(2);
  });
});
