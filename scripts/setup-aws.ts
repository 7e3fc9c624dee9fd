/** `npm run setup:aws`: the buckets and queues on LocalStack or AWS, idempotently (pipeline/aws/setup-main.ts). */
import { setupAwsMain } from '../pipeline/aws/setup-main.js';

process.exit(await setupAwsMain());
