/**
 * S3 conditional writes on the embedded endpoint, as AWS S3 has them: `PutObject` with
 * `If-None-Match: *` writes only when the key does not exist, and with `If-Match: <etag>` only when
 * the object's current ETag is that one; otherwise `412 PreconditionFailed` (`404 NoSuchKey` for
 * If-Match on a key that does not exist). The batches rely on them: a create-once record and a
 * compare-and-swap on a batch's state (see AWS, "Add preconditions to S3 operations with
 * conditional requests" in the S3 User Guide). fauxqs 2.4 evaluates them on reads only.
 *
 * The check runs inside fauxqs' own synchronous `putObject` of its store, so no other write can
 * come between the check and the write: the condition of each request is handed down through an
 * AsyncLocalStorage context opened by a preHandler hook.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

interface Condition {
  readonly ifMatch: string | undefined;
  readonly ifNoneMatch: string | undefined;
}

interface StoredObject {
  readonly etag: string;
}

/** The parts of fauxqs this needs: its Fastify app, its S3 store, and its S3 error class. */
export interface ConditionalParts {
  readonly app: {
    addHook(
      name: 'preHandler',
      hook: (request: { method: string; headers: Record<string, unknown> }, reply: unknown, done: () => void) => void,
    ): unknown;
  };
  readonly s3Store: {
    putObject(bucket: string, key: string, ...rest: unknown[]): unknown;
    headObject(bucket: string, key: string): StoredObject;
  };
  readonly S3Error: new (code: string, message: string, status: number, resource?: string) => Error;
}

const header = (headers: Record<string, unknown>, name: string): string | undefined => {
  const value = headers[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
};

/** `"abc"`, `abc` and `W/"abc"` are the same ETag. */
const bare = (etag: string) => etag.trim().replace(/^W\//, '').replace(/^"|"$/g, '');

export function addConditionalWrites({ app, s3Store, S3Error }: ConditionalParts): void {
  const conditions = new AsyncLocalStorage<Condition>();
  app.addHook('preHandler', (request, _reply, done) => {
    const ifMatch = header(request.headers, 'if-match');
    const ifNoneMatch = header(request.headers, 'if-none-match');
    // Copies keep their own (source) conditions; only a plain PUT of a body is conditional here.
    if (
      request.method !== 'PUT' ||
      (ifMatch === undefined && ifNoneMatch === undefined) ||
      request.headers['x-amz-copy-source']
    ) {
      done();
      return;
    }
    conditions.run({ ifMatch, ifNoneMatch }, done);
  });
  const put = s3Store.putObject.bind(s3Store);
  s3Store.putObject = (bucket: string, key: string, ...rest: unknown[]) => {
    const condition = conditions.getStore();
    if (condition) {
      let current: StoredObject | undefined;
      try {
        current = s3Store.headObject(bucket, key);
      } catch (err) {
        if ((err as { code?: string }).code !== 'NoSuchKey') throw err;
      }
      const failed = () =>
        new S3Error(
          'PreconditionFailed',
          'At least one of the pre-conditions you specified did not hold',
          412,
          `/${bucket}/${key}`,
        );
      if (condition.ifNoneMatch !== undefined && current !== undefined) {
        if (condition.ifNoneMatch.trim() === '*' || bare(condition.ifNoneMatch) === bare(current.etag)) throw failed();
      }
      if (condition.ifMatch !== undefined) {
        if (current === undefined)
          throw new S3Error('NoSuchKey', 'The specified key does not exist.', 404, `/${bucket}/${key}`);
        if (condition.ifMatch.trim() !== '*' && bare(condition.ifMatch) !== bare(current.etag)) throw failed();
      }
    }
    return put(bucket, key, ...rest);
  };
}
