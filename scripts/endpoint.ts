/** `npm run endpoint`: the embedded SQS + S3 endpoint on its own (`npm start` runs it as a child). */
import '../pipeline/local/endpoint-main.js';
