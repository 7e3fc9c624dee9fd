/**
 * The one owner of what is stored. The input bucket holds each upload at `<request id>/<safe name>`
 * with its metadata; the output bucket holds, per request, the full result or the failure that
 * ended it (`results/<id>.json`), the classic `<name>` → `<name>,<label>` object for uploads of the
 * classic protocol, the dead-letter record (`dead-letters/<id>.json`) of a request that failed
 * every delivery, and the result cache's entries (`cache/<fingerprint>/<sha256>.json`). Keys
 * (keys.ts) and record types are used from here only: ingest, fetch, persist, the dead-letter
 * watcher, job status, the result cache and replay all call this.
 *
 * Calls are single attempts; the stages wrap them in their retry budgets.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { isNoSuchBucket, isNoSuchKey, isPreconditionFailed } from '../lib/aws/errors.js';
import type { Config } from '../lib/config.js';
import type { AnswerError } from './contract/errors.js';
import {
  cacheKey,
  classicAnswer,
  DEAD_LETTERS_PREFIX,
  deadLetterKey,
  decodeNameFromMetadata,
  encodeNameForMetadata,
  inputKey,
  parseInputKey,
  RECENT_PREFIX,
  RESULTS_PREFIX,
  recentKey,
  requestIdOfResultKey,
  requestRecordKey,
  resultKey,
  sanitizeFileName,
  stem,
} from './contract/keys.js';
import {
  type ClassificationResult,
  deadLetterError,
  type ImageRequest,
  type Protocol,
  protocolOf,
} from './contract/messages.js';

/** What `results/<id>.json` holds for a request that failed for good. */
export interface FailureRecord {
  readonly id: string;
  readonly file: string;
  readonly error: AnswerError;
  readonly completedAt: string;
}

/** A request that failed every delivery, as the dead-letter watcher found it. */
export interface DeadLetterRecord {
  readonly request: ImageRequest;
  readonly receiveCount: number;
  readonly deadAt: string;
}

/** A request classified by reference: what its job is while no result exists (`requests/<id>.json`). */
export interface RequestRecord {
  readonly id: string;
  readonly file: string;
  /** `s3://bucket/key`. */
  readonly source: string;
  readonly createdAt: string;
}

/** What the list of recent results shows of one (`recent/<newest first>_<id>.json`). */
export type RecentRecord =
  | {
      readonly id: string;
      readonly file: string;
      readonly completedAt: string;
      readonly status: 'done';
      readonly label: string;
      readonly score: number;
      readonly model: string;
    }
  | {
      readonly id: string;
      readonly file: string;
      readonly completedAt: string;
      readonly status: 'failed';
      readonly error: { readonly code: string; readonly message: string };
    };

export type JobStatus =
  | { readonly id: string; readonly status: 'done'; readonly result: ClassificationResult }
  | { readonly id: string; readonly status: 'failed'; readonly file: string; readonly error: AnswerError }
  | { readonly id: string; readonly status: 'pending'; readonly file: string };

/** Inputs and which of them already have a result or a dead-letter record (for replay). */
export interface Inventory {
  /** Inputs (ours: `<requestId>/<file>`), as requests nobody waits for. */
  readonly inputs: readonly ImageRequest[];
  /** Request ids that have a `results/<id>.json`. */
  readonly finished: ReadonlySet<string>;
  /** Request ids recorded as dead letters. */
  readonly deadLetters: ReadonlySet<string>;
  /** Keys in the input bucket that are not ours, skipped. */
  readonly foreign: readonly string[];
}

export interface NewInput {
  readonly requestId: string;
  /** The client's file name, exactly as sent. */
  readonly file: string;
  readonly bytes: Buffer;
  readonly contentType: string;
  readonly protocol: Protocol;
}

export interface StoredInput {
  readonly bytes: Buffer;
  readonly protocol: Protocol;
  /** The client's file name from the metadata (undefined for inputs stored before it was kept). */
  readonly file: string | undefined;
}

/** What a result cache entry keeps (submit/cache.ts): the answer, without what belongs to one request. */
export type CachedResult = Omit<ClassificationResult, 'id' | 'file' | 'timings' | 'completedAt' | 'cachedFrom'> & {
  /** The request whose classification this is. */
  readonly from: string;
};

/** A record and the version (ETag) it was read at. */
export interface Versioned<T> {
  readonly value: T;
  readonly etag: string;
}

export interface Buckets {
  readonly input: string;
  readonly output: string;
}

export class Store {
  constructor(
    private readonly s3: S3Client,
    readonly buckets: Buckets,
    /** Between the name and the label in a classic output (CLASSIC_SEPARATOR). */
    private readonly classicSeparator = ',',
  ) {}

  /** The store of a configuration's buckets. */
  static of(s3: S3Client, config: Pick<Config, 'names' | 'classic'>): Store {
    return new Store(
      s3,
      { input: config.names.inputBucket, output: config.names.outputBucket },
      config.classic.separator,
    );
  }

  /** Both buckets answer (readiness, replay). Throws the SDK's error otherwise. */
  async checkReachable(): Promise<void> {
    await this.s3.send(new HeadBucketCommand({ Bucket: this.buckets.input }));
    await this.s3.send(new HeadBucketCommand({ Bucket: this.buckets.output }));
  }

  // ---- inputs

  /** Stores an upload under a key we build (never the client's name as a path). */
  async putInput(input: NewInput): Promise<{ bucket: string; key: string }> {
    const key = inputKey(input.requestId, sanitizeFileName(input.file));
    await this.s3.send(
      new PutObjectCommand({
        Bucket: this.buckets.input,
        Key: key,
        Body: input.bytes,
        ContentType: input.contentType,
        // S3 metadata is ASCII: the client's name travels percent-encoded.
        Metadata: {
          'request-id': input.requestId,
          protocol: input.protocol,
          'file-name': encodeNameForMetadata(input.file),
        },
      }),
    );
    return { bucket: this.buckets.input, key };
  }

  /** An input's bytes and what was stored with them; undefined when it does not exist. */
  async getInput(bucket: string, key: string): Promise<StoredInput | undefined> {
    try {
      const object = await this.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      if (!object.Body) throw new Error(`s3://${bucket}/${key} came back without a body`);
      const bytes = await object.Body.transformToByteArray();
      return {
        bytes: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
        protocol: protocolOf(object.Metadata),
        file: decodeNameFromMetadata(object.Metadata?.['file-name']),
      };
    } catch (err) {
      if (isNoSuchKey(err)) return undefined;
      throw err;
    }
  }

  // ---- outputs

  /**
   * The full result, its entry among the recent ones, and for the classic protocol
   * `<name>` → `<name>,<label>` keyed by the client's name.
   */
  async putResult(result: ClassificationResult, protocol: Protocol): Promise<void> {
    const recent: RecentRecord = {
      id: result.id,
      file: result.file,
      completedAt: result.completedAt,
      status: 'done',
      label: result.label,
      score: result.score,
      model: result.model,
    };
    await Promise.all([
      this.putJson(resultKey(result.id), result),
      this.putJson(recentKey(Date.parse(result.completedAt), result.id), recent),
      protocol === 'classic'
        ? this.s3.send(
            new PutObjectCommand({
              Bucket: this.buckets.output,
              Key: stem(result.file),
              Body: classicAnswer(result.file, result.label, this.classicSeparator),
              ContentType: 'text/plain; charset=utf-8',
            }),
          )
        : undefined,
    ]);
  }

  async putFailure(record: FailureRecord): Promise<void> {
    const { code, message } = record.error;
    const recent: RecentRecord = {
      id: record.id,
      file: record.file,
      completedAt: record.completedAt,
      status: 'failed',
      error: { code, message },
    };
    await Promise.all([
      this.putJson(resultKey(record.id), record),
      this.putJson(recentKey(Date.parse(record.completedAt), record.id), recent),
    ]);
  }

  /** The `limit` most recent results, newest first: one listing of `limit` keys, whatever the bucket holds. */
  async recentResults(limit: number): Promise<{ key: string; read: () => Promise<RecentRecord | undefined> }[]> {
    const { keys } = await this.listKeys(RECENT_PREFIX, { maxKeys: limit });
    return keys.map((key) => ({ key, read: () => this.getJson<RecentRecord>(key) }));
  }

  async putRequestRecord(record: RequestRecord): Promise<void> {
    await this.putJson(requestRecordKey(record.id), record);
  }

  async getRequestRecord(id: string): Promise<RequestRecord | undefined> {
    return this.getJson<RequestRecord>(requestRecordKey(id));
  }

  async putDeadLetter(record: DeadLetterRecord): Promise<void> {
    await this.putJson(deadLetterKey(record.request.requestId), record);
  }

  async deleteDeadLetter(requestId: string): Promise<void> {
    await this.s3.send(new DeleteObjectCommand({ Bucket: this.buckets.output, Key: deadLetterKey(requestId) }));
  }

  /** The result cache's entry for these bytes and this model fingerprint (cache.ts). */
  async getCached(fingerprint: string, sha256: string): Promise<CachedResult | undefined> {
    return this.getJson<CachedResult>(cacheKey(fingerprint, sha256));
  }

  async putCached(fingerprint: string, sha256: string, entry: CachedResult): Promise<void> {
    await this.putJson(cacheKey(fingerprint, sha256), entry);
  }

  async getResult(requestId: string): Promise<ClassificationResult | FailureRecord | undefined> {
    return this.getJson<ClassificationResult | FailureRecord>(resultKey(requestId));
  }

  /** The classic output of `name` (the client's file name without extension), if any. */
  async getClassicOutput(name: string): Promise<string | undefined> {
    try {
      const object = await this.s3.send(new GetObjectCommand({ Bucket: this.buckets.output, Key: name }));
      return await object.Body!.transformToString();
    } catch (err) {
      if (isNoSuchKey(err)) return undefined;
      throw err;
    }
  }

  /**
   * Where a request stands, from the buckets alone (so it survives a web-tier restart): done or
   * failed (its result record), dead-lettered, pending (its input is stored, no result yet), or
   * undefined when nothing of it is stored.
   */
  async jobStatus(id: string, maxReceives: number): Promise<JobStatus | undefined> {
    const record = await this.getResult(id);
    if (record && 'error' in record) return { id, status: 'failed', file: record.file, error: record.error };
    if (record) return { id, status: 'done', result: record };
    const dead = await this.getJson<DeadLetterRecord>(deadLetterKey(id));
    if (dead)
      return { id, status: 'failed', file: dead.request.file, error: deadLetterError(dead.request, maxReceives) };
    const inputs = await this.s3.send(
      new ListObjectsV2Command({ Bucket: this.buckets.input, Prefix: `${id}/`, MaxKeys: 1 }),
    );
    const key = inputs.Contents?.[0]?.Key;
    if (!key) {
      const named = await this.getRequestRecord(id);
      return named ? { id, status: 'pending', file: named.file } : undefined;
    }
    // The key holds a sanitized name; the client's own is in the metadata.
    const head = await this.s3.send(new HeadObjectCommand({ Bucket: this.buckets.input, Key: key }));
    return {
      id,
      status: 'pending',
      file: decodeNameFromMetadata(head.Metadata?.['file-name']) ?? key.slice(id.length + 1),
    };
  }

  /** Every input (under `prefix`) and which have a result or a dead-letter record. */
  async inventory(prefix?: string): Promise<Inventory> {
    const inputs: ImageRequest[] = [];
    const foreign: string[] = [];
    for await (const key of this.keys('input', prefix)) {
      const parsed = parseInputKey(key);
      if (!parsed) {
        foreign.push(key);
        continue;
      }
      inputs.push({
        v: 1,
        requestId: parsed.requestId,
        bucket: this.buckets.input,
        key,
        file: parsed.fileName,
        enqueuedAt: Date.now(),
        timings: {},
      });
    }
    const idsUnder = async (prefixOfRecords: string) => {
      const ids = new Set<string>();
      for await (const key of this.keys('output', prefixOfRecords)) {
        const id = requestIdOfResultKey(key, prefixOfRecords);
        if (id) ids.add(id);
      }
      return ids;
    };
    return {
      inputs,
      foreign,
      finished: await idsUnder(RESULTS_PREFIX),
      deadLetters: await idsUnder(DEAD_LETTERS_PREFIX),
    };
  }

  // ---- objects of the client's own buckets, classified by reference

  /** Whether a bucket exists (throws when it may not be asked: access denied). */
  async bucketExists(bucket: string): Promise<boolean> {
    try {
      await this.s3.send(new HeadBucketCommand({ Bucket: bucket }));
      return true;
    } catch (err) {
      if (isNoSuchBucket(err) || isNoSuchKey(err)) return false;
      throw err;
    }
  }

  /** An object's size and type, or undefined when the bucket or the key does not exist. */
  async headSource(
    bucket: string,
    key: string,
  ): Promise<{ size: number; contentType: string | undefined } | undefined> {
    try {
      const head = await this.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return { size: head.ContentLength ?? 0, contentType: head.ContentType };
    } catch (err) {
      if (isNoSuchKey(err) || isNoSuchBucket(err)) return undefined;
      throw err;
    }
  }

  /** The first `length` bytes of an object (enough to tell its type and, mostly, its dimensions). */
  async readSourceStart(bucket: string, key: string, length: number): Promise<Buffer> {
    const object = await this.s3.send(
      new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=0-${length - 1}` }),
    );
    return Buffer.from(await object.Body!.transformToByteArray());
  }

  /**
   * An object's bytes, or `{ tooLarge }` without reading the body when it is bigger than `maxBytes`;
   * undefined when it does not exist.
   */
  async getSource(
    bucket: string,
    key: string,
    maxBytes: number,
  ): Promise<{ bytes: Buffer } | { tooLarge: number } | undefined> {
    try {
      const object = await this.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const size = object.ContentLength ?? 0;
      if (size > maxBytes) {
        object.Body?.transformToWebStream()
          .cancel()
          .catch(() => undefined);
        return { tooLarge: size };
      }
      const bytes = await object.Body!.transformToByteArray();
      return { bytes: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
    } catch (err) {
      if (isNoSuchKey(err) || isNoSuchBucket(err)) return undefined;
      throw err;
    }
  }

  /** One page (up to 1000 keys) of a listing of `bucket` under `prefix`, from `token`. Throws for a missing bucket. */
  async listPage(
    bucket: string,
    prefix: string,
    token: string | undefined,
    maxKeys = 1000,
  ): Promise<{ keys: string[]; next?: string }> {
    const page = await this.s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token, MaxKeys: maxKeys }),
    );
    const keys = (page.Contents ?? []).flatMap((o) => (o.Key ? [o.Key] : []));
    return page.IsTruncated && page.NextContinuationToken ? { keys, next: page.NextContinuationToken } : { keys };
  }

  // ---- records of the output bucket, for those who own a key space of it (batches, idempotency)

  async getRecord<T>(key: string): Promise<T | undefined> {
    return this.getJson<T>(key);
  }

  async putRecord(key: string, value: unknown): Promise<void> {
    await this.putJson(key, value);
  }

  async deleteRecord(key: string): Promise<void> {
    await this.s3.send(new DeleteObjectCommand({ Bucket: this.buckets.output, Key: key }));
  }

  /** A record and the version it was read at (its ETag), for a compare-and-swap; undefined when absent. */
  async readVersioned<T>(key: string): Promise<Versioned<T> | undefined> {
    try {
      const object = await this.s3.send(new GetObjectCommand({ Bucket: this.buckets.output, Key: key }));
      return { value: JSON.parse(await object.Body!.transformToString()) as T, etag: object.ETag! };
    } catch (err) {
      if (isNoSuchKey(err)) return undefined;
      throw err;
    }
  }

  /**
   * Writes a record only if it is still at version `etag` — or, with `etag` undefined, only if it does
   * not exist yet (S3 conditional writes: If-Match / If-None-Match). The new version, or undefined when
   * the condition did not hold (someone else wrote first).
   */
  async writeVersioned(key: string, value: unknown, etag: string | undefined): Promise<string | undefined> {
    try {
      const out = await this.s3.send(
        new PutObjectCommand({
          Bucket: this.buckets.output,
          Key: key,
          Body: JSON.stringify(value),
          ContentType: 'application/json',
          ...(etag === undefined ? { IfNoneMatch: '*' } : { IfMatch: etag }),
        }),
      );
      return out.ETag;
    } catch (err) {
      if (isPreconditionFailed(err) || (etag !== undefined && isNoSuchKey(err))) return undefined;
      throw err;
    }
  }

  async putBytes(key: string, bytes: Uint8Array, contentType = 'application/octet-stream'): Promise<void> {
    await this.s3.send(
      new PutObjectCommand({ Bucket: this.buckets.output, Key: key, Body: bytes, ContentType: contentType }),
    );
  }

  async getBytes(key: string): Promise<Buffer | undefined> {
    try {
      const object = await this.s3.send(new GetObjectCommand({ Bucket: this.buckets.output, Key: key }));
      return Buffer.from(await object.Body!.transformToByteArray());
    } catch (err) {
      if (isNoSuchKey(err)) return undefined;
      throw err;
    }
  }

  /** Up to `maxKeys` keys of the output bucket under `prefix`, after `startAfter`, in key order. */
  async listKeys(
    prefix: string,
    options: { startAfter?: string; maxKeys?: number } = {},
  ): Promise<{ keys: string[]; more: boolean }> {
    const page = await this.s3.send(
      new ListObjectsV2Command({
        Bucket: this.buckets.output,
        Prefix: prefix,
        MaxKeys: options.maxKeys ?? 1000,
        ...(options.startAfter ? { StartAfter: options.startAfter } : {}),
      }),
    );
    return { keys: (page.Contents ?? []).flatMap((o) => (o.Key ? [o.Key] : [])), more: page.IsTruncated === true };
  }

  /**
   * Writes a large object from chunks without holding it whole: one PutObject when it is small, else
   * a multipart upload in parts of `partBytes` (S3's minimum part is 5 MiB).
   */
  async putStreamed(
    key: string,
    chunks: AsyncIterable<Buffer>,
    contentType: string,
    partBytes = 8 * 1024 * 1024,
  ): Promise<void> {
    const Bucket = this.buckets.output;
    let pending: Buffer[] = [];
    let size = 0;
    let uploadId: string | undefined;
    const parts: { ETag: string; PartNumber: number }[] = [];
    const flush = async () => {
      uploadId ??= (
        await this.s3.send(new CreateMultipartUploadCommand({ Bucket, Key: key, ContentType: contentType }))
      ).UploadId!;
      const PartNumber = parts.length + 1;
      const out = await this.s3.send(
        new UploadPartCommand({ Bucket, Key: key, UploadId: uploadId, PartNumber, Body: Buffer.concat(pending) }),
      );
      parts.push({ ETag: out.ETag!, PartNumber });
      pending = [];
      size = 0;
    };
    try {
      for await (const chunk of chunks) {
        pending.push(chunk);
        size += chunk.length;
        if (size >= partBytes) await flush();
      }
      if (uploadId === undefined) {
        await this.s3.send(
          new PutObjectCommand({ Bucket, Key: key, Body: Buffer.concat(pending), ContentType: contentType }),
        );
        return;
      }
      if (size > 0) await flush();
      await this.s3.send(
        new CompleteMultipartUploadCommand({ Bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }),
      );
    } catch (err) {
      if (uploadId !== undefined)
        await this.s3
          .send(new AbortMultipartUploadCommand({ Bucket, Key: key, UploadId: uploadId }))
          .catch(() => undefined);
      throw err;
    }
  }

  /** An object of the output bucket as a stream of bytes (undefined when absent). */
  async readStream(key: string): Promise<ReadableStream<Uint8Array> | undefined> {
    try {
      const object = await this.s3.send(new GetObjectCommand({ Bucket: this.buckets.output, Key: key }));
      return object.Body!.transformToWebStream();
    } catch (err) {
      if (isNoSuchKey(err)) return undefined;
      throw err;
    }
  }

  /** Every key of a bucket under `prefix`, page by page. */
  async *keys(bucket: keyof Buckets, prefix?: string, pageSize = 1000): AsyncGenerator<string> {
    let ContinuationToken: string | undefined;
    do {
      const page = await this.s3.send(
        new ListObjectsV2Command({
          Bucket: this.buckets[bucket],
          Prefix: prefix,
          ContinuationToken,
          MaxKeys: pageSize,
        }),
      );
      for (const object of page.Contents ?? []) if (object.Key) yield object.Key;
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  private async putJson(key: string, value: unknown): Promise<void> {
    await this.s3.send(
      new PutObjectCommand({
        Bucket: this.buckets.output,
        Key: key,
        Body: JSON.stringify(value),
        ContentType: 'application/json',
      }),
    );
  }

  private async getJson<T>(key: string): Promise<T | undefined> {
    try {
      const object = await this.s3.send(new GetObjectCommand({ Bucket: this.buckets.output, Key: key }));
      return JSON.parse(await object.Body!.transformToString()) as T;
    } catch (err) {
      if (isNoSuchKey(err)) return undefined;
      throw err;
    }
  }
}
