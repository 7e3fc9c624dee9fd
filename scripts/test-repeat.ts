/** `npm run test:repeat -- N [--busy]`: the whole suite N times in a row, and every failing test by name (tools/test-repeat.ts). */
import { testRepeatMain } from '../tools/test-repeat.js';

await testRepeatMain();
