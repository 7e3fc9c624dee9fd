/** `npm run replay -- --missing | --all | --dlq [--prefix P]`: re-runs the pipeline over stored inputs (pipeline/worker/replay.ts). */
import { replayMain } from '../pipeline/worker/replay.js';

process.exit(await replayMain(process.argv.slice(2)));
