/** `npm run worker`: one app-tier worker, as an EC2 instance of the Auto Scaling group runs it. */
import '../pipeline/worker/main.js';
