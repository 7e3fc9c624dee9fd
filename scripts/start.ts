/** `npm start`: the whole service on this machine (service/main.ts). */
import { startMain } from '../service/main.js';

startMain();
