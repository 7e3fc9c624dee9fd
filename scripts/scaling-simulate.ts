/** npm run scaling:simulate -- --trace FILE [--policy FILE] [--out DIR] [--mode aws|local] */
import { simulateMain } from '../scaling/sim/simulate-cli.js';

process.exitCode = await simulateMain(process.argv.slice(2));
