/** npm run scaling:simulate -- --trace FILE [--policy FILE] [--out DIR] [--mode aws|local] */
import { simulateMain } from '../scaling/simulate-cli.js';

process.exitCode = await simulateMain(process.argv.slice(2));
