/**
 * `npm run bench [-- --n 250] [--burst 100] [--model ID] [--workers N] [--data-dir DIR] [--skip-models] [--skip-pipeline] [--baseline-endpoint DIR]`:
 * the models, the S3/SQS call floor and the service under bursts (tools/bench/run.ts).
 */
import { benchMain } from '../tools/bench/run.js';

process.exit(await benchMain(process.argv.slice(2)));
