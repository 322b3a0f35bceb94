// A real Keystone (v3, fernet tokens, SQLite) and a real Glance (v2, keystone flavour, SQLite, file
// store) from Debian's packages, in the test's directory, on free ports. Keystone is bootstrapped
// with an admin, then a project `factory` with a member user and the catalog's image endpoint
// pointing at Glance; Glance validates tokens against Keystone (keystonemiddleware).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, startService, type Service } from '../../../bench/providers/services.js';

const run = promisify(execFile);

export interface OpenstackServices {
  keystone: Service;
  glance: Service;
  /** The pushing user's credentials (project `factory`, role member). */
  user: { username: string; password: string; project: string };
  /** An admin token, to look at Glance from outside the push. */
  adminToken: string;
  projectId: string;
  stop(): Promise<void>;
}

export async function startOpenstack(dir: string): Promise<OpenstackServices> {
  const adminPassword = `admin-${randomBytes(9).toString('hex')}`;
  const keystonePort = await freePort();
  const glancePort = await freePort();
  const keystoneUrl = `http://127.0.0.1:${keystonePort}/v3`;
  const glanceUrl = `http://127.0.0.1:${glancePort}`;

  const ks = join(dir, 'keystone');
  await mkdir(join(ks, 'fernet'), { recursive: true });
  await mkdir(join(ks, 'credential'), { recursive: true });
  const ksConf = join(ks, 'keystone.conf');
  await writeFile(
    ksConf,
    [
      '[DEFAULT]',
      `log_file = ${join(dir, 'keystone.log')}`,
      '[database]',
      `connection = sqlite:///${join(ks, 'keystone.sqlite')}`,
      '[fernet_tokens]',
      `key_repository = ${join(ks, 'fernet')}`,
      '[credential]',
      `key_repository = ${join(ks, 'credential')}`,
      '[token]',
      'provider = fernet',
      '',
    ].join('\n'),
  );
  const manage = (args: string[], env: Record<string, string> = {}) => run('keystone-manage', ['--config-file', ksConf, ...args], { env: { ...process.env, ...env }, timeout: 120_000 });
  await manage(['db_sync']);
  await manage(['fernet_setup', '--keystone-user', 'root', '--keystone-group', 'root']);
  await manage(['credential_setup', '--keystone-user', 'root', '--keystone-group', 'root']);
  await manage(['bootstrap', '--bootstrap-admin-url', keystoneUrl, '--bootstrap-public-url', keystoneUrl, '--bootstrap-region-id', 'RegionOne'], { OS_BOOTSTRAP_PASSWORD: adminPassword });
  const keystone = await startService({
    command: 'keystone-wsgi-public',
    args: ['--host', '127.0.0.1', '--port', String(keystonePort)],
    env: { OS_KEYSTONE_CONFIG_DIR: ks, OS_KEYSTONE_CONFIG_FILES: 'keystone.conf' },
    logFile: join(dir, 'keystone-wsgi.log'),
    port: keystonePort,
    readyPath: '/v3',
    readyTimeoutMs: 60_000,
  });

  let glance: Service | undefined;
  try {
    const adminToken = await token(keystoneUrl, 'admin', adminPassword, 'admin');
    const api = async (method: string, path: string, body?: unknown) => {
      const answer = await fetch(`${keystoneUrl}/${path}`, { method, headers: { 'x-auth-token': adminToken, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
      if (!answer.ok) throw new Error(`keystone ${method} ${path}: HTTP ${answer.status} ${await answer.text()}`);
      return answer.status === 204 ? {} : ((await answer.json()) as Record<string, { id: string }>);
    };
    const project = (await api('POST', 'projects', { project: { name: 'factory', domain_id: 'default' } })).project!.id;
    const user = { username: 'factory', password: `pw-${randomBytes(9).toString('hex')}`, project: 'factory' };
    const userId = (await api('POST', 'users', { user: { name: user.username, password: user.password, domain_id: 'default', default_project_id: project } })).user!.id;
    const roles = (await (await fetch(`${keystoneUrl}/roles?name=member`, { headers: { 'x-auth-token': adminToken } })).json()) as { roles: { id: string }[] };
    await api('PUT', `projects/${project}/users/${userId}/roles/${roles.roles[0]!.id}`);
    const service = (await api('POST', 'services', { service: { type: 'image', name: 'glance' } })).service!.id;
    await api('POST', 'endpoints', { endpoint: { service_id: service, interface: 'public', url: glanceUrl, region_id: 'RegionOne' } });

    glance = await startGlance(dir, 'glance', glancePort, { url: keystoneUrl, adminPassword });
    const started = glance;
    return {
      keystone,
      glance: started,
      user,
      adminToken,
      projectId: project,
      stop: async () => {
        await started.stop();
        await keystone.stop();
      },
    };
  } catch (error) {
    await glance?.stop();
    await keystone.stop();
    throw error;
  }
}

/**
 * A Glance API (SQLite, file store) in `dir/NAME`: with `keystone`, in the keystone flavour
 * validating tokens there; without, in the noauth flavour.
 */
export async function startGlance(dir: string, name: string, port: number, keystone?: { url: string; adminPassword: string }): Promise<Service> {
  const gl = join(dir, name);
  for (const sub of ['images', 'staging', 'tasks']) await mkdir(join(gl, sub), { recursive: true });
  const conf = join(gl, 'glance-api.conf');
  const lines = [
    '[DEFAULT]',
    'bind_host = 127.0.0.1',
    `bind_port = ${port}`,
    'workers = 1',
    `log_file = ${join(dir, `${name}.log`)}`,
    'enabled_backends = fs:file',
    '[database]',
    `connection = sqlite:///${join(gl, 'glance.sqlite')}`,
    '[paste_deploy]',
    `flavor = ${keystone ? 'keystone' : ''}`,
    'config_file = /etc/glance/glance-api-paste.ini',
    '[glance_store]',
    'default_backend = fs',
    '[fs]',
    `filesystem_store_datadir = ${join(gl, 'images')}`,
    '[os_glance_staging_store]',
    `filesystem_store_datadir = ${join(gl, 'staging')}`,
    '[os_glance_tasks_store]',
    `filesystem_store_datadir = ${join(gl, 'tasks')}`,
  ];
  if (keystone) {
    lines.push(
      '[keystone_authtoken]',
      `www_authenticate_uri = ${keystone.url}`,
      `auth_url = ${keystone.url}`,
      'auth_type = password',
      'interface = public',
      'username = admin',
      `password = ${keystone.adminPassword}`,
      'project_name = admin',
      'user_domain_name = Default',
      'project_domain_name = Default',
    );
  }
  await writeFile(conf, lines.join('\n') + '\n');
  await run('glance-manage', ['--config-file', conf, 'db_sync'], { timeout: 120_000 });
  return startService({ command: 'glance-api', args: ['--config-file', conf], logFile: join(dir, `${name}-api.out`), port, readyPath: '/', readyTimeoutMs: 60_000 });
}

async function token(keystoneUrl: string, username: string, password: string, project: string): Promise<string> {
  const answer = await fetch(`${keystoneUrl}/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: { methods: ['password'], password: { user: { name: username, domain: { name: 'Default' }, password } } },
        scope: { project: { name: project, domain: { name: 'Default' } } },
      },
    }),
  });
  const subject = answer.headers.get('x-subject-token');
  if (answer.status !== 201 || !subject) throw new Error(`keystone token: HTTP ${answer.status}`);
  return subject;
}
