/**
 * Photos already in S3 for the by-reference tests: a source bucket on the service's own endpoint,
 * filled with real sample photos (and whatever bad objects a test adds), as a user would with any S3
 * client; and a webhook receiver that checks each call's signature the way a receiver would.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { GroundTruth } from './model-fixtures.js';
import { mapLimit } from './service.js';

/** Creates `bucket` and puts each photo at `<prefix><file>`; returns the keys, in listing (key) order. */
export async function putPhotos(
  s3: S3Client,
  bucket: string,
  prefix: string,
  photos: readonly GroundTruth[],
): Promise<string[]> {
  await s3.send(new CreateBucketCommand({ Bucket: bucket })).catch((err: { name?: string }) => {
    if (err.name !== 'BucketAlreadyOwnedByYou' && err.name !== 'BucketAlreadyExists') throw err;
  });
  await mapLimit(photos, 16, async (p) =>
    s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: `${prefix}${p.file}`,
        Body: await readFile(p.path),
        ContentType: 'image/jpeg',
      }),
    ),
  );
  return photos.map((p) => `${prefix}${p.file}`).sort();
}

export async function putObject(s3: S3Client, bucket: string, key: string, body: Uint8Array | string): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
}

export interface WebhookCall {
  readonly event: string;
  readonly body: any;
  /** The X-Signature-256 header was the HMAC-SHA256 of the body with the secret. */
  readonly verified: boolean;
}

/** A webhook receiver on loopback: every call, its signature checked with `secret`; `status` decides the answer. */
export async function startWebhookReceiver(secret: string, status: (call: number) => number = () => 204) {
  const calls: WebhookCall[] = [];
  let count = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`);
      const given = Buffer.from(String(req.headers['x-signature-256'] ?? ''));
      const answer = status(++count);
      if (answer < 300) {
        calls.push({
          event: String(req.headers['x-event'] ?? ''),
          body: JSON.parse(raw.toString('utf8')),
          verified: given.length === expected.length && timingSafeEqual(given, expected),
        });
      }
      res.writeHead(answer).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/batches`,
    host: `127.0.0.1:${port}`,
    calls,
    /** Calls answered, successful or not. */
    get attempts() {
      return count;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
