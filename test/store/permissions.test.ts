import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newImageRecord } from '../../src/model/index.js';
import { BodyStore, Catalog } from '../../src/store/index.js';

/** The warehouse holds templates with root passwords and every build's output: nothing of it is readable by other users. */

let dir: string;
beforeEach(() => {
  dir = mkdtempSync('/var/tmp/h11-perm-');
  chmodSync(dir, 0o755);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const mode = (p: string) => statSync(p).mode & 0o777;

describe('modes of what the store creates', () => {
  it('creates the catalog 0600 in a 0700 directory, its WAL and shared-memory files too', () => {
    const storage = join(dir, 'storage');
    const catalog = Catalog.open(join(storage, 'catalog.sqlite'));
    catalog.insertImage(newImageRecord('11111111-1111-4111-8111-111111111111', 'BaseImage', new Date(), { template: '<template/>' }));
    expect(mode(storage)).toBe(0o700);
    for (const f of readdirSync(storage)) expect([f, mode(join(storage, f))]).toEqual([f, 0o600]);
    expect(readdirSync(storage).sort()).toEqual(['catalog.sqlite', 'catalog.sqlite-shm', 'catalog.sqlite-wal', 'secret.key']);
    catalog.close();
  });

  it('narrows a catalog an older version left readable to all', () => {
    const file = join(dir, 'catalog.sqlite');
    Catalog.open(file).close();
    chmodSync(file, 0o644);
    writeFileSync(`${file}-wal`, '');
    chmodSync(`${file}-wal`, 0o644);
    Catalog.open(file).close();
    expect(mode(file)).toBe(0o600);
  });

  it('makes the storage and temp directories 0700 and frozen bodies 0400', () => {
    const bodies = new BodyStore(dir);
    bodies.ensureDir();
    expect(mode(dir)).toBe(0o700);
    expect(mode(join(dir, '.tmp'))).toBe(0o700);
    const id = '22222222-2222-4222-8222-222222222222';
    writeFileSync(bodies.pathFor(id), 'disk', { mode: 0o644 });
    bodies.freeze(id);
    expect(mode(bodies.pathFor(id))).toBe(0o400);
  });
});

describe('secrets at rest', () => {
  it('keeps the template and secret parameters sealed in the file, and gives them back in clear', () => {
    const file = join(dir, 'catalog.sqlite');
    const catalog = Catalog.open(file);
    const id = '33333333-3333-4333-8333-333333333333';
    const template = '<template><os><rootpw>Pw-in-the-catalog-1</rootpw></os><repositories><repository name="r"><url>http://u:Repo-pw-2@r.example/</url></repository></repositories></template>';
    const parameters = { install_script: 'd-i passwd/root-password password Install-pw-3', secret_parameters: ['license'], license: { key: 'License-4' }, memory: 2 };
    catalog.insertImage(newImageRecord(id, 'BaseImage', new Date(), { template, parameters }));
    catalog.updateImage(id, { parameters: { ...parameters, ec2_secret_key: 'Ec2-key-5' } });
    expect(catalog.getImage(id)).toMatchObject({ template, parameters: { ...parameters, ec2_secret_key: 'Ec2-key-5' } });
    catalog.close();

    const bytes = Buffer.concat(readdirSync(dir).map((f) => readFileSync(join(dir, f))));
    for (const secret of ['Pw-in-the-catalog-1', 'Repo-pw-2', 'Install-pw-3', 'License-4', 'Ec2-key-5']) expect(bytes.includes(secret), secret).toBe(false);
    expect(mode(join(dir, 'secret.key'))).toBe(0o600);

    // A reopened catalog reads them back with its key.
    const again = Catalog.open(file);
    expect(again.getImage(id)?.parameters).toMatchObject({ install_script: parameters.install_script, license: { key: 'License-4' } });
    again.close();
  });
});
