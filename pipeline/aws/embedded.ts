/**
 * The embedded AWS-compatible endpoint for running with no AWS account: SQS from `fauxqs`
 * (in memory) and S3 from `s3rver` (objects as files under `<dataDir>/s3`, so inputs and results
 * survive a restart). Both listen on loopback only.
 *
 * s3rver builds ListObjectsV2 continuation tokens with DES, which OpenSSL 3 only offers through
 * its legacy provider: the process hosting it must run with `--openssl-legacy-provider` (the
 * `endpoint` script and the test runner do) or listings past one page fail.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { buildApp } from 'fauxqs';
import S3rver from 's3rver';

export interface EmbeddedEndpointOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly sqsPort: number;
  readonly s3Port: number;
  readonly dataDir: string;
}

export interface EmbeddedEndpoint {
  readonly sqsUrl: string;
  readonly s3Url: string;
  readonly sqsPort: number;
  readonly s3Port: number;
  readonly s3Directory: string;
  stop(): Promise<void>;
}

export class EndpointError extends Error {
  override readonly name = 'EndpointError';
  constructor(message: string, readonly context: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export async function startEmbeddedEndpoint(options: EmbeddedEndpointOptions): Promise<EmbeddedEndpoint> {
  const s3Directory = join(options.dataDir, 's3');
  await mkdir(s3Directory, { recursive: true });

  const sqs = buildApp({ logger: false, host: options.host });
  let sqsPort: number;
  try {
    const address = await sqs.listen({ host: options.host, port: options.sqsPort });
    sqsPort = Number(new URL(address).port);
  } catch (cause) {
    throw new EndpointError(`embedded SQS could not listen on ${options.host}:${options.sqsPort}`, { ...options }, { cause });
  }

  const s3 = new S3rver({ address: options.host, port: options.s3Port, silent: true, directory: s3Directory, resetOnClose: false });
  let s3Port: number;
  try {
    s3Port = (await s3.run()).port;
  } catch (cause) {
    await sqs.close();
    throw new EndpointError(`embedded S3 could not listen on ${options.host}:${options.s3Port}`, { ...options }, { cause });
  }

  let stopped: Promise<void> | undefined;
  return {
    sqsUrl: `http://${options.host}:${sqsPort}`,
    s3Url: `http://${options.host}:${s3Port}`,
    sqsPort,
    s3Port,
    s3Directory,
    stop() {
      stopped ??= Promise.all([sqs.close(), s3.close()]).then(() => undefined);
      return stopped;
    },
  };
}
