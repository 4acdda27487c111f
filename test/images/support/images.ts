/**
 * Helpers for the worker-image suite: podman with this machine's flags, build.sh and
 * measure.sh, a synthesized agent pod turned into `podman run` flags (ConfigMaps laid out
 * the way the kubelet mounts them), and test servers inside a network namespace the
 * container joins (so every byte of test traffic stays on that namespace's loopback).
 */
import { execFile, execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import type { Container, PodSpec, Volume } from 'kubernetes-types/core/v1';
import * as ts from 'typescript';
import { imageRef, ImageName } from '../../../core/images';
import { commandExists, Netns, NetnsNode, startNodeInNetns } from '../../support/netns';
import type { RecordedRequest } from '../../support/mock-model-server';

export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const WORKER_IMAGES = path.join(ROOT, 'worker-images');
export const PRESETS = ['codex', 'claude-code', 'gemini-cli', 'opencode', 'copilot'] as const;
export type Preset = (typeof PRESETS)[number];

/** podman's global flags here: runc (crun fails on this cgroup v1 host) and cgroupfs. Same default as build.sh. */
export function podmanFlags(): string[] {
  if (process.env.PADDOCK_PODMAN_FLAGS !== undefined) return process.env.PADDOCK_PODMAN_FLAGS.split(/\s+/).filter(Boolean);
  return [...(commandExists('runc') ? ['--runtime', 'runc'] : []), '--cgroup-manager', 'cgroupfs'];
}

/** Explicit rlimits (podman's defaults cannot be set here). Same default as build.sh. */
export function ulimitFlags(): string[] {
  if (process.env.PADDOCK_ULIMITS !== undefined) return process.env.PADDOCK_ULIMITS.split(/\s+/).filter(Boolean);
  const [nofile, nproc] = execFileSync('bash', ['-c', 'ulimit -Hn; ulimit -Hu'], { encoding: 'utf8' }).trim().split('\n');
  const cap = (v: string, max: number) => (v === 'unlimited' || Number(v) > max ? max : Number(v));
  const n = cap(nofile, 65536);
  const p = cap(nproc, 16384);
  return ['--ulimit', `nofile=${n}:${n}`, '--ulimit', `nproc=${p}:${p}`];
}

/** What this suite needs, or a message naming what is missing and how to get it. */
export function missingPrerequisites(): string | undefined {
  const missing: string[] = [];
  if (process.platform !== 'linux') return 'the image suite needs Linux';
  if (process.getuid?.() !== 0) missing.push('root (debootstrap, network namespaces)');
  for (const tool of ['podman', 'runc', 'debootstrap', 'ip', 'setpriv', 'git', 'openssl']) {
    if (!commandExists(tool)) missing.push(tool);
  }
  if (missing.length === 0) return undefined;
  return `npm run test:images needs ${missing.join(', ')}: run \`sudo worker-images/setup-podman.sh\` (Debian) first`;
}

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** `podman <flags> ARGS` (synchronous). */
export function podman(args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): CommandResult {
  const r = spawnSync('podman', [...podmanFlags(), ...args], {
    encoding: 'utf8',
    input: opts.input,
    timeout: opts.timeoutMs ?? 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** `podman <flags> ARGS` (asynchronous, stdin closed), for the long-running container. */
export function podmanAsync(args: readonly string[], timeoutMs: number): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = execFile('podman', [...podmanFlags(), ...args], { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
      resolve({ code, stdout, stderr: err && code === -1 ? `${stderr}\n${err.message}` : stderr });
    });
    child.stdin?.end();
  });
}

/** Runs IMAGE (its entrypoint, or `entrypoint`) as the agent user, read-only, without network. */
export function runImage(image: string, args: readonly string[], entrypoint?: string): CommandResult {
  return podman([
    'run', '--rm', '--pull', 'never', ...ulimitFlags(), '--network', 'none', '--read-only', '--read-only-tmpfs=false',
    '--tmpfs', '/tmp:rw,mode=1777', '--tmpfs', '/home/agent:rw,U', '--user', '10001:10001', '--cap-drop', 'ALL',
    '--security-opt', 'no-new-privileges', ...(entrypoint ? ['--entrypoint', entrypoint] : []), image, ...args,
  ]);
}

/** Runs a command in IMAGE like runImage; returns stdout, throws on a non-zero exit. */
export function inImage(image: string, argv: readonly string[], entrypoint = argv[0]): string {
  const r = runImage(image, argv.slice(1), entrypoint);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} in ${image} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** The image reference images.json gives `name`, read the way the constructs read it. */
export function imageOf(name: ImageName): string {
  return imageRef(name);
}

/**
 * worker-images/build.sh --builder podman --debootstrap --only NAMES. The log goes to a
 * file (its tail is in the error on failure); returns the log and the wall time.
 */
export function buildImages(names: readonly string[], logFile: string): { seconds: number; log: string } {
  const started = Date.now();
  const out = fs.openSync(logFile, 'w');
  try {
    const r = spawnSync('bash', [path.join(WORKER_IMAGES, 'build.sh'), '--builder', 'podman', '--debootstrap', '--no-sizes', '--only', names.join(',')], {
      cwd: ROOT,
      stdio: ['ignore', out, out],
      timeout: 40 * 60 * 1000,
    });
    const log = fs.readFileSync(logFile, 'utf8');
    if (r.status !== 0) {
      throw new Error(`build.sh --only ${names.join(',')} failed (${r.status ?? r.signal ?? r.error}); last lines of ${logFile}:\n${log.split('\n').slice(-60).join('\n')}`);
    }
    return { seconds: (Date.now() - started) / 1000, log };
  } finally {
    fs.closeSync(out);
  }
}

export interface ImageMeasure {
  readonly image: string;
  /** Bytes, as podman reports the image. */
  readonly size: number;
  readonly cli: number;
  readonly node: number;
  readonly git: number;
  readonly gitPackages: string[];
  readonly paddock: number;
  /** cli + node + git */
  readonly payload: number;
  readonly ratio: number;
}

/** worker-images/measure.sh --json: size, payload and ratio of each image. */
export function measureImages(images: readonly string[]): ImageMeasure[] {
  const out = execFileSync('bash', [path.join(WORKER_IMAGES, 'measure.sh'), '--builder', 'podman', '--json', ...images], { encoding: 'utf8', timeout: 300_000 });
  return out
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as ImageMeasure);
}

export function formatMeasures(rows: readonly ImageMeasure[]): string {
  const mb = (b: number) => (b / 1e6).toFixed(1).padStart(8);
  const lines = [`${'image'.padEnd(46)} ${'size MB'.padStart(8)} ${'cli'.padStart(8)} ${'node'.padStart(8)} ${'git'.padStart(8)} ${'payload'.padStart(8)} ${'ratio'.padStart(6)}`];
  for (const r of rows) {
    lines.push(`${r.image.padEnd(46)} ${mb(r.size)} ${mb(r.cli)} ${mb(r.node)} ${mb(r.git)} ${mb(r.payload)} ${r.ratio.toFixed(3).padStart(6)}`);
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------
// From a synthesized pod spec to `podman run`

/**
 * Writes a ConfigMap volume the way the kubelet does: the keys in a timestamped folder,
 * `..data` pointing at it, and one symlink per key (`task.json -> ..data/task.json`).
 */
export function writeConfigMapVolume(dir: string, data: Record<string, string>): void {
  const stamp = '..2024_01_01_00_00_00.000000001';
  fs.mkdirSync(path.join(dir, stamp), { recursive: true, mode: 0o755 });
  for (const [key, value] of Object.entries(data)) {
    fs.writeFileSync(path.join(dir, stamp, key), value, { mode: 0o644 });
  }
  fs.symlinkSync(stamp, path.join(dir, '..data'));
  for (const key of Object.keys(data)) fs.symlinkSync(path.join('..data', key), path.join(dir, key));
}

export interface PodRunOptions {
  /** Container name. */
  readonly name: string;
  /** `--network` value, e.g. `ns:/run/netns/NAME`. */
  readonly network: string;
  /** Where ConfigMap volumes are laid out on the host. */
  readonly volumesDir: string;
  /** ConfigMap name -> data (the synthesized ConfigMaps). */
  readonly configMaps: Record<string, Record<string, string>>;
  /** Secret name -> key -> value, for env secretKeyRefs. */
  readonly secrets: Record<string, Record<string, string>>;
  /** emptyDir mountPath -> host directory to bind instead of a tmpfs (to read it afterwards). */
  readonly hostDirs: Record<string, string>;
  /** Test-only additions (e.g. the git server's CA), listed explicitly. */
  readonly extraEnv?: Record<string, string>;
  readonly extraMounts?: string[];
  /** Which of the pod's containers or init containers to run (each is its own `podman run`). @default - its one container */
  readonly container?: string;
}

const HANDLED_POD_KEYS = new Set(['serviceAccountName', 'automountServiceAccountToken', 'enableServiceLinks', 'runtimeClassName', 'securityContext', 'initContainers', 'containers', 'volumes', 'restartPolicy']);
const HANDLED_CONTAINER_KEYS = new Set(['name', 'image', 'args', 'env', 'resources', 'securityContext', 'volumeMounts']);

/**
 * The `podman run` arguments that reproduce one container of a synthesized agent pod (its
 * container, or `opts.container`: run the init containers first, in order; emptyDirs
 * bound to host directories carry what one leaves for the next):
 * its uid/gid and fsGroup, read-only root, dropped capabilities, no privilege escalation,
 * resource limits, env (secretKeyRefs resolved), ConfigMap volumes, emptyDirs as tmpfs
 * (size-limited) or host directories, and `args` after the image's entrypoint. Anything in
 * the spec it does not know how to reproduce is an error, so the test cannot silently
 * drift from what the constructs synthesize. (runtimeClassName is not reproduced: runc.)
 */
export function podmanRunArgs(pod: PodSpec, opts: PodRunOptions): string[] {
  for (const key of Object.keys(pod)) if (!HANDLED_POD_KEYS.has(key)) throw new Error(`podmanRunArgs: pod field "${key}" is not reproduced`);
  if (pod.containers.length !== 1) throw new Error('podmanRunArgs: expected one container');
  const all: Container[] = [...(pod.initContainers ?? []), ...pod.containers];
  const c: Container | undefined = opts.container === undefined ? pod.containers[0] : all.find((x) => x.name === opts.container);
  if (!c) throw new Error(`podmanRunArgs: the pod has no container "${opts.container}"; it has ${all.map((x) => x.name).join(', ')}`);
  for (const key of Object.keys(c)) if (!HANDLED_CONTAINER_KEYS.has(key)) throw new Error(`podmanRunArgs: container field "${key}" is not reproduced`);
  const psc = pod.securityContext ?? {};
  const csc = c.securityContext ?? {};
  const uid = csc.runAsUser ?? psc.runAsUser;
  const gid = csc.runAsGroup ?? psc.runAsGroup;
  if (uid === undefined || gid === undefined) throw new Error('podmanRunArgs: the pod sets no runAsUser/runAsGroup');
  if ((csc.runAsNonRoot ?? psc.runAsNonRoot) && uid === 0) throw new Error('podmanRunArgs: runAsNonRoot with uid 0');
  const args = ['run', '--rm', '--pull', 'never', '--name', opts.name, '--network', opts.network, ...ulimitFlags(), '--user', `${uid}:${gid}`];
  if (psc.fsGroup !== undefined) args.push('--group-add', String(psc.fsGroup));
  if (csc.readOnlyRootFilesystem) args.push('--read-only', '--read-only-tmpfs=false');
  for (const cap of csc.capabilities?.drop ?? []) args.push('--cap-drop', cap);
  for (const cap of csc.capabilities?.add ?? []) args.push('--cap-add', cap);
  if (csc.allowPrivilegeEscalation === false) args.push('--security-opt', 'no-new-privileges');
  if (csc.privileged) throw new Error('podmanRunArgs: privileged containers are not reproduced');
  for (const sc of [psc.seccompProfile, csc.seccompProfile]) {
    if (sc && sc.type !== 'RuntimeDefault') throw new Error(`podmanRunArgs: seccompProfile ${sc.type} is not reproduced`);
  }
  const limits = (c.resources?.limits ?? {}) as Record<string, string>;
  if (limits.memory) args.push('--memory', quantityToPodman(limits.memory));
  if (limits.cpu) args.push('--cpus', String(cpuToNumber(limits.cpu)));

  for (const e of c.env ?? []) {
    const value = e.value ?? (e.valueFrom?.secretKeyRef ? opts.secrets[e.valueFrom.secretKeyRef.name ?? '']?.[e.valueFrom.secretKeyRef.key] : undefined);
    if (value === undefined) throw new Error(`podmanRunArgs: env ${e.name} has no value the test can resolve`);
    args.push('--env', `${e.name}=${value}`);
  }
  for (const [k, v] of Object.entries(opts.extraEnv ?? {})) args.push('--env', `${k}=${v}`);

  const volumes = new Map<string, Volume>((pod.volumes ?? []).map((v) => [v.name, v]));
  for (const m of c.volumeMounts ?? []) {
    const v = volumes.get(m.name);
    if (!v) throw new Error(`podmanRunArgs: volumeMount ${m.name} has no volume`);
    if (v.configMap) {
      const data = opts.configMaps[v.configMap.name ?? ''];
      if (!data) throw new Error(`podmanRunArgs: ConfigMap ${v.configMap.name} was not synthesized`);
      const dir = path.join(opts.volumesDir, v.name);
      // One volume per pod: a second container of the pod mounts what the first laid out.
      if (!fs.existsSync(path.join(dir, '..data'))) writeConfigMapVolume(dir, data);
      args.push('--volume', `${dir}:${m.mountPath}:${m.readOnly ? 'ro' : 'rw'}`);
    } else if (v.emptyDir) {
      const host = opts.hostDirs[m.mountPath];
      if (host) {
        fs.mkdirSync(host, { recursive: true });
        fs.chownSync(host, uid, psc.fsGroup ?? gid);
        args.push('--volume', `${host}:${m.mountPath}:rw`);
      } else {
        const size = v.emptyDir.sizeLimit ? `,size=${quantityToPodman(String(v.emptyDir.sizeLimit))}` : '';
        // U: owned by the container's user, like an emptyDir with fsGroup.
        args.push('--tmpfs', `${m.mountPath}:rw,nosuid,nodev${size}${m.mountPath === '/tmp' ? ',mode=1777' : ',U'}`);
      }
    } else {
      throw new Error(`podmanRunArgs: volume ${v.name} (${Object.keys(v).join(', ')}) is not reproduced`);
    }
  }
  for (const m of opts.extraMounts ?? []) args.push('--volume', m);
  if (!c.image) throw new Error('podmanRunArgs: the container has no image');
  args.push(c.image, ...(c.args ?? []));
  return args;
}

/** "4Gi" -> "4g", "64Mi" -> "64m", "1G" -> "1000m" (podman sizes are binary units). */
export function quantityToPodman(q: string): string {
  const m = /^(\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(q);
  if (!m) throw new Error(`quantity "${q}" is not handled`);
  const n = Number(m[1]);
  switch (m[2]) {
    case undefined:
      return String(n);
    case 'Ki':
      return `${n}k`;
    case 'Mi':
      return `${n}m`;
    case 'Gi':
      return `${n}g`;
    case 'Ti':
      return `${n * 1024}g`;
    default: {
      const bytes = n * { k: 1e3, M: 1e6, G: 1e9, T: 1e12 }[m[2] as 'k' | 'M' | 'G' | 'T'];
      return `${Math.floor(bytes / 1024)}k`;
    }
  }
}

function cpuToNumber(q: string): number {
  return q.endsWith('m') ? Number(q.slice(0, -1)) / 1000 : Number(q);
}

// ---------------------------------------------------------------------------
// Test servers inside the container's network namespace

/** test/support/mock-model-server.ts compiled to CommonJS in `dir` (it only needs node's http). */
export function compileMockServer(dir: string): string {
  const source = fs.readFileSync(path.join(ROOT, 'test', 'support', 'mock-model-server.ts'), 'utf8');
  const js = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
  }).outputText;
  const file = path.join(dir, 'mock-model-server.js');
  fs.writeFileSync(file, js);
  return file;
}

const MOCK_SOURCE = `
let server;
async function init(c) {
  server = await require(c.module).startMockModelServer({ shellCommand: c.shellCommand, finalText: c.finalText });
}
async function handle(op) {
  if (op === 'url') return server.url;
  if (op === 'requests') return server.requests.map((r) => ({ method: r.method, url: r.url, headers: r.headers, protocol: r.protocol, kind: r.kind, toolNames: r.toolNames, body: r.body }));
  if (op === 'close') return server.close();
  throw new Error('unknown op ' + op);
}
`;

export interface NetnsMock {
  readonly url: string;
  requests(): Promise<Array<Pick<RecordedRequest, 'method' | 'url' | 'headers' | 'protocol' | 'kind' | 'toolNames' | 'body'>>>;
  stop(): Promise<void>;
}

/** The loopback mock model server, inside `ns`. */
export async function startMockInNetns(ns: Netns, module: string, opts: { shellCommand: string; finalText: string }): Promise<NetnsMock> {
  const node: NetnsNode = await startNodeInNetns(ns, MOCK_SOURCE, { module, ...opts });
  const url = await node.call<string>('url');
  return {
    url,
    requests: () => node.call('requests'),
    async stop() {
      await node.call('close').catch(() => undefined);
      await node.stop();
    },
  };
}

const GIT_SOURCE = `
let server;
async function init(c) {
  server = await require(c.module).startGitServer({ root: c.root, tls: true });
}
async function handle(op, arg) {
  if (op === 'info') return { url: server.url, caFile: server.caFile, repoUrl: server.repoUrl(arg) };
  if (op === 'requests') return server.requests;
  if (op === 'close') return server.close();
  throw new Error('unknown op ' + op);
}
`;

export interface NetnsGit {
  readonly caFile: string;
  repoUrl(name: string): string;
  requests(): Promise<Array<{ method: string; url: string; status: number }>>;
  stop(): Promise<void>;
}

/** The HTTPS git server (bench/git-http-server, built into lib/), inside `ns`. */
export async function startGitInNetns(ns: Netns, reposRoot: string): Promise<NetnsGit> {
  const module = path.join(ROOT, 'lib', 'bench', 'git-http-server.js');
  if (!fs.existsSync(module)) throw new Error(`${module} is missing: npm run build`);
  const node = await startNodeInNetns(ns, GIT_SOURCE, { module, root: reposRoot });
  const info = await node.call<{ url: string; caFile: string; repoUrl: string }>('info', 'demo');
  const base = info.url;
  return {
    caFile: info.caFile,
    repoUrl: (name) => `${base}/${name}.git`,
    requests: () => node.call('requests'),
    async stop() {
      await node.call('close').catch(() => undefined);
      await node.stop();
    },
  };
}
