import { EBSClient } from '@aws-sdk/client-ebs';
import { EC2Client } from '@aws-sdk/client-ec2';
import type { Ec2Access } from './access.js';

export interface Ec2Clients {
  ebs: EBSClient;
  ec2: EC2Client;
  /** Closes the clients' sockets. */
  destroy(): void;
}

/**
 * SDK clients for one push. Retries are ours (maxAttempts 1), and the SDK gets no logger: its
 * debug output would carry request details.
 */
export function ec2Clients(access: Ec2Access, parallelRequests: number): Ec2Clients {
  const common = {
    region: access.region,
    credentials: access.credentials,
    maxAttempts: 1,
    requestHandler: { connectionTimeout: 10_000, httpAgent: { maxSockets: parallelRequests + 2, keepAlive: true }, httpsAgent: { maxSockets: parallelRequests + 2, keepAlive: true } },
  };
  const ebs = new EBSClient({ ...common, ...(access.ebsEndpoint ? { endpoint: access.ebsEndpoint } : {}) });
  const ec2 = new EC2Client({ ...common, ...(access.endpoint ? { endpoint: access.endpoint } : {}) });
  return {
    ebs,
    ec2,
    destroy() {
      ebs.destroy();
      ec2.destroy();
    },
  };
}
