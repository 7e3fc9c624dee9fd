/** `npm run deploy:package [-- --out FILE]`: builds the release artifact the stack ships to its instances. */
import { parseArgs } from 'node:util';
import { createLogger } from '../lib/log.js';
import { buildRelease } from './release.js';

const log = createLogger('deploy.package');

try {
  const { values } = parseArgs({ options: { out: { type: 'string' } }, strict: true });
  const release = await buildRelease(values.out === undefined ? {} : { out: values.out });
  log.info('release built', { ...release });
  process.stdout.write(
    `${release.file} (${release.files} files, ${(release.bytes / 1024).toFixed(0)} KiB, sha256 ${release.sha256.slice(0, 12)})\n`,
  );
} catch (err) {
  log.error('release not built', { error: err });
  process.exitCode = 1;
}
