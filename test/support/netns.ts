/**
 * Network namespaces for tests that need real networking without touching any real
 * network: every address used lives on interfaces inside namespaces created here.
 *
 * Nothing is added to the host's own network namespace (no host-side veth address,
 * no route): the host may itself be on 192.0.2.0/24, as this CI machine is. A
 * namespace has no default route, so traffic to any address outside the namespaces'
 * own links fails with "network unreachable" instead of leaving the machine.
 *
 * Requires root (or CAP_SYS_ADMIN + CAP_NET_ADMIN) and iproute2's `ip`.
 */
import { ChildProcess, execFileSync, spawn, SpawnOptions } from 'child_process';
import { randomBytes } from 'crypto';
import * as fs from 'fs';

const PREFIX = 'pdk';

/** Why namespaces cannot be used here, or undefined when they can. */
export function netnsUnavailableReason(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  for (const tool of ['ip', 'setpriv']) {
    if (!commandExists(tool)) return `"${tool}" is not installed (apt-get install -y iproute2 util-linux)`;
  }
  return undefined;
}

/** True when `name` is an executable on PATH. */
export function commandExists(name: string): boolean {
  return (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin')
    .split(':')
    .some((dir) => {
      try {
        fs.accessSync(`${dir}/${name}`, fs.constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
}

export interface NetnsSpawnOptions extends Omit<SpawnOptions, 'uid' | 'gid'> {
  /** Run as this user (name or uid), with its groups. @default - root */
  readonly user?: string;
}

/** A network namespace created by this process. */
export class Netns {
  private destroyed = false;

  /** Use `createNetns`. */
  constructor(public readonly name: string) {}

  /** `ip -n NAME ...args` (synchronous; throws with ip's stderr on failure). */
  ip(...args: string[]): string {
    return ipCmd(['-n', this.name, ...args]);
  }

  /**
   * Spawns `argv` inside the namespace (`ip netns exec`), optionally as another user.
   * The child gets SIGKILL if this process dies (`setpriv --pdeathsig`), so a crashed
   * test run leaves no process behind. `ip netns exec` and `setpriv` exec in place, so
   * the returned pid is the program's own pid.
   */
  spawn(argv: readonly string[], opts: NetnsSpawnOptions = {}): ChildProcess {
    const { user, ...spawnOpts } = opts;
    const priv = ['setpriv', '--pdeathsig', 'SIGKILL'];
    if (user !== undefined) priv.push('--reuid', user, '--regid', user, '--init-groups');
    return spawn('ip', ['netns', 'exec', this.name, ...priv, '--', ...argv], spawnOpts);
  }

  /** Runs `argv` inside the namespace and returns its stdout (synchronous, bounded). */
  execSync(argv: readonly string[], timeoutMs = 10_000): string {
    return execFileSync('ip', ['netns', 'exec', this.name, ...argv], {
      encoding: 'utf8',
      timeout: timeoutMs,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  /** Deletes the namespace (idempotent). Stop the processes inside it first. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    ipCmd(['netns', 'del', this.name]);
  }
}

/**
 * Creates a namespace named `pdk-<pid>-<random>-<label>` with its loopback up.
 * Also deletes namespaces left behind by earlier runs whose process is gone.
 */
export function createNetns(label: string): Netns {
  if (!/^[a-z0-9-]{1,20}$/.test(label)) throw new Error(`netns label must match [a-z0-9-]{1,20}, got "${label}"`);
  removeStaleNetns();
  const name = `${PREFIX}-${process.pid}-${randomBytes(3).toString('hex')}-${label}`;
  ipCmd(['netns', 'add', name]);
  const ns = new Netns(name);
  try {
    ns.ip('link', 'set', 'lo', 'up');
  } catch (e) {
    ns.destroy();
    throw e;
  }
  return ns;
}

/**
 * Connects two namespaces with a veth pair created directly inside them (the host
 * namespace never sees it), each end named `ifname` and given `aCidr` / `bCidr`.
 */
export function linkNetns(a: Netns, aCidr: string, b: Netns, bCidr: string, ifname = 'eth0'): void {
  ipCmd(['link', 'add', ifname, 'netns', a.name, 'type', 'veth', 'peer', 'name', ifname, 'netns', b.name]);
  a.ip('addr', 'add', aCidr, 'dev', ifname);
  b.ip('addr', 'add', bCidr, 'dev', ifname);
  a.ip('link', 'set', ifname, 'up');
  b.ip('link', 'set', ifname, 'up');
}

/** Two namespaces joined by a veth link: the proxy side and an "origin" side. */
export interface TestNetwork {
  /** Where the proxy (client side) runs: 192.0.2.1/24 on eth0, plus loopback. */
  readonly proxy: Netns;
  /** Where origin servers and the fake DNS server run: 192.0.2.10/24 on eth0. */
  readonly origin: Netns;
  readonly proxyAddress: string;
  readonly originAddress: string;
  destroy(): void;
}

/**
 * Creates the proxy and origin namespaces, linked by veth on TEST-NET-1
 * (192.0.2.1 <-> 192.0.2.10). Neither has a default route.
 */
export function createTestNetwork(): TestNetwork {
  const proxy = createNetns('proxy');
  let origin: Netns | undefined;
  try {
    origin = createNetns('origin');
    linkNetns(proxy, '192.0.2.1/24', origin, '192.0.2.10/24');
  } catch (e) {
    origin?.destroy();
    proxy.destroy();
    throw e;
  }
  const o = origin;
  return {
    proxy,
    origin: o,
    proxyAddress: '192.0.2.1',
    originAddress: '192.0.2.10',
    destroy() {
      const errors: unknown[] = [];
      for (const ns of [o, proxy]) {
        try {
          ns.destroy();
        } catch (e) {
          errors.push(e);
        }
      }
      if (errors.length > 0) throw errors[0];
    },
  };
}

/** Deletes `pdk-<pid>-...` namespaces whose creating process no longer exists. */
export function removeStaleNetns(): void {
  let list: string;
  try {
    list = ipCmd(['netns', 'list']);
  } catch {
    return;
  }
  for (const line of list.split('\n')) {
    const m = new RegExp(`^(${PREFIX}-(\\d+)-[0-9a-f]{6}-[a-z0-9-]+)`).exec(line.trim());
    if (m && !processExists(Number(m[2]))) {
      try {
        ipCmd(['netns', 'del', m[1]]);
      } catch {
        // Another run may have removed it first.
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Node programs inside a namespace, driven over an IPC channel.

/** A node program running inside a namespace (see `startNodeInNetns`). */
export interface NetnsNode {
  readonly pid: number;
  /** Sends `op` to the program's `handle(op, arg)` and resolves with its result. */
  call<T = unknown>(op: string, arg?: unknown, timeoutMs?: number): Promise<T>;
  /** SIGTERM, then SIGKILL after `timeoutMs`; resolves once it has exited. */
  stop(timeoutMs?: number): Promise<void>;
}

/**
 * Runs a JavaScript program inside `ns` with `node -e`. `source` must define
 * `async function init(config)` (resolve once ready, e.g. listening) and
 * `async function handle(op, arg)`; it may use `require`. `config` is passed as JSON.
 * The program exits when this process goes away (IPC disconnect, pdeathsig).
 */
export async function startNodeInNetns(
  ns: Netns,
  source: string,
  config: unknown,
  readyTimeoutMs = 10_000,
): Promise<NetnsNode> {
  const program = [
    "'use strict';",
    "process.on('disconnect', () => process.exit(0));",
    source,
    'const __config = JSON.parse(process.env.PADDOCK_NODE_CONFIG);',
    "process.on('message', (m) => {",
    '  Promise.resolve().then(() => handle(m.op, m.arg)).then(',
    '    (value) => process.send({ id: m.id, ok: true, value }),',
    '    (e) => process.send({ id: m.id, ok: false, error: String((e && e.stack) || e) }));',
    '});',
    'Promise.resolve().then(() => init(__config)).then(',
    "  () => process.send({ type: 'ready' }),",
    "  (e) => { process.send({ type: 'failed', error: String((e && e.stack) || e) }, () => process.exit(1)); });",
  ].join('\n');
  const child = ns.spawn([process.execPath, '-e', program], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: { ...process.env, PADDOCK_NODE_CONFIG: JSON.stringify(config) },
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  child.stderr?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let exitedAlready = false;
  void exited.then(() => (exitedAlready = true));

  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  child.on('message', (m: { id?: number; ok?: boolean; value?: unknown; error?: string }) => {
    if (m.id === undefined) return;
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.ok) p.resolve(m.value);
    else p.reject(new Error(m.error));
  });
  child.once('exit', (code, signal) => {
    for (const p of pending.values()) p.reject(new Error(`netns node exited (${code ?? signal}): ${output}`));
    pending.clear();
  });

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`netns node in ${ns.name} not ready after ${readyTimeoutMs} ms: ${output}`));
    }, readyTimeoutMs);
    const onMessage = (m: { type?: string; error?: string }) => {
      if (m.type === 'ready') done();
      else if (m.type === 'failed') done(new Error(`netns node in ${ns.name} failed to start: ${m.error}`));
    };
    const onExit = (code: number | null, signal: string | null) =>
      done(new Error(`netns node in ${ns.name} exited (${code ?? signal}) before it was ready: ${output}`));
    const done = (err?: Error) => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve();
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });

  return {
    pid: child.pid ?? -1,
    call<T>(op: string, arg?: unknown, timeoutMs = 5_000): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        if (exitedAlready || !child.connected) return reject(new Error(`netns node has exited: ${output}`));
        const id = nextId++;
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`netns node: "${op}" got no answer within ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, {
          resolve: (v) => (clearTimeout(timer), resolve(v as T)),
          reject: (e) => (clearTimeout(timer), reject(e)),
        });
        child.send({ id, op, arg });
      });
    },
    async stop(timeoutMs = 2_000): Promise<void> {
      if (exitedAlready) return;
      child.kill('SIGTERM');
      await waitOrKill(child, exited, timeoutMs);
    },
  };
}

/** Waits for `exited`; after `timeoutMs` sends SIGKILL and waits (bounded) again. */
export async function waitOrKill(child: ChildProcess, exited: Promise<void>, timeoutMs: number): Promise<void> {
  if (await exitsWithin(exited, timeoutMs)) return;
  child.kill('SIGKILL');
  if (!(await exitsWithin(exited, 5_000))) throw new Error(`process ${child.pid} did not exit after SIGKILL`);
}

/** Whether `exited` settles within `ms` (the timer is cleared either way). */
function exitsWithin(exited: Promise<void>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    void exited.then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** A loopback TCP port inside a namespace, reachable from this process as a Unix socket. */
export interface UnixBridge {
  /** Connect here (`net.connect({ path })`, `http.request({ socketPath })`). */
  readonly socketPath: string;
  /** Whether the target port accepts connections right now. */
  probe(): Promise<boolean>;
  stop(): Promise<void>;
}

const BRIDGE_SOURCE = `
const net = require('net');
let server;
async function init(c) {
  server = net.createServer((client) => {
    const upstream = net.connect(c.port, c.host);
    const close = () => { client.destroy(); upstream.destroy(); };
    client.on('error', close); upstream.on('error', close);
    client.on('close', close); upstream.on('close', close);
    client.pipe(upstream); upstream.pipe(client);
  });
  await new Promise((resolve, reject) => { server.once('error', reject); server.listen(c.socketPath, resolve); });
}
async function handle(op) {
  if (op !== 'probe') throw new Error('unknown op ' + op);
  return await new Promise((resolve) => {
    const s = net.connect(__config.port, __config.host);
    const t = setTimeout(() => { s.destroy(); resolve(false); }, 500);
    s.once('connect', () => { clearTimeout(t); s.destroy(); resolve(true); });
    s.once('error', () => { clearTimeout(t); resolve(false); });
  });
}
`;

/**
 * Starts a relay inside `ns` that forwards connections on the Unix socket
 * `socketPath` (a file-system path, visible from every namespace) to `host:port`
 * inside the namespace. This is how a test process in the host namespace reaches a
 * server listening on the namespace's loopback, without adding any route or address
 * to the host.
 */
export async function startUnixBridge(ns: Netns, socketPath: string, port: number, host = '127.0.0.1'): Promise<UnixBridge> {
  const node = await startNodeInNetns(ns, BRIDGE_SOURCE, { socketPath, port, host });
  return {
    socketPath,
    probe: () => node.call<boolean>('probe'),
    async stop() {
      await node.stop();
      fs.rmSync(socketPath, { force: true });
    },
  };
}

// ---------------------------------------------------------------------------

/** Runs disposers in reverse order of registration; collects and rethrows errors. */
export class CleanupStack {
  private readonly steps: Array<{ what: string; fn: () => unknown }> = [];

  add(what: string, fn: () => unknown): void {
    this.steps.push({ what, fn });
  }

  async run(): Promise<void> {
    const errors: string[] = [];
    while (this.steps.length > 0) {
      const step = this.steps.pop()!;
      try {
        await step.fn();
      } catch (e) {
        errors.push(`${step.what}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    if (errors.length > 0) throw new Error(`cleanup failed:\n${errors.join('\n')}`);
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function ipCmd(args: string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(' ')} failed: ${(err.stderr ?? '').trim() || err.message}`);
  }
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
