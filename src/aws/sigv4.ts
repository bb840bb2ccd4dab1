/**
 * AWS Signature Version 4 for JSON-protocol POSTs, with node:crypto only: what the Lambdas need to call
 * SQS, DynamoDB and Secrets Manager without the AWS SDK (src/aws/json-client.ts). Checked against the AWS SigV4 test suite
 * and the SDK's own signer (test/unit/sigv4.test.ts).
 */
import { createHash, createHmac } from 'node:crypto';

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Credentials from the environment, as Lambda provides them. */
export function envCredentials(env: NodeJS.ProcessEnv = process.env): AwsCredentials {
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) throw new Error('no AWS credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are not set');
  return { accessKeyId, secretAccessKey, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) };
}

const hex = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');
const hmac = (key: Buffer | string, s: string): Buffer => createHmac('sha256', key).update(s).digest();

/** SigV4 for one POST with a body; returns the headers to send (signing key cached per day). */
export class SigV4 {
  private keyDate = '';
  private keySecret = '';
  private key: Buffer = Buffer.alloc(0);

  constructor(
    private readonly region: string,
    private readonly service: string,
  ) {}

  sign(creds: AwsCredentials, host: string, path: string, headers: Record<string, string>, body: string | Buffer, now = new Date()): Record<string, string> {
    const amzDate = now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, ''); // 20261122T173400Z
    const date = amzDate.slice(0, 8);
    const all: Record<string, string> = { ...headers, host, 'x-amz-date': amzDate };
    if (creds.sessionToken) all['x-amz-security-token'] = creds.sessionToken;
    const names = Object.keys(all)
      .map((n) => n.toLowerCase())
      .sort();
    const lower: Record<string, string> = {};
    for (const [k, v] of Object.entries(all)) lower[k.toLowerCase()] = v.trim().replace(/\s+/g, ' ');
    const signedHeaders = names.join(';');
    const canonical = `POST\n${path}\n\n${names.map((n) => `${n}:${lower[n]}\n`).join('')}\n${signedHeaders}\n${hex(body)}`;
    const scope = `${date}/${this.region}/${this.service}/aws4_request`;
    const toSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${hex(canonical)}`;
    if (this.keyDate !== date || this.keySecret !== creds.secretAccessKey) {
      this.key = hmac(hmac(hmac(hmac(`AWS4${creds.secretAccessKey}`, date), this.region), this.service), 'aws4_request');
      this.keyDate = date;
      this.keySecret = creds.secretAccessKey;
    }
    const signature = createHmac('sha256', this.key).update(toSign).digest('hex');
    delete all.host; // node sets Host itself from the request options
    all.authorization = `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
    return all;
  }
}

