import { describe, expect, it } from 'vitest';
import { runDaemonCli } from '../../src/cli/imagefactoryd.js';
import { ConfigError, defaultConfig, isSecretName, loadConfig, redactConfig } from '../../src/config/index.js';
import { confFile, SECRETS, thrown } from './helpers.js';

const [consumerSecret, password, accessKey] = SECRETS as [string, string, string];

/** Runs the daemon command in-process and returns what it printed. */
async function cli(...argv: string[]) {
  let out = '';
  let err = '';
  const code = await runDaemonCli(argv, { out: { write: (s: string) => (out += s) }, err: { write: (s: string) => (err += s) } });
  return { code, out, err, all: out + err };
}

const expectNoSecret = (text: string) => {
  for (const s of SECRETS) expect(text).not.toContain(s);
  expect(text).not.toMatch(/s3cr3t|hunter2|AKIA/);
};

describe('secrets', () => {
  it('redaction replaces every clients value and secret-named manager arguments with ***', () => {
    const config = {
      ...defaultConfig(),
      clients: { app: consumerSecret, other: 'x' },
      image_manager_args: { storage_path: '/data', db_password: password, nested: { access_key: accessKey, region: 'eu' } },
    };
    const printed = redactConfig(config);
    expect(printed['clients']).toEqual({ app: '***', other: '***' });
    expect(printed['image_manager_args']).toEqual({ storage_path: '/data', db_password: '***', nested: { access_key: '***', region: 'eu' } });
    expectNoSecret(JSON.stringify(printed));
    expect(config.clients.app).toBe(consumerSecret); // the original is untouched
  });

  it('secret-looking names are recognized', () => {
    for (const n of ['password', 'db_pass', 'secret', 'api_key', 'token', 'credentials', 'auth', 'private_key', 'cert']) expect(isSecretName(n), n).toBe(true);
    for (const n of ['storage_path', 'region', 'host', 'user']) expect(isSecretName(n), n).toBe(false);
  });

  it('--print-config shows the consumer keys but never their secrets', async () => {
    const path = confFile({ clients: { app: consumerSecret }, image_manager_args: { storage_path: '/data', password } });
    const r = await cli('--print-config', '--config', path);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ clients: { app: '***' }, image_manager_args: { storage_path: '/data', password: '***' } });
    expectNoSecret(r.all);
  });

  it('wrong types of secret values are described by their type only', () => {
    const path = confFile({
      clients: { app: 12345678, ok: consumerSecret, empty: '' },
      image_manager_args: { storage_path: '', password },
    });
    const e = thrown(() => loadConfig({ configPath: path })) as ConfigError;
    expect(e.message.split('\n')).toEqual([
      `${path}: key "clients.app" must be a non-empty string, got a number`,
      `${path}: key "clients.empty" must be a non-empty string, got a string`,
      `${path}: key "image_manager_args.storage_path" must be a non-empty string, got ""`,
    ]);
    expect(e.message).not.toContain('12345678');
    expectNoSecret(e.message + JSON.stringify(e.problems));
  });

  it('a secret-holding key given a scalar is not echoed', () => {
    const e1 = thrown(() => loadConfig({ configPath: confFile({ clients: `app:${consumerSecret}` }) })) as ConfigError;
    expect(e1.message).toContain('key "clients" must be an object whose values are strings, got a string');
    const e2 = thrown(() => loadConfig({ configPath: confFile({ image_manager_args: `password=${password}` }) })) as ConfigError;
    expect(e2.message).toContain('key "image_manager_args" must be an object, got a string');
    expectNoSecret(e1.message + e2.message);
  });

  it('JSON syntax errors next to a secret do not quote the file', () => {
    for (const text of [
      `{"clients": {"app": ${consumerSecret}}}`,
      `{"clients": {"app": "${consumerSecret}" "b": 2}}`,
      `{"image_manager_args": {"password": "${password}", "x": tru, "padding-padding-padding": 1}}`,
      `{"clients": {"app": "${accessKey}\n"}}`,
    ]) {
      const e = thrown(() => loadConfig({ configPath: confFile(text) })) as ConfigError;
      expect(e.code).toBe('config_invalid_json');
      expect(e.message).toMatch(/invalid JSON at line \d+, column \d+: /);
      expectNoSecret(e.message);
    }
  });

  it('warnings about unknown keys name the key, never its value', () => {
    const { warnings } = loadConfig({ configPath: confFile({ oauth_secret: consumerSecret }) });
    expect(warnings).toHaveLength(1);
    expectNoSecret(warnings.join('\n'));
  });

  it('nothing the daemon prints for a bad or odd configuration contains a secret', async () => {
    const cases = [
      confFile({ clients: { app: consumerSecret }, timeout: 'abc', oauth_token: accessKey }),
      confFile({ clients: { app: 42 }, image_manager_args: { storage_path: 1, password } }),
      confFile(`{"clients": {"app": ${consumerSecret}`),
    ];
    for (const path of cases) {
      const r = await cli('--config', path);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/^imagefactoryd: /);
      expectNoSecret(r.all);
    }
    // A configuration that loads (with a warning) and a start that fails on its TLS file: nothing secret on the way.
    const ok = await cli('--config', confFile({ clients: { app: consumerSecret }, extra_password: password }), '--foreground', '--ssl_pem', '/nonexistent/daemon.pem');
    expect(ok.code).toBe(2);
    expect(ok.err).toContain('imagefactoryd: warning: ');
    expect(ok.err).toContain('imagefactoryd: cannot read the TLS PEM file /nonexistent/daemon.pem (--ssl_pem): it does not exist');
    expectNoSecret(ok.all);
  });
});
