// Starts an unpacked release's service and classifies one photo over HTTP on loopback, as a client
// on the instance would: the hermetic-boot test and the boot-time measurement run it (with the
// release's own Node) inside a network namespace that has loopback only. Plain JavaScript with no
// import outside Node: it must not need anything the release does not bring.
//
//   node release-probe.mjs <app dir> <photo> <port> -- <command...>
//
// <command> is the service's start command, run in <app dir> with this process's environment. The
// probe waits for GET /healthz, posts the photo to the classic route (POST /, field `myfile`), then
// stops the service with SIGTERM. It prints one JSON line: when each step happened (Date.now(), so
// a caller can relate them to its own clock), the answer, the service's exit code, and its output
// on failure. Exit code 0 when the photo got a label and the service stopped cleanly.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';

const [app, photo, port, separator, ...command] = process.argv.slice(2);
if (!app || !photo || !port || separator !== '--' || command.length === 0) {
  process.stderr.write('usage: node release-probe.mjs <app dir> <photo> <port> -- <command...>\n');
  process.exit(2);
}
const base = `http://127.0.0.1:${port}`;
const report = { started: Date.now(), listening: null, answered: null, stopped: null };
const service = spawn(command[0], command.slice(1), { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] });
let output = '';
service.stdout.on('data', (d) => (output += d));
service.stderr.on('data', (d) => (output += d));
const exited = new Promise((resolve) => service.on('exit', (code, signal) => resolve(code ?? signal)));
let exitCode;
service.on('exit', (code, signal) => (exitCode = code ?? signal));

const finish = async (result) => {
  if (exitCode === undefined) service.kill('SIGTERM');
  const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 60_000))]);
  if (code === 'timeout') service.kill('SIGKILL');
  report.stopped = Date.now();
  const ok = result.label !== undefined && code === 0;
  process.stdout.write(
    `${JSON.stringify({ ...report, ...result, exitCode: code, ...(ok ? {} : { output: output.slice(-6000) }) })}\n`,
  );
  process.exit(ok ? 0 : 1);
};

try {
  const deadline = Date.now() + 180_000;
  for (;;) {
    if (exitCode !== undefined) await finish({ error: `the service exited (${exitCode}) before listening` });
    if (Date.now() > deadline) await finish({ error: 'the service did not answer /healthz within 180 s' });
    const health = await fetch(`${base}/healthz`).catch(() => undefined);
    if (health?.ok) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  report.listening = Date.now();
  const form = new FormData();
  form.append('myfile', new Blob([await readFile(photo)]), basename(photo));
  const response = await fetch(`${base}/`, { method: 'POST', body: form });
  const body = (await response.text()).trim();
  report.answered = Date.now();
  // The classic answer: `<name>,<label>`.
  const label = response.status === 200 ? body.split(',').slice(1).join(',') : undefined;
  await finish({ status: response.status, body, ...(label ? { label } : {}) });
} catch (err) {
  await finish({ error: String(err?.stack ?? err) });
}
