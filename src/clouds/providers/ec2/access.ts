// Where and as whom an EC2 push talks: the region from the provider's name (`ec2-us-east-1`, as the
// original named its providers) or document, an optional endpoint for any EC2-compatible service
// (that is how the tests reach moto), and the keys from the credentials.
import { readCredentials, readProviderDocument, requireField, stringSetting } from '../documents.js';
import { ProviderError } from '../errors.js';
import { Secrets } from '../secrets.js';

export interface Ec2Access {
  region: string;
  /** EC2's endpoint, when not AWS's own. */
  endpoint?: string;
  /** The EBS direct APIs' endpoint; `endpoint` by default (moto serves both on one port). */
  ebsEndpoint?: string;
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Snapshot encryption asked for by the provider document (`encrypted`, `kms_key_arn`); the account's default otherwise. */
  encryption?: { encrypted: boolean; kmsKeyArn?: string };
  /** `account_number` of the original's credentials, when given. */
  accountNumber?: string;
  /** Everything secret in the credentials, for scrubbing. */
  secrets: Secrets;
}

const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;

/**
 * The provider is `ec2-REGION` (or `@ec2-REGION`), or a JSON document such as
 * `{"name": "ec2-us-east-1", "endpoint": "http://127.0.0.1:5000"}` or `{"region": …, "endpoint": …}`.
 */
export function ec2Access(provider: string, credentials: string): Ec2Access {
  const secrets = new Secrets();
  const doc = readProviderDocument(provider);
  const region = stringSetting(doc.fields, 'region') ?? regionOfName(doc.name);
  if (!region || !REGION.test(region)) {
    throw new ProviderError('invalid_provider', `the EC2 provider must be named ec2-REGION (such as ec2-us-east-1) or give a "region"; got ${JSON.stringify(doc.name ?? region ?? '')}`);
  }
  const endpoint = stringSetting(doc.fields, 'endpoint');
  const ebsEndpoint = stringSetting(doc.fields, 'ebs_endpoint') ?? endpoint;
  for (const url of [endpoint, ebsEndpoint]) {
    if (url && !/^https?:\/\/[^\s/]+/.test(url)) throw new ProviderError('invalid_provider', `the provider's endpoint is not an http(s) URL`);
  }

  const kmsKeyArn = stringSetting(doc.fields, 'kms_key_arn');
  const encrypted = doc.fields.encrypted;
  if (encrypted !== undefined && typeof encrypted !== 'boolean') throw new ProviderError('invalid_provider', 'the provider\'s "encrypted" must be true or false');
  const encryption = encrypted !== undefined || kmsKeyArn ? { encrypted: encrypted !== false, ...(kmsKeyArn ? { kmsKeyArn } : {}) } : undefined;

  let fields: Record<string, string>;
  try {
    fields = readCredentials(credentials, 'ec2');
  } catch (error) {
    throw error instanceof ProviderError ? error : new ProviderError('invalid_credentials', 'the EC2 credentials cannot be read');
  }
  // Every field is secret but the account number, which the original showed as
  // `provider_account_identifier` (the X.509 `certificate` and `key` of old EC2 tools included).
  secrets.add(...Object.entries(fields).filter(([name]) => name !== 'account_number').map(([, value]) => value));
  const accessKeyId = requireField(fields, ['access_key', 'access_key_id', 'accessKeyId'], 'invalid_credentials', 'the EC2 credentials');
  const secretAccessKey = requireField(fields, ['secret_access_key', 'secretAccessKey'], 'invalid_credentials', 'the EC2 credentials');
  const sessionToken = fields.session_token ?? fields.sessionToken;
  const accountNumber = fields.account_number;
  return {
    region,
    ...(endpoint ? { endpoint } : {}),
    ...(ebsEndpoint ? { ebsEndpoint } : {}),
    credentials: { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) },
    ...(encryption ? { encryption } : {}),
    ...(accountNumber ? { accountNumber } : {}),
    secrets,
  };
}

function regionOfName(name: string | undefined): string | undefined {
  const m = name ? /^ec2-(.+)$/.exec(name) : null;
  return m?.[1];
}
