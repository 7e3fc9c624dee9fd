/** `npm start`: the whole service on this machine (web/main.ts). */
import { startMain } from '../web/main.js';

startMain();
