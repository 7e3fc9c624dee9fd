/** `npm run endpoint`: the embedded SQS + S3 endpoint on its own (`npm start` runs it as a child). */
import '../endpoint/main.js';
