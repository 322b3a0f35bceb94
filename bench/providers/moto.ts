// moto_server with credential checking on: moto checks signatures only once
// INITIAL_NO_AUTH_ACTION_COUNT actions have been served, so the setup spends exactly those on
// creating an IAM user with an allow-all policy and its access key, and every later request must be
// signed with that key (a wrong one is refused with 403, as AWS does).
import { join } from 'node:path';
import { freePort, startService, type Service } from './services.js';

export interface Moto extends Service {
  accessKeyId: string;
  secretAccessKey: string;
}

const SETUP_ACTIONS = 3;

export async function startMoto(dir: string): Promise<Moto> {
  const port = await freePort();
  const service = await startService({
    command: 'moto_server',
    args: ['-H', '127.0.0.1', '-p', String(port)],
    env: { INITIAL_NO_AUTH_ACTION_COUNT: String(SETUP_ACTIONS) },
    logFile: join(dir, 'moto.log'),
    port,
    readyPath: '/moto-api/',
  });
  try {
    await iam(service.url, { Action: 'CreateUser', UserName: 'factory' });
    const policy = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] });
    await iam(service.url, { Action: 'PutUserPolicy', UserName: 'factory', PolicyName: 'all', PolicyDocument: policy });
    const key = await iam(service.url, { Action: 'CreateAccessKey', UserName: 'factory' });
    const accessKeyId = /<AccessKeyId>([^<]+)</.exec(key)?.[1];
    const secretAccessKey = /<SecretAccessKey>([^<]+)</.exec(key)?.[1];
    if (!accessKeyId || !secretAccessKey) throw new Error(`moto created no access key: ${key.slice(0, 300)}`);
    return { ...service, accessKeyId, secretAccessKey };
  } catch (error) {
    await service.stop();
    throw error;
  }
}

/** An IAM query action, unsigned (moto serves the first actions without checking). */
async function iam(url: string, params: Record<string, string>): Promise<string> {
  const response = await fetch(url + '/', {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      // moto routes by the credential scope's service name.
      authorization: 'AWS4-HMAC-SHA256 Credential=SETUP/20240101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0',
    },
    body: new URLSearchParams({ ...params, Version: '2010-05-08' }).toString(),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`moto IAM ${params.Action}: HTTP ${response.status} ${text.slice(0, 300)}`);
  return text;
}
