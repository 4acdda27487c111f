/**
 * Runs the real Squid for tests the way the egress-proxy pod does: as a non-root
 * user (`proxy`), with a read-only configuration and only a state directory writable,
 * access log on stdout and cache log on stderr. Plus small proxy clients (CONNECT +
 * TLS, plain HTTP) with bounded timeouts.
 */
import { ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import * as tls from 'tls';
import { commandExists, delay, Netns, netnsUnavailableReason, startUnixBridge, UnixBridge, waitOrKill } from './netns';

/** Why Squid cannot be run here, or undefined when it can. */
export function squidUnavailableReason(): string | undefined {
  if (!commandExists('squid')) return '"squid" is not installed (apt-get install -y squid)';
  return undefined;
}

/** Why the real-Squid end-to-end suites (root, network namespaces, squid, openssl) cannot run here. */
export function squidE2eUnavailableReason(): string | undefined {
  return netnsUnavailableReason() ?? squidUnavailableReason() ?? (commandExists('openssl') ? undefined : '"openssl" is not installed (apt-get install -y openssl)');
}

/**
 * `describe` for those suites: skipped with a warning on a developer machine that
 * cannot run them; never skipped in CI, where their beforeAll fails with `unavailable`.
 */
export function describeWithSquid(what: string, unavailable: string | undefined): jest.Describe {
  if (unavailable === undefined || process.env.CI) return describe;
  // eslint-disable-next-line no-console
  console.warn(`Skipping ${what}: ${unavailable}`);
  return describe.skip;
}

/** Paths inside the Squid directory, for rendering the configuration. */
export interface SquidPaths {
  /** Writable by the Squid user; everything else is read-only. */
  readonly stateDir: string;
  /** Path of an extra file given in `files`. */
  file(name: string): string;
}

export interface StartSquidOptions {
  /** Run inside this namespace (reached through a Unix-socket bridge). */
  readonly netns: Netns;
  /** The port `conf` makes Squid listen on. */
  readonly port: number;
  /** The squid.conf text. */
  readonly conf: (paths: SquidPaths) => string;
  /** Extra read-only files (name -> content) next to squid.conf, e.g. a hosts file. */
  readonly files?: Readonly<Record<string, string>>;
  /** @default 'proxy' (Debian's Squid user) */
  readonly user?: string;
  /** @default 10000 */
  readonly readyTimeoutMs?: number;
}

export interface RunningSquid {
  readonly pid: number;
  /** The Squid directory (read-only) and its writable state directory. */
  readonly dir: string;
  readonly stateDir: string;
  readonly confPath: string;
  /** Connection options for a client (Unix socket into the namespace). */
  readonly socketPath: string;
  /** Access log so far (Squid's stdout). */
  accessLog(): string;
  /**
   * Waits (bounded) for the access-log line(s) containing `needle`: Squid writes a
   * line when the transaction ends, which can be just after the client got its answer.
   */
  waitForAccessLog(needle: string, timeoutMs?: number): Promise<string[]>;
  /** Cache log so far (Squid's stderr). */
  cacheLog(): string;
  /** Stops Squid (SIGKILL by default: a graceful stop always waits >= 1.7 s) and removes its files. */
  stop(opts?: { graceful?: boolean }): Promise<void>;
}

/**
 * Writes squid.conf (and `files`) into a new temp directory, makes them read-only,
 * starts `squid -N` as `user` inside the namespace and waits (bounded) until it
 * accepts connections.
 */
export async function startSquid(opts: StartSquidOptions): Promise<RunningSquid> {
  const user = opts.user ?? 'proxy';
  const { uid, gid } = lookupUser(user);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-squid-'));
  const stateDir = path.join(dir, 'state');
  const confPath = path.join(dir, 'squid.conf');
  const socketPath = path.join(dir, 'proxy.sock');
  const stdoutPath = path.join(dir, 'stdout.log');
  const stderrPath = path.join(dir, 'stderr.log');
  // Unique service name: Squid names its /dev/shm segments after it.
  const service = `pdk${process.pid}${Math.random().toString(36).slice(2, 8)}`;

  let child: ChildProcess | undefined;
  let bridge: UnixBridge | undefined;
  let exited: Promise<void> = Promise.resolve();
  let exitInfo: string | undefined;

  const readLog = (p: string) => {
    try {
      return fs.readFileSync(p, 'utf8');
    } catch {
      return '';
    }
  };
  const cleanup = async (graceful: boolean) => {
    const errors: string[] = [];
    if (child && exitInfo === undefined) {
      child.kill(graceful ? 'SIGINT' : 'SIGKILL');
      try {
        await waitOrKill(child, exited, graceful ? 5_000 : 2_000);
      } catch (e) {
        errors.push(String(e));
      }
    }
    if (bridge) await bridge.stop().catch((e) => errors.push(String(e)));
    for (const f of safeReaddir('/dev/shm')) {
      if (f.startsWith(`${service}-`)) fs.rmSync(path.join('/dev/shm', f), { force: true });
    }
    fs.chmodSync(dir, 0o700);
    fs.rmSync(dir, { recursive: true, force: true });
    if (errors.length > 0) throw new Error(errors.join('\n'));
  };

  try {
    fs.mkdirSync(stateDir, { mode: 0o700 });
    fs.chownSync(stateDir, uid, gid);
    const names = Object.keys(opts.files ?? {});
    const paths: SquidPaths = {
      stateDir,
      file(name) {
        if (!names.includes(name)) throw new Error(`startSquid: no file "${name}" in files`);
        return path.join(dir, name);
      },
    };
    for (const [name, content] of Object.entries(opts.files ?? {})) {
      if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`startSquid: bad file name "${name}"`);
      fs.writeFileSync(path.join(dir, name), content, { mode: 0o444 });
    }
    fs.writeFileSync(confPath, opts.conf(paths), { mode: 0o444 });
    // Squid reopens /dev/stdout and /dev/stderr by path (/proc/self/fd/N), which works
    // for a non-root process only on files it may write: pre-create them for the user.
    for (const p of [stdoutPath, stderrPath]) {
      fs.writeFileSync(p, '', { mode: 0o600 });
      fs.chownSync(p, uid, gid);
    }
    bridge = await startUnixBridge(opts.netns, socketPath, opts.port);
    fs.chmodSync(dir, 0o555); // the directory itself read-only from here on

    const out = fs.openSync(stdoutPath, 'a');
    const err = fs.openSync(stderrPath, 'a');
    try {
      child = opts.netns.spawn(['squid', '-N', '-n', service, '-f', confPath], {
        user,
        stdio: ['ignore', out, err],
        cwd: stateDir,
      });
    } finally {
      fs.closeSync(out);
      fs.closeSync(err);
    }
    const c = child;
    exited = new Promise<void>((resolve) => {
      c.once('exit', (code, signal) => {
        exitInfo = `${code ?? signal}`;
        resolve();
      });
      c.once('error', (e) => {
        exitInfo = `spawn error: ${e.message}`;
        resolve();
      });
    });

    const deadline = Date.now() + (opts.readyTimeoutMs ?? 10_000);
    for (;;) {
      if (exitInfo !== undefined) {
        throw new Error(`squid exited (${exitInfo}) before listening:\n${readLog(stderrPath).slice(-3000)}`);
      }
      if (await bridge.probe()) break;
      if (Date.now() > deadline) {
        throw new Error(`squid not listening after ${opts.readyTimeoutMs ?? 10_000} ms:\n${readLog(stderrPath).slice(-3000)}`);
      }
      await delay(20);
    }
  } catch (e) {
    await cleanup(false).catch(() => undefined);
    throw e;
  }

  let stopped = false;
  return {
    pid: child.pid ?? -1,
    dir,
    stateDir,
    confPath,
    socketPath,
    accessLog: () => readLog(stdoutPath),
    async waitForAccessLog(needle, timeoutMs = 3_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const lines = readLog(stdoutPath).split('\n').filter((l) => l.includes(needle));
        if (lines.length > 0) return lines;
        if (Date.now() > deadline) throw new Error(`no access-log line with "${needle}" after ${timeoutMs} ms`);
        await delay(10);
      }
    },
    cacheLog: () => readLog(stderrPath),
    async stop(stopOpts = {}) {
      if (stopped) return;
      stopped = true;
      await cleanup(stopOpts.graceful === true);
    },
  };
}

// ---------------------------------------------------------------------------
// Proxy clients. Every call is bounded by `timeoutMs`.

export interface ProxyEndpoint {
  readonly socketPath: string;
}

export interface ProxyResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/**
 * `CONNECT authority` through the proxy. On 200, does TLS to the origin (verifying
 * `ca` and `servername`) and `GET /`; returns the origin's response. Otherwise returns
 * the proxy's refusal.
 */
export function httpsGetViaConnect(
  proxy: ProxyEndpoint,
  authority: string,
  opts: { ca: string; servername?: string; timeoutMs?: number },
): Promise<ProxyResponse & { tunnelled: boolean }> {
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const servername = opts.servername ?? authority.replace(/:\d+$/, '');
  return withTimeout(timeoutMs, `CONNECT ${authority}`, (onCleanup) =>
    new Promise((resolve, reject) => {
      const req = http.request({
        socketPath: proxy.socketPath,
        method: 'CONNECT',
        path: authority,
        headers: { host: authority },
        agent: false,
      });
      onCleanup(() => req.destroy());
      req.once('error', reject);
      req.once('connect', (res: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
        onCleanup(() => socket.destroy());
        if (res.statusCode !== 200) {
          // Squid may keep the connection open after a refusal: read Content-Length bytes.
          readBytes(socket, head, Number(res.headers['content-length'] ?? 0)).then(
            (body) => resolve({ tunnelled: false, status: res.statusCode ?? 0, headers: res.headers, body }),
            reject,
          );
          return;
        }
        const tlsSocket = tls.connect({ socket, servername, ca: opts.ca });
        onCleanup(() => tlsSocket.destroy());
        tlsSocket.once('error', reject);
        tlsSocket.once('secureConnect', () => {
          const get = http.request({
            createConnection: () => tlsSocket,
            method: 'GET',
            path: '/',
            headers: { host: authority, connection: 'close' },
          });
          get.once('error', reject);
          get.once('response', (r) => {
            readAll(r).then(
              (body) => resolve({ tunnelled: true, status: r.statusCode ?? 0, headers: r.headers, body }),
              reject,
            );
          });
          get.end();
        });
      });
      req.end();
    }),
  );
}

/** A plain-HTTP proxy request (`GET http://...`) through the proxy. */
export function httpGetViaProxy(proxy: ProxyEndpoint, url: string, timeoutMs = 5_000): Promise<ProxyResponse> {
  const u = new URL(url);
  return withTimeout(timeoutMs, `GET ${url}`, (onCleanup) =>
    new Promise((resolve, reject) => {
      const req = http.request({
        socketPath: proxy.socketPath,
        method: 'GET',
        path: url,
        headers: { host: u.host, connection: 'close' },
        agent: false,
      });
      onCleanup(() => req.destroy());
      req.once('error', reject);
      req.once('response', (res) => {
        readAll(res).then(
          (body) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }),
          reject,
        );
      });
      req.end();
    }),
  );
}

function readBytes(socket: net.Socket, head: Buffer, length: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = head;
    const check = () => {
      if (buf.length >= length) {
        socket.off('data', onData);
        resolve(buf.subarray(0, length).toString('utf8'));
        return true;
      }
      return false;
    };
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      check();
    };
    if (check()) return;
    socket.on('data', onData);
    socket.once('end', () => resolve(buf.toString('utf8')));
    socket.once('error', reject);
  });
}

function readAll(stream: NodeJS.ReadableStream, head?: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = head && head.length > 0 ? [head] : [];
    stream.on('data', (d: Buffer) => chunks.push(d));
    stream.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    stream.once('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    stream.once('error', reject);
  });
}

async function withTimeout<T>(
  ms: number,
  what: string,
  fn: (onCleanup: (f: () => void) => void) => Promise<T>,
): Promise<T> {
  const cleanups: Array<() => void> = [];
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      fn((f) => cleanups.push(f)),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    for (const f of cleanups) f();
  }
}

function lookupUser(user: string): { uid: number; gid: number } {
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.split(':')[0] === user || l.split(':')[2] === user);
  if (!line) throw new Error(`user "${user}" does not exist (the squid package creates "proxy")`);
  const f = line.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}
