import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CREDENTIALS, TEMPLATE, getJson, postForm, postJson, start, type Harness } from './helpers.js';

let h: Harness;
beforeEach(async () => {
  h = await start();
});
afterEach(async () => {
  await h.stop();
});

const SUMMARY_KEYS = ['_type', 'href', 'id', 'percent_complete', 'status'];
const COMMON_KEYS = [
  '_type',
  'created',
  'href',
  'icicle',
  'id',
  'parameters',
  'percent_complete',
  'phase',
  'properties',
  'status',
  'status_detail',
  'template',
  'transitions_href',
  'updated',
];

/** A base, a target of it, and a provider image of that target, as the store would hold them. */
function family() {
  const base = h.engine.addImage('BaseImage', { template: TEMPLATE, status: 'COMPLETE', phase: 'complete', percentComplete: 100 });
  const target = h.engine.addImage('TargetImage', { template: TEMPLATE, baseImageId: base.id, target: 'ec2', status: 'BUILDING', phase: 'converting', percentComplete: 40 });
  const provider = h.engine.addImage('ProviderImage', {
    template: TEMPLATE,
    targetImageId: target.id,
    target: 'ec2',
    provider: 'ec2-us-east-1',
    identifierOnProvider: 'ami-0123',
    providerAccountIdentifier: '1234',
    status: 'COMPLETE',
    phase: 'complete',
  });
  return { base, target, provider };
}

describe('GET /imagefactory', () => {
  it('names the service, its version and API version 2.0', async () => {
    const r = await getJson(h.base);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    expect(r.body).toEqual({ name: 'imagefactory', version: '0.0.0-test', api_version: '2.0' });
  });
});

describe('collections', () => {
  it('list every image of a kind as {"<collection>":[{"<singular>":summary}]}', async () => {
    const { base, target, provider } = family();
    const b = await getJson(`${h.base}/base_images`);
    expect(b.status).toBe(200);
    expect(b.body).toEqual({
      base_images: [{ base_image: { _type: 'BaseImage', id: base.id, href: `${h.base}/base_images/${base.id}`, status: 'COMPLETE', percent_complete: 100 } }],
    });
    const t = await getJson(`${h.base}/target_images`);
    expect(Object.keys(t.body.target_images[0].target_image).sort()).toEqual(SUMMARY_KEYS);
    expect(t.body.target_images[0].target_image.id).toBe(target.id);
    const p = await getJson(`${h.base}/provider_images`);
    expect(p.body.provider_images[0].provider_image).toMatchObject({ _type: 'ProviderImage', id: provider.id, href: `${h.base}/provider_images/${provider.id}` });
  });

  it('answer an empty list when there is nothing', async () => {
    expect((await getJson(`${h.base}/provider_images`)).body).toEqual({ provider_images: [] });
  });

  it('list children under their parent in the nested forms', async () => {
    const { base, target, provider } = family();
    const other = h.engine.addImage('BaseImage', { template: TEMPLATE });
    h.engine.addImage('TargetImage', { baseImageId: other.id, target: 'gce' });

    const targets = await getJson(`${h.base}/base_images/${base.id}/target_images`);
    expect(targets.status).toBe(200);
    expect(targets.body.target_images.map((e: any) => e.target_image.id)).toEqual([target.id]);

    const providers = await getJson(`${h.base}/target_images/${target.id}/provider_images`);
    expect(providers.body.provider_images.map((e: any) => e.provider_image.id)).toEqual([provider.id]);

    const deep = await getJson(`${h.base}/base_images/${base.id}/target_images/${target.id}/provider_images`);
    expect(deep.body.provider_images.map((e: any) => e.provider_image.id)).toEqual([provider.id]);

    const wrongBase = await getJson(`${h.base}/base_images/${other.id}/target_images/${target.id}/provider_images`);
    expect(wrongBase.status).toBe(404);
    expect(wrongBase.body.error.code).toBe('image_not_found');
  });

  it('answer 404 image_not_found for a nested list under an unknown or wrong-kind parent', async () => {
    const { target } = family();
    const unknown = await getJson(`${h.base}/base_images/00000000-0000-0000-0000-000000000000/target_images`);
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('image_not_found');
    const wrongKind = await getJson(`${h.base}/base_images/${target.id}/target_images`);
    expect(wrongKind.status).toBe(404);
  });
});

describe('POST: building images', () => {
  it('accepts a base image as REST.md shows it and answers 202 {"base_image":{…}}', async () => {
    const r = await postJson(`${h.base}/base_images`, { base_image: { template: TEMPLATE, parameters: { generate_icicle: true } } });
    expect(r.status).toBe(202);
    const image = r.body.base_image;
    expect(image._type).toBe('BaseImage');
    expect(r.headers.get('location')).toBe(`${h.base}/base_images/${image.id}`);
    expect(image.href).toBe(`${h.base}/base_images/${image.id}`);
    expect(h.engine.calls.find((c) => c.method === 'submitBaseImage')!.args[0]).toEqual({ template: TEMPLATE, parameters: { generate_icicle: true } });
  });

  it('accepts the original daemon’s flat form-encoded bodies (curl -d template=…)', async () => {
    const r = await postForm(`${h.base}/base_images`, { template: TEMPLATE, parameters: '{"oz_overrides":{"libvirt":{"memory":4096}}}' });
    expect(r.status).toBe(202);
    expect(h.engine.calls.find((c) => c.method === 'submitBaseImage')!.args[0]).toEqual({
      template: TEMPLATE,
      parameters: { oz_overrides: { libvirt: { memory: 4096 } } },
    });
  });

  it('accepts a target image from a base image id, in JSON and form bodies', async () => {
    const base = h.engine.addImage('BaseImage', { template: TEMPLATE });
    const j = await postJson(`${h.base}/target_images`, { target_image: { target: 'ec2', base_image_id: base.id } });
    expect(j.status).toBe(202);
    expect(j.body.target_image).toMatchObject({ _type: 'TargetImage', base_image_id: base.id, target: 'ec2' });
    const f = await postForm(`${h.base}/target_images`, { target: 'openstack-kvm', base_image_id: base.id });
    expect(f.status).toBe(202);
    expect(f.body.target_image.target).toBe('openstack-kvm');
    expect(h.engine.calls.filter((c) => c.method === 'submitTargetImage').map((c) => c.args[0])).toEqual([
      { target: 'ec2', baseImageId: base.id },
      { target: 'openstack-kvm', baseImageId: base.id },
    ]);
  });

  it('accepts a target image from a template', async () => {
    const r = await postJson(`${h.base}/target_images`, { target_image: { target: 'vsphere', template: TEMPLATE, parameters: { vsphere_vmdk_format: 'streaming' } } });
    expect(r.status).toBe(202);
    expect(h.engine.calls.find((c) => c.method === 'submitTargetImage')!.args[0]).toEqual({
      target: 'vsphere',
      template: TEMPLATE,
      parameters: { vsphere_vmdk_format: 'streaming' },
    });
  });

  it('refuses a target image with both or neither of base_image_id and template (400 bad_request)', async () => {
    const base = h.engine.addImage('BaseImage', { template: TEMPLATE });
    const both = await postJson(`${h.base}/target_images`, { target_image: { target: 'ec2', base_image_id: base.id, template: TEMPLATE } });
    expect(both.status).toBe(400);
    expect(both.body.error.code).toBe('bad_request');
    const neither = await postJson(`${h.base}/target_images`, { target_image: { target: 'ec2' } });
    expect(neither.status).toBe(400);
    expect(neither.body.error.code).toBe('bad_request');
    const nestedWithTemplate = await postJson(`${h.base}/base_images/${base.id}/target_images`, { target_image: { target: 'ec2', template: TEMPLATE } });
    expect(nestedWithTemplate.status).toBe(400);
    expect(h.engine.calls.some((c) => c.method === 'submitTargetImage')).toBe(false);
  });

  it('takes the parent id from the path in the nested forms', async () => {
    const base = h.engine.addImage('BaseImage', { template: TEMPLATE });
    const t = await postJson(`${h.base}/base_images/${base.id}/target_images`, { target_image: { target: 'ec2' } });
    expect(t.status).toBe(202);
    expect(t.body.target_image.base_image_id).toBe(base.id);
    const targetId = t.body.target_image.id;

    const p = await postJson(`${h.base}/target_images/${targetId}/provider_images`, { provider_image: { target: 'ec2', provider: 'ec2-us-east-1', credentials: CREDENTIALS } });
    expect(p.status).toBe(202);
    expect(p.body.provider_image.target_image_id).toBe(targetId);

    const deep = await postForm(`${h.base}/base_images/${base.id}/target_images/${targetId}/provider_images`, { target: 'ec2', provider: 'ec2-us-west-2', credentials: CREDENTIALS });
    expect(deep.status).toBe(202);
    expect(deep.body.provider_image.target_image_id).toBe(targetId);
  });

  it('refuses a body parent id that contradicts the path', async () => {
    const base = h.engine.addImage('BaseImage', { template: TEMPLATE });
    const other = h.engine.addImage('BaseImage', { template: TEMPLATE });
    const r = await postJson(`${h.base}/base_images/${base.id}/target_images`, { target_image: { target: 'ec2', base_image_id: other.id } });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('bad_request');
  });

  it('refuses a nested POST under a parent that does not exist or does not belong (404)', async () => {
    const { target } = family();
    const other = h.engine.addImage('BaseImage', { template: TEMPLATE });
    const r = await postJson(`${h.base}/base_images/${other.id}/target_images/${target.id}/provider_images`, {
      provider_image: { target: 'ec2', provider: 'ec2-us-east-1', credentials: CREDENTIALS },
    });
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('image_not_found');
  });

  it('accepts a provider image with a provider document and JSON credentials, passing them as text', async () => {
    const { target } = family();
    const r = await postJson(`${h.base}/provider_images`, {
      provider_image: { target: 'ec2', provider: { name: 'ec2-us-east-1', ami_type: 'ebs' }, credentials: { access_key: 'AKIA-SECRET', secret_access_key: 'VERY-SECRET' }, target_image_id: target.id },
    });
    expect(r.status).toBe(202);
    const req = h.engine.calls.find((c) => c.method === 'submitProviderImage')!.args[0] as Record<string, unknown>;
    expect(JSON.parse(req.provider as string)).toEqual({ name: 'ec2-us-east-1', ami_type: 'ebs' });
    expect(JSON.parse(req.credentials as string)).toEqual({ access_key: 'AKIA-SECRET', secret_access_key: 'VERY-SECRET' });
    expect(JSON.stringify(r.body)).not.toContain('SECRET');
  });

  it('accepts a provider image from a template (original form body with XML credentials)', async () => {
    const r = await postForm(`${h.base}/provider_images`, { target: 'ec2', provider: 'ec2-us-east-1', credentials: CREDENTIALS, template: TEMPLATE });
    expect(r.status).toBe(202);
    expect(h.engine.calls.find((c) => c.method === 'submitProviderImage')!.args[0]).toEqual({ target: 'ec2', provider: 'ec2-us-east-1', credentials: CREDENTIALS, template: TEMPLATE });
    expect(JSON.stringify(r.body)).not.toContain('SECRET');
  });

  it.each([
    ['provider_image without credentials', 'provider_images', { provider_image: { target: 'ec2', provider: 'ec2-us-east-1', template: TEMPLATE } }],
    ['provider_image without provider', 'provider_images', { provider_image: { target: 'ec2', credentials: CREDENTIALS, template: TEMPLATE } }],
    ['provider_image without target', 'provider_images', { provider_image: { provider: 'p', credentials: CREDENTIALS, template: TEMPLATE } }],
    ['provider_image with neither parent nor template', 'provider_images', { provider_image: { target: 'ec2', provider: 'p', credentials: CREDENTIALS } }],
    ['target_image without target', 'target_images', { target_image: { template: TEMPLATE } }],
    ['base_image without template', 'base_images', { base_image: { parameters: {} } }],
    ['a template that is not a string', 'base_images', { base_image: { template: 42 } }],
    ['parameters that are not an object', 'base_images', { base_image: { template: TEMPLATE, parameters: [1, 2] } }],
    ['a body without its wrapper', 'base_images', { template: TEMPLATE }],
    ['a body that is not an object', 'base_images', [1, 2, 3]],
  ])('refuses %s with 400 bad_request', async (_what, collection, body) => {
    const r = await postJson(`${h.base}/${collection}`, body);
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('bad_request');
    expect(typeof r.body.error.message).toBe('string');
  });

  it('accepts form bodies with a charset and JSON bodies with a +json type', async () => {
    const f = await getJson(`${h.base}/base_images`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' },
      body: new URLSearchParams({ template: TEMPLATE }).toString(),
    });
    expect(f.status).toBe(202);
    const j = await getJson(`${h.base}/base_images`, { method: 'POST', headers: { 'content-type': 'application/vnd.imagefactory+json' }, body: JSON.stringify({ base_image: { template: TEMPLATE } }) });
    expect(j.status).toBe(202);
  });

  it('refuses form-encoded parameters that are not a JSON object', async () => {
    const r = await postForm(`${h.base}/base_images`, { template: TEMPLATE, parameters: '{not json' });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('bad_request');
  });

  it('refuses a POST without a body', async () => {
    const r = await getJson(`${h.base}/base_images`, { method: 'POST' });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('bad_request');
  });

  it('answers an invalid template as the original did: 202 with the image, FAILED at once with the precise error', async () => {
    const r = await postJson(`${h.base}/base_images`, { base_image: { template: '<nottemplate/>', parameters: { a: 1 } } });
    expect(r.status).toBe(202);
    expect(r.headers.get('preference-applied')).toBeNull();
    expect(r.body.base_image).toMatchObject({
      _type: 'BaseImage',
      status: 'FAILED',
      template: '<nottemplate/>',
      parameters: { a: 1 },
      status_detail: { error: 'line 1, col 1: the document is not a <template>', error_code: 'template_invalid', error_details: { line: 1, column: 1 } },
    });
    expect(h.engine.calls.find((c) => c.method === 'submitBaseImage')!.args[1]).toEqual({ invalidTemplate: 'fail' });
    const t = await postForm(`${h.base}/target_images`, { target: 'ec2', template: 'not a template' });
    expect([t.status, t.body.target_image.status, t.body.target_image.target]).toEqual([202, 'FAILED', 'ec2']);
  });

  it.each(['handling=strict', 'respond-async, handling=strict', 'wait=10; x, HANDLING = "strict"'])('answers an invalid template 400 at once to a client that asks for it (Prefer: %s)', async (prefer) => {
    const r = await postJson(`${h.base}/base_images`, { base_image: { template: '<nottemplate/>' } }, { headers: { 'content-type': 'application/json', prefer } });
    expect(r.status).toBe(400);
    expect(r.body.error).toEqual({ code: 'template_invalid', message: 'line 1, col 1: the document is not a <template>', details: { line: 1, column: 1 } });
    expect(h.engine.images.size).toBe(0);
    const ok = await postJson(`${h.base}/base_images`, { base_image: { template: TEMPLATE } }, { headers: { 'content-type': 'application/json', prefer } });
    expect(ok.status).toBe(202);
    expect(ok.headers.get('preference-applied')).toBe('handling=strict');
  });
});

describe('GET detail', () => {
  it('shows every field of a base image, with extensions', async () => {
    const { base } = family();
    const r = await getJson(`${h.base}/base_images/${base.id}`);
    expect(r.status).toBe(200);
    const image = r.body.base_image;
    expect(Object.keys(image).sort()).toEqual([...COMMON_KEYS, 'target_images'].sort());
    expect(image).toMatchObject({
      _type: 'BaseImage',
      id: base.id,
      href: `${h.base}/base_images/${base.id}`,
      status: 'COMPLETE',
      percent_complete: 100,
      status_detail: { activity: base.activity, error: null, error_code: null, error_details: null },
      icicle: null,
      parameters: {},
      properties: {},
      phase: 'complete',
      created: base.created,
      updated: base.updated,
      transitions_href: `${h.base}/base_images/${base.id}/transitions`,
    });
  });

  it('shows the relations of target and provider images, and embeds the children as the original did', async () => {
    const { base, target, provider } = family();
    const summary = (i: { kind: string; id: string; status: string; percentComplete: number }, collection: string) => ({ _type: i.kind, id: i.id, href: `${h.base}/${collection}/${i.id}`, status: i.status, percent_complete: i.percentComplete });
    const b = (await getJson(`${h.base}/base_images/${base.id}`)).body.base_image;
    expect(b.target_images).toEqual({ target_images: [{ target_image: summary(target, 'target_images') }] });
    const t = (await getJson(`${h.base}/target_images/${target.id}`)).body.target_image;
    expect(Object.keys(t).sort()).toEqual([...COMMON_KEYS, 'base_image_id', 'target', 'base_image', 'provider_images'].sort());
    expect(t).toMatchObject({ _type: 'TargetImage', base_image_id: base.id, target: 'ec2', phase: 'converting', percent_complete: 40 });
    expect(t.base_image).toEqual(summary(base, 'base_images'));
    expect(t.provider_images).toEqual({ provider_images: [{ provider_image: summary(provider, 'provider_images') }] });
    const p = (await getJson(`${h.base}/provider_images/${provider.id}`)).body.provider_image;
    expect(Object.keys(p).sort()).toEqual([...COMMON_KEYS, 'target_image_id', 'target', 'provider', 'identifier_on_provider', 'provider_account_identifier', 'target_image'].sort());
    expect(p.target_image).toEqual(summary(target, 'target_images'));
    expect(p).toMatchObject({
      _type: 'ProviderImage',
      target_image_id: target.id,
      target: 'ec2',
      provider: 'ec2-us-east-1',
      identifier_on_provider: 'ami-0123',
      provider_account_identifier: '1234',
    });
  });

  it('shows a failure as status_detail.error (message) with error_code and error_details', async () => {
    const failed = h.engine.addImage('BaseImage', {
      status: 'FAILED',
      phase: 'failed',
      activity: 'Base Image build failed with exception',
      error: { code: 'install_stalled', message: 'no disk activity for 300 s', details: { seconds: 300 } },
    });
    const r = await getJson(`${h.base}/base_images/${failed.id}`);
    expect(r.body.base_image.status_detail).toEqual({
      activity: 'Base Image build failed with exception',
      error: 'no disk activity for 300 s',
      error_code: 'install_stalled',
      error_details: { seconds: 300 },
    });
  });

  it('masks the template’s rootpw in every response', async () => {
    const created = await postJson(`${h.base}/base_images`, { base_image: { template: TEMPLATE } });
    expect(created.body.base_image.template).toContain('<rootpw>********</rootpw>');
    expect(JSON.stringify(created.body)).not.toContain('s3cr3t-pw');
    const { target, provider, base } = family();
    for (const url of [
      `${h.base}/base_images/${created.body.base_image.id}`,
      `${h.base}/base_images/${base.id}`,
      `${h.base}/target_images/${target.id}`,
      `${h.base}/provider_images/${provider.id}`,
      `${h.base}/base_images/${base.id}/target_images/${target.id}`,
    ]) {
      const r = await getJson(url);
      expect(r.status).toBe(200);
      const text = JSON.stringify(r.body);
      expect(text).toContain('<rootpw>********</rootpw>');
      expect(text).not.toContain('s3cr3t-pw');
    }
    const cancelled = await getJson(`${h.base}/target_images/${target.id}/cancel`, { method: 'POST' });
    expect(JSON.stringify(cancelled.body)).not.toContain('s3cr3t-pw');
  });

  it('masks passwords in callback URLs and secret-named parameters', async () => {
    const image = h.engine.addImage('BaseImage', { parameters: { callbacks: ['https://bob:hunter2@example.org/hook'], ec2_secret_key: 'xyz', memory: 4 } });
    const r = await getJson(`${h.base}/base_images/${image.id}`);
    expect(r.body.base_image.parameters).toEqual({ callbacks: ['https://bob:********@example.org/hook'], ec2_secret_key: '********', memory: 4 });
  });

  it('answers under the nested paths when the image belongs there, 404 otherwise', async () => {
    const { base, target, provider } = family();
    const other = h.engine.addImage('BaseImage', { template: TEMPLATE });
    const ok = [
      `${h.base}/base_images/${base.id}/target_images/${target.id}`,
      `${h.base}/target_images/${target.id}/provider_images/${provider.id}`,
      `${h.base}/base_images/${base.id}/target_images/${target.id}/provider_images/${provider.id}`,
    ];
    for (const url of ok) {
      const r = await getJson(url);
      expect(r.status, url).toBe(200);
    }
    const nested = await getJson(ok[0]!);
    expect(nested.body.target_image.id).toBe(target.id);
    expect(nested.body.target_image.href).toBe(`${h.base}/target_images/${target.id}`);
    for (const url of [
      `${h.base}/base_images/${other.id}/target_images/${target.id}`,
      `${h.base}/base_images/${other.id}/target_images/${target.id}/provider_images/${provider.id}`,
      `${h.base}/target_images/${base.id}/provider_images/${provider.id}`,
    ]) {
      const r = await getJson(url);
      expect(r.status, url).toBe(404);
      expect(r.body.error.code).toBe('image_not_found');
    }
  });

  it('answers 404 image_not_found for an unknown id or an id of another kind', async () => {
    const { target } = family();
    for (const url of [`${h.base}/base_images/nope`, `${h.base}/base_images/${target.id}`, `${h.base}/provider_images/${target.id}`]) {
      const r = await getJson(url);
      expect(r.status).toBe(404);
      expect(r.body.error.code).toBe('image_not_found');
    }
  });
});

describe('DELETE', () => {
  it('answers 204 and asks the engine to delete', async () => {
    const image = h.engine.addImage('BaseImage');
    const res = await fetch(`${h.base}/base_images/${image.id}`, { method: 'DELETE' });
    expect(res.status).toBe(204);
    expect(await res.text()).toBe('');
    expect(h.engine.calls.find((c) => c.method === 'deleteImage')!.args).toEqual([image.id, {}]);
  });

  it('refuses an image with children (409 conflict) unless cascade=true', async () => {
    const { base, target, provider } = family();
    const refused = await getJson(`${h.base}/base_images/${base.id}`, { method: 'DELETE' });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('conflict');
    expect(refused.body.error.details.children).toEqual([target.id]);
    const res = await fetch(`${h.base}/base_images/${base.id}?cascade=true`, { method: 'DELETE' });
    expect(res.status).toBe(204);
    expect(h.engine.images.has(provider.id)).toBe(false);
  });

  it('refuses a cascade value that is not a boolean', async () => {
    const image = h.engine.addImage('BaseImage');
    const r = await getJson(`${h.base}/base_images/${image.id}?cascade=maybe`, { method: 'DELETE' });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('bad_request');
  });

  it('passes a provider image’s provider, credentials and target from a JSON body', async () => {
    const { provider } = family();
    const res = await fetch(`${h.base}/provider_images/${provider.id}`, {
      method: 'DELETE',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ provider: 'ec2-us-east-1', credentials: CREDENTIALS, target: 'ec2' }),
    });
    expect(res.status).toBe(204);
    expect(h.engine.calls.find((c) => c.method === 'deleteImage')!.args).toEqual([provider.id, { provider: 'ec2-us-east-1', credentials: CREDENTIALS, target: 'ec2' }]);
  });

  it('passes them from the query, and from a wrapped body', async () => {
    const { provider, target } = family();
    const q = new URLSearchParams({ provider: 'ec2-us-east-1', credentials: CREDENTIALS, target: 'ec2' });
    expect((await fetch(`${h.base}/target_images/${target.id}/provider_images/${provider.id}?${q}`, { method: 'DELETE' })).status).toBe(204);
    expect(h.engine.calls.find((c) => c.method === 'deleteImage')!.args[1]).toEqual({ provider: 'ec2-us-east-1', credentials: CREDENTIALS, target: 'ec2' });
    expect(h.logs.join('\n')).not.toContain('SECRET');

    const other = h.engine.addImage('ProviderImage', { targetImageId: target.id });
    const res = await fetch(`${h.base}/provider_images/${other.id}`, {
      method: 'DELETE',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ provider_image: { provider: 'ec2-us-east-1', credentials: CREDENTIALS, target: 'ec2' } }),
    });
    expect(res.status).toBe(204);
    expect(h.engine.calls.filter((c) => c.method === 'deleteImage')[1]!.args[1]).toEqual({ provider: 'ec2-us-east-1', credentials: CREDENTIALS, target: 'ec2' });
  });

  it('does not pass provider fields for other kinds', async () => {
    const image = h.engine.addImage('BaseImage');
    await fetch(`${h.base}/base_images/${image.id}?provider=x&cascade=1`, { method: 'DELETE' });
    expect(h.engine.calls.find((c) => c.method === 'deleteImage')!.args[1]).toEqual({ cascade: true });
  });

  it('answers 404 for an unknown image and under a wrong nested path', async () => {
    const { target } = family();
    const other = h.engine.addImage('BaseImage');
    expect((await getJson(`${h.base}/target_images/nope`, { method: 'DELETE' })).body.error.code).toBe('image_not_found');
    const r = await getJson(`${h.base}/base_images/${other.id}/target_images/${target.id}`, { method: 'DELETE' });
    expect(r.status).toBe(404);
    expect(h.engine.images.has(target.id)).toBe(true);
  });
});

describe('build extensions', () => {
  it('POST …/cancel answers 202 with the image; a final build is a 409 conflict', async () => {
    const { target, base } = family();
    const r = await getJson(`${h.base}/target_images/${target.id}/cancel`, { method: 'POST' });
    expect(r.status).toBe(202);
    expect(r.body.target_image).toMatchObject({ id: target.id, phase: 'cancelling' });
    expect(h.engine.calls.some((c) => c.method === 'cancel' && c.args[0] === target.id)).toBe(true);
    const nested = await getJson(`${h.base}/base_images/${base.id}/target_images/${target.id}/cancel`, { method: 'POST' });
    expect(nested.status).toBe(202);
    const done = await getJson(`${h.base}/base_images/${base.id}/cancel`, { method: 'POST' });
    expect(done.status).toBe(409);
    expect(done.body.error.code).toBe('conflict');
  });

  it('GET …/transitions lists {from,to,event,at}, oldest first', async () => {
    const image = h.engine.addImage('BaseImage');
    h.engine.transition(image.id, 'queued', { event: 'SUBMIT' });
    h.engine.transition(image.id, 'validating', { event: 'START', status: 'BUILDING' });
    const r = await getJson(`${h.base}/base_images/${image.id}/transitions`);
    expect(r.status).toBe(200);
    expect(r.body).toHaveLength(2);
    expect(Object.keys(r.body[0]).sort()).toEqual(['at', 'event', 'from', 'to']);
    expect(r.body.map((t: any) => [t.from, t.to, t.event])).toEqual([
      [null, 'queued', 'SUBMIT'],
      ['queued', 'validating', 'START'],
    ]);
  });

  it('GET …/machine answers the engine’s machine view', async () => {
    const { provider, target, base } = family();
    const r = await getJson(`${h.base}/base_images/${base.id}/target_images/${target.id}/provider_images/${provider.id}/machine`);
    expect(r.status).toBe(200);
    expect(r.body).toEqual(h.engine.machine(provider.id));
    expect(r.body.value).toBe('complete');
  });
});

describe('plugins', () => {
  it('lists plugins with _type, id and href', async () => {
    const r = await getJson(`${h.base}/plugins`);
    expect(r.status).toBe(200);
    expect(r.body.plugins).toHaveLength(3);
    expect(r.body.plugins[0]).toEqual({ ...h.engine.pluginList[0], _type: 'plugin', id: 'debian', href: `${h.base}/plugins/debian` });
    expect(r.body.plugins[2]).toMatchObject({ id: 'broken', error: 'could not load: missing module' });
  });

  it('shows one plugin, or 404 plugin_not_found', async () => {
    const r = await getJson(`${h.base}/plugins/ec2`);
    expect(r.body).toEqual({ plugin: { ...h.engine.pluginList[1], _type: 'plugin', id: 'ec2', href: `${h.base}/plugins/ec2` } });
    const missing = await getJson(`${h.base}/plugins/nope`);
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('plugin_not_found');
  });
});
