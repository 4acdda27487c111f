/**
 * Warm workers keep tasks apart: after each run, every process of the run is killed
 * (including ones that left the agent's process group with setsid or double forks) and
 * its scratch directories are wiped; if anything survives, the worker must exit so its
 * container (and all in it) is replaced.
 *
 * Which processes are the run's:
 *   container  every process of this uid but the worker and its ancestors: in a pod the
 *              worker's container holds nothing else (the synthesized worker uses this);
 *              a process cannot hide by changing its environment or session
 *   session    processes carrying the run's marker (PADDOCK_LEASE=<id>) in their
 *              environment: for a worker sharing its uid with other programs (paddock
 *              local). A process that clears its environment escapes this mode; use
 *              --sandbox bwrap (a PID namespace that dies with the run) where it matters
 * No subreaper: node cannot set PR_SET_CHILD_SUBREAPER, and cgroup.kill needs a
 * writable cgroup, which pods do not get.
 */
import * as fs from 'fs';

export type Isolation = 'container' | 'session';

export const LEASE_MARKER = 'PADDOCK_LEASE';

interface ProcInfo {
  readonly pid: number;
  readonly ppid: number;
  readonly uid: number;
}

function procInfo(pid: number): ProcInfo | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const ppid = Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]);
    const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
    const state = /^State:\s+(\S)/m.exec(status)?.[1];
    if (state === 'Z' || state === 'X') return undefined; // a zombie holds nothing
    return { pid, ppid, uid };
  } catch {
    return undefined;
  }
}

function ancestors(): Set<number> {
  const out = new Set<number>([process.pid]);
  let pid = process.pid;
  for (let i = 0; i < 64; i++) {
    const info = procInfo(pid);
    if (!info || info.ppid <= 0) break;
    out.add(info.ppid);
    pid = info.ppid;
  }
  return out;
}

function hasMarker(pid: number, marker: string): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(marker);
  } catch {
    return false;
  }
}

/** The run's processes still alive. */
export function runProcesses(isolation: Isolation, leaseId: string): number[] {
  const uid = process.getuid?.() ?? -1;
  const keep = ancestors();
  const marker = `${LEASE_MARKER}=${leaseId}`;
  const found: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (keep.has(pid)) continue;
    const info = procInfo(pid);
    if (!info || info.uid !== uid) continue;
    if (isolation === 'container' || hasMarker(pid, marker)) found.push(pid);
  }
  return found;
}

/** SIGKILL the run's processes; returns those still alive after `waitMs`. */
export async function reapRun(isolation: Isolation, leaseId: string, waitMs = 2000): Promise<number[]> {
  let left = runProcesses(isolation, leaseId);
  const end = Date.now() + waitMs;
  while (left.length > 0) {
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    if (Date.now() > end) break;
    await new Promise((r) => setTimeout(r, 50));
    left = runProcesses(isolation, leaseId);
  }
  return left;
}

/** Remove everything inside each directory (the directories stay: they are mounts). */
export function wipeContents(dirs: readonly string[]): string[] {
  const problems: string[] = [];
  for (const dir of dirs) {
    let entries: string[];
    try {
      entries = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const e of entries) {
      try {
        fs.rmSync(`${dir}/${e}`, { recursive: true, force: true });
      } catch (err) {
        problems.push(`${dir}/${e}: ${(err as NodeJS.ErrnoException).code ?? err}`);
      }
    }
  }
  return problems;
}
