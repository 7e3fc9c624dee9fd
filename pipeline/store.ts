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
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { isNoSuchKey } from '../lib/aws/errors.js';
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
  RESULTS_PREFIX,
  requestIdOfResultKey,
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

  /** The full result, and for the classic protocol `<name>` → `<name>,<label>` keyed by the client's name. */
  async putResult(result: ClassificationResult, protocol: Protocol): Promise<void> {
    await Promise.all([
      this.putJson(resultKey(result.id), result),
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
    await this.putJson(resultKey(record.id), record);
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
    if (!key) return undefined;
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
