/** CPU time of a process tree, from /proc (Linux): what the service spent, whoever spent it. */
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    }
  } catch {
    // the process ended
  }
  return out;
}

export function processTree(root: number): number[] {
  const all = [root];
  for (let i = 0; i < all.length; i++) all.push(...childrenOf(all[i]!));
  return all;
}

/** utime + stime of one process in ms (0 if it is gone). */
export function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

export function treeCpuMs(root: number): Map<number, number> {
  return new Map(processTree(root).map((pid) => [pid, cpuMs(pid)]));
}

/** CPU spent between two snapshots by the processes alive in both (ms). */
export function cpuBetween(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, ms] of after) total += ms - (before.get(pid) ?? 0);
  return total;
}

export type Role = 'web' | 'endpoint' | 'workers';

/** Which part of the service a process is, from its command line (root = the web tier). */
function roleOf(pid: number, root: number): Role {
  if (pid === root) return 'web';
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes('endpoint/main.ts') ? 'endpoint' : 'workers';
  } catch {
    return 'workers';
  }
}

/** The processes of one role in the service tree rooted at `root`. */
export function pidsOf(root: number, role: Role): number[] {
  return processTree(root).filter((pid) => roleOf(pid, root) === role);
}

/** CPU spent between two snapshots per role (ms). */
export function cpuByRole(before: Map<number, number>, after: Map<number, number>, root: number): Record<Role, number> {
  const out: Record<Role, number> = { web: 0, endpoint: 0, workers: 0 };
  for (const [pid, ms] of after) out[roleOf(pid, root)] += ms - (before.get(pid) ?? 0);
  return out;
}
