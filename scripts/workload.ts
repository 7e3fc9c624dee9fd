/**
 * `npm run workload -- --url http://127.0.0.1:3000 --dir FOLDER [--concurrency N=100] [--count N]
 *                      [--ground-truth CSV] [--json OUT.json] [--timeout-ms 120000]`
 *
 * The classic workload generator (tools/workload/workload.ts): concurrent `POST /` uploads of a folder's
 * images, each answer printed and checked, then a summary. Exit 0 when every upload got a 200
 * naming its own file, 1 otherwise, 2 on a usage error.
 */
import { workloadMain } from '../tools/workload/workload.js';

process.exit(await workloadMain(process.argv.slice(2)));
