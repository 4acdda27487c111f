/**
 * `paddock controller` as a real process (the built CLI) against the thin fake of the
 * Kubernetes API (fake-kube-api.ts): client-node is ESM-only, so the controller never
 * runs inside jest. Test-only helpers shared by the fake-API suites.
 */
import { ChildProcess, spawn } from 'child_process';
import * as net from 'net';
import * as path from 'path';
import { Chart, Testing } from 'cdk8s';
import { AgentTask, Harness, Platform, synthesize } from '../../../constructs';
import { keyedPool } from '../../support/synth';
import type { KubeObject } from '../../../controller/store';
import type { FakeKubeApi } from './fake-kube-api';

export const PADDOCK = path.resolve(__dirname, '..', '..', '..', 'bin', 'paddock.js');

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, host, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export async function until<T>(what: string, get: () => T | undefined | Promise<T | undefined>, debug: () => string, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await get();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${debug()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The synthesized platform's ConfigMaps and Jobs, as `kubectl apply -f dist/` would create them. */
export function applyPlatform(fake: FakeKubeApi, opts: { declaredTask?: boolean; warmPools?: string[] } = {}): void {
  const app = Testing.app();
  const chart = new Chart(app, 'test', { disableResourceNameHashes: true });
  const platform = new Platform(chart, 'platform', { namespace: 'paddock' });
  const pool = keyedPool(platform, 'codex', { harnesses: [Harness.codex()], concurrency: 5 });
  for (const name of opts.warmPools ?? []) keyedPool(platform, name, { harnesses: [Harness.codex()], mode: 'warm', replicas: 1 });
  if (opts.declaredTask) new AgentTask(platform, 'declared', { pool, prompt: 'declared prompt' });
  for (const o of synthesize(chart) as KubeObject[]) {
    if (o.kind === 'ConfigMap' || o.kind === 'Job') fake.store.createSync(o);
  }
}

export interface Ctl {
  child: ChildProcess;
  url: string;
  workerUrl: string;
  metricsUrl: string;
  out: string[];
}

export async function startController(kubeconfig: string, opts: { extra?: string[]; id?: string; address?: string; ports?: { port: number; workerPort: number; metricsPort: number } } = {}): Promise<Ctl> {
  const host = opts.address ?? '127.0.0.1';
  const ports = opts.ports ?? { port: await freePort(host), workerPort: await freePort(host), metricsPort: await freePort(host) };
  const out: string[] = [];
  const args = ['controller', '--namespace', 'paddock', '--address', host, '--port', String(ports.port), '--worker-port', String(ports.workerPort), '--metrics-port', String(ports.metricsPort), '--kubeconfig', kubeconfig];
  const child = spawn(process.execPath, [PADDOCK, ...args, ...(opts.extra ?? [])], {
    env: { PATH: process.env.PATH, PADDOCK_POD_NAME: opts.id ?? 'ctl-1', PADDOCK_POD_IP: host },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => out.push(String(d)));
  child.stderr!.on('data', (d) => out.push(String(d)));
  const url = `http://${host}:${ports.port}`;
  await until('the controller API', async () => (await fetch(url + '/healthz').then((r) => r.ok).catch(() => false)) || undefined, () => out.join(''));
  return { child, url, workerUrl: `http://${host}:${ports.workerPort}`, metricsUrl: `http://${host}:${ports.metricsPort}`, out };
}

export async function stopController(c: Ctl | undefined): Promise<void> {
  if (!c || c.child.exitCode !== null) return;
  c.child.kill('SIGTERM');
  const killer = setTimeout(() => c.child.kill('SIGKILL'), 8000);
  await new Promise((r) => c.child.once('exit', r));
  clearTimeout(killer);
}

/** A JSON call with a bearer token. */
export async function call(base: string, method: string, route: string, opts: { token?: string; body?: unknown; contentType?: string } = {}): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = { ...(opts.token ? { Authorization: `Bearer ${opts.token}` } : {}), ...(opts.body !== undefined ? { 'Content-Type': opts.contentType ?? 'application/json' } : {}) };
  const r = await fetch(base + route, { method, headers, ...(opts.body !== undefined ? { body: typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body) } : {}) });
  const text = await r.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // plain text
  }
  return { status: r.status, body };
}
