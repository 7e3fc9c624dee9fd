/** npm run scaling:validate -- [--trace FILE]... [--scale [NAME=]F] [--min N --max N] [--policy FILE] [--json] */
import { validateMain } from '../tools/sim/calibrate/validate-cli.js';

// Exits at once: nothing the run started (the service's process, its sockets) may hold the process.
process.exit(await validateMain(process.argv.slice(2)));
