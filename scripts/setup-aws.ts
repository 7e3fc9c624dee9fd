/** `npm run setup:aws`: the buckets and queues on LocalStack or AWS, idempotently (pipeline/setup-aws.ts). */
import { setupAwsMain } from '../pipeline/setup-aws.js';

process.exit(await setupAwsMain());
