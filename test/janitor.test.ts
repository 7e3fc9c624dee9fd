/**
 * Response queues left behind by web processes that died are removed, and only those: against the
 * real embedded endpoint, with queues whose heartbeat is fresh, stale, or missing.
 */
import { CreateQueueCommand, ListQueuesCommand, TagQueueCommand } from '@aws-sdk/client-sqs';
import test from 'ava';
import { startEmbeddedEndpoint } from '../endpoint/embedded.js';
import { createAwsClients } from '../lib/aws/clients.js';
import { loadConfig } from '../lib/config.js';
import { createLogger } from '../lib/log.js';
import { HEARTBEAT_TAG, ResponseQueueJanitor } from '../pipeline/submit/janitor.js';
import { tempDataDir, testEnv } from './helpers/service.js';

test('the janitor deletes the response queues whose owner went silent, keeps the live ones and its own', async (t) => {
  const dataDir = await tempDataDir('janitor');
  const endpoint = await startEmbeddedEndpoint({ host: '127.0.0.1', port: 0, dataDir });
  t.teardown(() => endpoint.stop());
  const clients = createAwsClients(loadConfig(testEnv(dataDir, { EMBEDDED_PORT: String(endpoint.port) })));
  t.teardown(() => clients.destroy());
  const prefix = 'janitor-test-';
  const queue = async (name: string, heartbeatSecondsAgo?: number) => {
    const { QueueUrl } = await clients.sqs.send(new CreateQueueCommand({ QueueName: `${prefix}${name}` }));
    if (heartbeatSecondsAgo !== undefined) {
      await clients.sqs.send(
        new TagQueueCommand({
          QueueUrl,
          Tags: { [HEARTBEAT_TAG]: String(Math.floor(Date.now() / 1000) - heartbeatSecondsAgo) },
        }),
      );
    }
    return QueueUrl!;
  };
  const own = await queue('own');
  const live = await queue('live', 30);
  const dead = await queue('dead', 3_600);
  const untaggedNew = await queue('untagged');
  const other = (await clients.sqs.send(new CreateQueueCommand({ QueueName: 'not-a-response-queue' }))).QueueUrl!;

  const janitor = new ResponseQueueJanitor({
    sqs: clients.sqs,
    prefix,
    ownQueueUrl: own,
    log: createLogger('janitor-test'),
    staleMs: 10 * 60_000,
  });
  await janitor.beat();
  t.deepEqual(await janitor.sweep(), [dead]);
  const left = (await clients.sqs.send(new ListQueuesCommand({}))).QueueUrls ?? [];
  for (const url of [own, live, untaggedNew, other]) t.true(left.includes(url), url);
  t.false(left.includes(dead));

  // An untagged queue (an older version's) is judged by its age: with a short threshold it goes too,
  // and so does a live one that stopped beating — but never the janitor's own.
  await new Promise((resolve) => setTimeout(resolve, 1_100));
  const impatient = new ResponseQueueJanitor({
    sqs: clients.sqs,
    prefix,
    ownQueueUrl: own,
    log: createLogger('janitor-test'),
    staleMs: 1_000,
  });
  t.deepEqual((await impatient.sweep()).sort(), [live, untaggedNew].sort());
  t.true(((await clients.sqs.send(new ListQueuesCommand({ QueueNamePrefix: prefix }))).QueueUrls ?? []).includes(own));
});
