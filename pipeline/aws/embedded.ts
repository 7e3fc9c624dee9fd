/**
 * The embedded AWS-compatible endpoint for running with no AWS account: fauxqs 2 serves SQS and S3
 * on one loopback port. Queues and their messages (visible, delayed and in flight with their
 * visibility deadlines) live in SQLite under `<dataDir>/queues`; objects are plain files under
 * `<dataDir>/objects`. Every change is written through before the call returns, so stopping the
 * endpoint — cleanly or with `kill -9` — loses nothing that was acknowledged.
 *
 * fauxqs' own `startFauxqs` listens on every interface; an unauthenticated store of people's photos
 * has no business on the LAN, so this module wires the same parts (stores, persistence, app) and
 * listens on loopback only. Those parts are fauxqs internals: the version is pinned exactly in
 * package.json and `test/endpoint.test.ts` checks the wiring.
 */
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { buildApp } from 'fauxqs';
import { ServiceError } from '../../models/service-error.js';
import { migrateS3rverData, type MigrationReport } from './migrate-s3rver.js';

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
}
interface Internals {
  SqsStore: new () => { persistence?: unknown; allQueues(): { persistence?: unknown }[] };
  SnsStore: new () => { persistence?: unknown };
  S3Store: new () => { persistence?: unknown };
  PersistenceManager: new (dir: string) => SqliteManager;
  FileS3Persistence: new (dir: string) => FileS3;
}

let internals: Promise<Internals> | undefined;

/** fauxqs' stores and persistence classes, from the files beside its entry point. */
function loadInternals(): Promise<Internals> {
  internals ??= (async () => {
    const entry = import.meta.resolve('fauxqs');
    const from = (file: string) => import(new URL(file, entry).href) as Promise<Record<string, unknown>>;
    const [sqs, sns, s3, persistence, fileS3] = await Promise.all([
      from('sqs/sqsStore.js'),
      from('sns/snsStore.js'),
      from('s3/s3Store.js'),
      from('persistence.js'),
      from('s3/fileS3Persistence.js'),
    ]);
    const parts = {
      SqsStore: sqs.SqsStore,
      SnsStore: sns.SnsStore,
      S3Store: s3.S3Store,
      PersistenceManager: persistence.PersistenceManager,
      FileS3Persistence: fileS3.FileS3Persistence,
    };
    for (const [name, value] of Object.entries(parts)) {
      if (typeof value !== 'function') throw new EndpointError('ENDPOINT_FAILED', `fauxqs has no ${name} where this version expects it; check the pinned fauxqs version`, { name, entry });
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
async function lockDataDir(dir: string): Promise<() => Promise<void>> {
  const lockFile = join(dir, 'endpoint.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(lockFile, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => rm(lockFile, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number(await readFile(lockFile, 'utf8').catch(() => ''));
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
        throw new EndpointError('DATA_DIR_LOCKED', `another embedded endpoint (pid ${owner}) is using ${dir}; stop it, or give this one another DATA_DIR`, { dir, owner });
      }
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
  const unlock = await lockDataDir(options.dataDir);
  try {
    return await start(options, queuesDirectory, objectsDirectory, unlock);
  } catch (err) {
    await unlock();
    throw err;
  }
}

async function start(options: EmbeddedEndpointOptions, queuesDirectory: string, objectsDirectory: string, unlock: () => Promise<void>): Promise<EmbeddedEndpoint> {
  const { SqsStore, SnsStore, S3Store, PersistenceManager, FileS3Persistence } = await loadInternals();
  const sqsStore = new SqsStore();
  const snsStore = new SnsStore();
  const s3Store = new S3Store();
  let queues: SqliteManager;
  let objects: FileS3;
  try {
    queues = new PersistenceManager(queuesDirectory);
    // WAL with synchronous=NORMAL: a commit is in the WAL file before the call returns, so a killed
    // process loses nothing (only a power cut could take the last commits); FULL would fsync on
    // every send, receive and delete.
    queues.db.exec('PRAGMA synchronous = NORMAL');
    objects = new FileS3Persistence(objectsDirectory);
    // State is loaded before the stores get their persistence, so loading writes nothing back.
    queues.loadSqsAndSns(sqsStore, snsStore);
    objects.loadS3(s3Store);
  } catch (cause) {
    throw new EndpointError('ENDPOINT_FAILED', `the embedded endpoint could not load its data from ${options.dataDir}`, { dataDir: options.dataDir }, { cause });
  }
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
  let port: number;
  try {
    const address = await app.listen({ host: options.host, port: options.port });
    port = Number(new URL(address).port);
  } catch (cause) {
    queues.close();
    throw new EndpointError('ENDPOINT_FAILED', `the embedded endpoint could not listen on ${options.host}:${options.port}`, { host: options.host, port: options.port }, { cause });
  }
  const url = `http://${options.host}:${port}`;

  let migrated: MigrationReport | undefined;
  try {
    migrated = await migrateS3rverData(options.dataDir, url);
  } catch (cause) {
    await app.close();
    queues.close();
    throw new EndpointError('ENDPOINT_FAILED', `could not import the objects of an earlier version's data directory (${join(options.dataDir, 's3')})`, { dataDir: options.dataDir }, { cause });
  }

  let stopped: Promise<void> | undefined;
  return {
    url,
    port,
    queuesDirectory,
    objectsDirectory,
    migrated,
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
