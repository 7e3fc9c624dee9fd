/** npm run scaling:simulate -- --trace FILE [--mode alarms|controller|controller+warm|local] [--policy FILE] [--out DIR], or -- --compare */
import { simulateMain } from '../tools/sim/simulate-cli.js';

process.exitCode = await simulateMain(process.argv.slice(2));
