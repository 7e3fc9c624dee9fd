/**
 * Earlier versions kept the embedded S3's objects in s3rver's layout under `<dataDir>/s3`
 * (`<bucket>/<key>._S3rver_object` plus `._S3rver_metadata.json`). The first start of this version
 * imports them into the new endpoint through the S3 API (content type and user metadata kept), then
 * renames the old folder to `s3rver-imported` — it is never deleted. An interrupted import simply
 * runs again: writing the same object twice gives the same object.
 */
import { readdir, readFile, rename, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createEmbeddedS3Client } from '../lib/aws/clients.js';

export interface MigrationReport {
  readonly buckets: readonly string[];
  readonly objects: number;
  /** Where the old files are now. */
  readonly keptAt: string;
}

const OBJECT_SUFFIX = '._S3rver_object';

async function* objectFiles(dir: string): AsyncGenerator<string> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* objectFiles(path);
    else if (entry.name.endsWith(OBJECT_SUFFIX)) yield path;
  }
}

/** Imports `<dataDir>/s3` if it holds s3rver data; undefined when there is nothing to import. */
export async function migrateS3rverData(dataDir: string, endpointUrl: string): Promise<MigrationReport | undefined> {
  const root = join(dataDir, 's3');
  const isDir = await stat(root).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!isDir) return undefined;
  const buckets = (await readdir(root, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  const s3 = createEmbeddedS3Client(endpointUrl);
  let objects = 0;
  try {
    for (const bucket of buckets) {
      await s3.send(new CreateBucketCommand({ Bucket: bucket })).catch((err: Error) => {
        if (err.name !== 'BucketAlreadyOwnedByYou' && err.name !== 'BucketAlreadyExists') throw err;
      });
      const bucketDir = join(root, bucket);
      for await (const file of objectFiles(bucketDir)) {
        const key = relative(bucketDir, file).slice(0, -OBJECT_SUFFIX.length).split(sep).join('/');
        const meta = await readFile(`${file.slice(0, -OBJECT_SUFFIX.length)}._S3rver_metadata.json`, 'utf8')
          .then((text) => JSON.parse(text) as Record<string, string>)
          .catch(() => ({}) as Record<string, string>);
        const userMetadata = Object.fromEntries(
          Object.entries(meta)
            .filter(([name]) => name.startsWith('x-amz-meta-'))
            .map(([name, value]) => [name.slice('x-amz-meta-'.length), value]),
        );
        await s3.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: key,
            Body: await readFile(file),
            ContentType: meta['content-type'] ?? 'application/octet-stream',
            Metadata: userMetadata,
          }),
        );
        objects++;
      }
    }
  } finally {
    s3.destroy();
  }
  const taken = await stat(join(dataDir, 's3rver-imported')).then(
    () => true,
    () => false,
  );
  const keptAt = join(dataDir, taken ? `s3rver-imported-${Date.now()}` : 's3rver-imported');
  await rename(root, keptAt);
  return { buckets, objects, keptAt };
}
