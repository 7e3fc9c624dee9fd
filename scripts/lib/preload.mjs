// Loaded with `node --import ./scripts/lib/preload.mjs` by every npm script, the test runner and the
// processes they fork: refuse an old Node.js with a message that says what to do, then load tsx so
// the TypeScript sources run as they are. (Plain JavaScript: it runs before TypeScript can.)
import { nodeVersionProblem } from './node-version.mjs';

const problem = nodeVersionProblem(process.versions.node, process.execPath);
if (problem) {
  process.stderr.write(problem);
  process.exit(1);
}
await import('tsx');
