/**
 * The embedded AWS-compatible endpoint for running with no AWS account: fauxqs 2 serves SQS and S3
 * on one loopback port. Queues and their messages (visible, delayed and in flight with their
 * visibility deadlines) live in SQLite under `<dataDir>/queues`; objects are plain files under
 * `<dataDir>/objects`. Every change is written through before the call returns, so stopping the
 * endpoint — cleanly or with `kill -9` — loses nothing that was acknowledged: objects are written
 * whole (staged, then renamed into place), and what a kill leaves half written is set aside at the
 * next start (embedded-repair.ts) instead of stopping it from loading the rest.
 *
 * fauxqs' own `startFauxqs` listens on every interface; an unauthenticated store of people's photos
 * has no business on the LAN, so this module wires the same parts (stores, persistence, app) and
 * listens on loopback only. Those parts are fauxqs internals: the version is pinned exactly in
 * package.json and `test/endpoint.test.ts` checks the wiring.
 */

import { mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { buildApp } from 'fauxqs';
import { ServiceError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { addConditionalWrites, type ConditionalParts } from './conditional-writes.js';
import { type MigrationReport, migrateS3rverData } from './migrate-s3rver.js';
import { type SetAside, setAsideDamagedObjects } from './repair.js';

export interface EmbeddedEndpointOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly dataDir: string;
  /** Region of queue ARNs and URLs for requests that do not say (signed requests do). */
  readonly region?: string;
}

export interface EmbeddedEndpoint {
  /** `http://<host>:<port>`: SQS and S3 both. */
  readonly url: string;
  readonly port: number;
  readonly queuesDirectory: string;
  readonly objectsDirectory: string;
  /** Objects imported from an s3rver data directory of an earlier version (0: none). */
  readonly migrated: MigrationReport | undefined;
  /** Files of objects that were half written when the previous endpoint was killed, moved aside (undefined: not checked). */
  readonly setAside: SetAside | undefined;
  stop(): Promise<void>;
}

export class EndpointError extends ServiceError<'ENDPOINT_FAILED' | 'DATA_DIR_LOCKED'> {
  override readonly name = 'EndpointError';
}

interface Persistence {
  close(): void;
}
interface SqliteManager extends Persistence {
  readonly db: { exec(sql: string): void };
  loadSqsAndSns(sqs: unknown, sns: unknown): void;
}
interface FileS3 extends Persistence {
  loadS3(s3: unknown): void;
  upsertObject(bucket: string, object: unknown): void;
}
interface Internals {
  SqsStore: new () => { persistence?: unknown; allQueues(): { persistence?: unknown }[] };
  SnsStore: new () => { persistence?: unknown };
  S3Store: new () => { persistence?: unknown };
  PersistenceManager: new (dir: string) => SqliteManager;
  FileS3Persistence: new (dir: string) => FileS3;
  S3Error: ConditionalParts['S3Error'];
}

let internals: Promise<Internals> | undefined;

/** fauxqs' stores and persistence classes, from the files beside its entry point. */
function loadInternals(): Promise<Internals> {
  internals ??= (async () => {
    const entry = import.meta.resolve('fauxqs');
    const from = (file: string) => import(new URL(file, entry).href) as Promise<Record<string, unknown>>;
    const [sqs, sns, s3, persistence, fileS3, errors] = await Promise.all([
      from('sqs/sqsStore.js'),
      from('sns/snsStore.js'),
      from('s3/s3Store.js'),
      from('persistence.js'),
      from('s3/fileS3Persistence.js'),
      from('common/errors.js'),
    ]);
    const parts = {
      SqsStore: sqs.SqsStore,
      SnsStore: sns.SnsStore,
      S3Store: s3.S3Store,
      PersistenceManager: persistence.PersistenceManager,
      FileS3Persistence: fileS3.FileS3Persistence,
      S3Error: errors.S3Error,
    };
    for (const [name, value] of Object.entries(parts)) {
      if (typeof value !== 'function')
        throw new EndpointError(
          'ENDPOINT_FAILED',
          `fauxqs has no ${name} where this version expects it; check the pinned fauxqs version`,
          { name, entry },
        );
    }
    return parts as unknown as Internals;
  })();
  return internals;
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * One endpoint per data directory: each keeps the whole state in memory and writes it through, so
 * two over the same files would each overwrite what the other wrote. A lock file names the owner;
 * a lock left by a process that no longer runs (kill -9) is taken over.
 */
async function lockDataDir(dir: string): Promise<{ unlock: () => Promise<void>; uncleanStop: boolean }> {
  const lockFile = join(dir, 'endpoint.pid');
  let uncleanStop = false;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(lockFile, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      return { unlock: () => rm(lockFile, { force: true }), uncleanStop };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number(await readFile(lockFile, 'utf8').catch(() => ''));
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
        throw new EndpointError(
          'DATA_DIR_LOCKED',
          `another embedded endpoint (pid ${owner}) is using ${dir}; stop it, or give this one another DATA_DIR`,
          { dir, owner },
        );
      }
      // The previous endpoint on this data did not stop cleanly: it may have been mid-write.
      uncleanStop = true;
      await rm(lockFile, { force: true });
    }
  }
  throw new EndpointError('ENDPOINT_FAILED', `could not lock ${dir}`, { dir });
}

export async function startEmbeddedEndpoint(options: EmbeddedEndpointOptions): Promise<EmbeddedEndpoint> {
  const queuesDirectory = join(options.dataDir, 'queues');
  const objectsDirectory = join(options.dataDir, 'objects');
  await mkdir(queuesDirectory, { recursive: true });
  await mkdir(objectsDirectory, { recursive: true });
  const { unlock, uncleanStop } = await lockDataDir(options.dataDir);
  try {
    return await start(options, queuesDirectory, objectsDirectory, unlock, uncleanStop);
  } catch (err) {
    await unlock();
    throw err;
  }
}

/**
 * fauxqs writes an object's body and then its metadata in place, each truncating the file first: a
 * kill in between leaves an earlier, acknowledged version of that key half overwritten. Here each
 * object is written whole into a staging directory (by fauxqs' own code, under `.staging`, which
 * loading never reads), then each file is renamed into place: a rename replaces a file whole or not
 * at all. What a kill can still leave — a new body beside the old metadata, in the moment between
 * the two renames — is set aside at the next start (embedded-repair.ts).
 */
function writeObjectsWhole(objects: FileS3, staging: FileS3, objectsDirectory: string): void {
  const stagingRoot = join(objectsDirectory, '.staging');
  objects.upsertObject = (bucket, object) => {
    const staged = join(stagingRoot, 'buckets', bucket);
    staging.upsertObject(bucket, object);
    try {
      // The body first: a metadata file in place always has its body.
      const files = readdirSync(staged, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => join(e.parentPath, e.name));
      for (const file of files.sort((a, b) => Number(a.endsWith('.meta.json')) - Number(b.endsWith('.meta.json')))) {
        const target = join(objectsDirectory, relative(stagingRoot, file));
        mkdirSync(dirname(target), { recursive: true });
        renameSync(file, target);
      }
    } finally {
      rmSync(staged, { recursive: true, force: true });
    }
  };
}

interface LoadedState {
  readonly sqsStore: InstanceType<Internals['SqsStore']>;
  readonly snsStore: InstanceType<Internals['SnsStore']>;
  readonly s3Store: InstanceType<Internals['S3Store']>;
  readonly queues: SqliteManager;
  readonly objects: FileS3;
}

/** The stores, loaded from the data directory (before they get their persistence, so loading writes nothing back). */
async function loadState(queuesDirectory: string, objectsDirectory: string): Promise<LoadedState> {
  const { SqsStore, SnsStore, S3Store, PersistenceManager, FileS3Persistence } = await loadInternals();
  const sqsStore = new SqsStore();
  const snsStore = new SnsStore();
  const s3Store = new S3Store();
  const queues = new PersistenceManager(queuesDirectory);
  try {
    // WAL with synchronous=NORMAL: a commit is in the WAL file before the call returns, so a killed
    // process loses nothing (only a power cut could take the last commits); FULL would fsync on
    // every send, receive and delete.
    queues.db.exec('PRAGMA synchronous = NORMAL');
    const objects = new FileS3Persistence(objectsDirectory);
    writeObjectsWhole(objects, new FileS3Persistence(join(objectsDirectory, '.staging')), objectsDirectory);
    queues.loadSqsAndSns(sqsStore, snsStore);
    objects.loadS3(s3Store);
    return { sqsStore, snsStore, s3Store, queues, objects };
  } catch (err) {
    queues.close();
    throw err;
  }
}

async function start(
  options: EmbeddedEndpointOptions,
  queuesDirectory: string,
  objectsDirectory: string,
  unlock: () => Promise<void>,
  uncleanStop: boolean,
): Promise<EmbeddedEndpoint> {
  // After a kill, objects written at that moment may be half on disk: set aside before loading.
  // Without a kill on record, only if loading fails (a lock file removed by hand, a copied directory).
  let setAside: SetAside | undefined = uncleanStop
    ? await setAsideDamagedObjects(objectsDirectory, options.dataDir)
    : undefined;
  let state: LoadedState;
  try {
    state = await loadState(queuesDirectory, objectsDirectory).catch(async (err: unknown) => {
      if (setAside !== undefined) throw err;
      setAside = await setAsideDamagedObjects(objectsDirectory, options.dataDir);
      if (setAside.files.length === 0) throw err;
      return loadState(queuesDirectory, objectsDirectory);
    });
  } catch (cause) {
    throw new EndpointError(
      'ENDPOINT_FAILED',
      `the embedded endpoint could not load its data from ${options.dataDir}`,
      { dataDir: options.dataDir },
      { cause },
    );
  }
  const { sqsStore, snsStore, s3Store, queues, objects } = state;
  sqsStore.persistence = queues;
  snsStore.persistence = queues;
  for (const queue of sqsStore.allQueues()) queue.persistence = queues;
  s3Store.persistence = objects;

  const app = buildApp({
    logger: false,
    host: options.host,
    ...(options.region ? { defaultRegion: options.region } : {}),
    stores: { sqsStore, snsStore, s3Store } as never,
  });
  addConditionalWrites({ app, s3Store, S3Error: (await loadInternals()).S3Error } as unknown as ConditionalParts);
  let port: number;
  try {
    const address = await app.listen({ host: options.host, port: options.port });
    port = Number(new URL(address).port);
  } catch (cause) {
    queues.close();
    throw new EndpointError(
      'ENDPOINT_FAILED',
      `the embedded endpoint could not listen on ${options.host}:${options.port}`,
      { host: options.host, port: options.port },
      { cause },
    );
  }
  const url = `http://${options.host}:${port}`;

  let migrated: MigrationReport | undefined;
  try {
    migrated = await migrateS3rverData(options.dataDir, url);
  } catch (cause) {
    await app.close();
    queues.close();
    throw new EndpointError(
      'ENDPOINT_FAILED',
      `could not import the objects of an earlier version's data directory (${join(options.dataDir, 's3')})`,
      { dataDir: options.dataDir },
      { cause },
    );
  }

  let stopped: Promise<void> | undefined;
  return {
    url,
    port,
    queuesDirectory,
    objectsDirectory,
    migrated,
    setAside,
    stop() {
      stopped ??= app.close().then(() => {
        queues.close();
        objects.close();
        return unlock();
      });
      return stopped;
    },
  };
}

/** What a person should know about how this start went: an import, objects set aside. */
export function logStartNotes(endpoint: EmbeddedEndpoint, log: Logger): void {
  if (endpoint.migrated)
    log.warn("imported the objects of an earlier version's data directory", { ...endpoint.migrated });
  if (endpoint.setAside && endpoint.setAside.files.length > 0) {
    log.warn(
      'objects half written when the endpoint was last killed were set aside (their uploads never completed; their clients were told so and retried)',
      { to: endpoint.setAside.to, files: endpoint.setAside.files },
    );
  }
}
