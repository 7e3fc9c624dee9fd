/** npm run scaling:setup -- --asg NAME --queue NAME|URL [--region R] [--policy FILE] [--dry-run] [--teardown] [--print-iam] */
import { setupMain } from '../scaling/aws/setup-cli.js';

process.exitCode = await setupMain(process.argv.slice(2));
