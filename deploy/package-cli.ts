/**
 * `npm run deploy:package [-- --model M] [--out FILE] [--config FILE]`: builds the release artifact
 * the stack ships to its instances (deploy/release.ts), with the model of the deployment's config
 * (`deploy/config.json`, or --config; `--model` overrides it). The stack refuses an artifact built
 * for another model than it is configured with.
 */
import { parseArgs } from 'node:util';
import { createLogger } from '../lib/log.js';
import { readConfigFile, resolveDeployConfig } from './config.js';
import { buildRelease } from './release.js';

const log = createLogger('deploy.package');

try {
  const { values } = parseArgs({
    options: { out: { type: 'string' }, model: { type: 'string' }, config: { type: 'string' } },
    strict: true,
  });
  const context = values.config === undefined ? {} : { config: values.config };
  const config = resolveDeployConfig({
    file: await readConfigFile(context),
    context: values.model === undefined ? {} : { model: values.model },
    env: process.env,
  });
  const started = performance.now();
  const release = await buildRelease({
    model: config.model,
    ...(values.out === undefined ? {} : { out: values.out }),
  });
  const seconds = (performance.now() - started) / 1000;
  log.info('release built', { ...release, seconds });
  const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
  process.stdout.write(
    `${release.file}: ${mb(release.bytes)} (${mb(release.unpackedBytes)} unpacked), ${release.files} files, ` +
      `${release.packages} packages, Node ${release.node}, model ${release.model.id} (${release.model.runtime}` +
      `${release.model.manifest === null ? ', read from S3 at boot' : ''}), sha256 ${release.sha256.slice(0, 12)}, ` +
      `built in ${seconds.toFixed(1)} s\n`,
  );
} catch (err) {
  log.error('release not built', { error: err });
  process.exitCode = 1;
}
