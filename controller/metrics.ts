/**
 * Prometheus metrics of the controller, served at /metrics on a port of their
 * own (`--metrics-port`, Service port "metrics"), apart from the two APIs so
 * a scraper needs no token and reaches nothing else.
 *
 * prom-client is an optional dependency (agent images leave it out); it is
 * loaded only when metrics are served.
 */
import * as http from 'http';
import type * as Prom from 'prom-client';
import { ApiServer, listen } from './api';
import type { Controller } from './controller';
import type { LifecycleEvent } from './lifecycle';

const SECONDS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200];

/** The controller's metrics in a registry of their own (plus Node.js process metrics). */
export function controllerMetrics(controller: Controller): { readonly registry: Prom.Registry; readonly stop: () => void } {
  let prom: typeof Prom;
  try {
    prom = require('prom-client');
  } catch {
    throw new Error('metrics need prom-client, an optional dependency of paddock: install it, or run the paddock-controller image');
  }
  const registry = new prom.Registry();
  prom.collectDefaultMetrics({ register: registry, prefix: 'paddock_controller_' });
  const byPhase = (phase: string) =>
    function (this: Prom.Gauge<'pool'>) {
      this.reset();
      const state = controller.observed();
      for (const p of state.pools) this.set({ pool: p.name }, 0);
      for (const r of state.runs) if (r.phase === phase) this.inc({ pool: r.pool });
    };
  new prom.Gauge({ name: 'paddock_queue_depth', help: 'Runs waiting for a Job or a warm worker, per pool.', labelNames: ['pool'], registers: [registry], collect: byPhase('Queued') });
  new prom.Gauge({ name: 'paddock_runs_in_flight', help: 'Runs running now, per pool.', labelNames: ['pool'], registers: [registry], collect: byPhase('Running') });
  const finished = new prom.Counter({ name: 'paddock_runs_finished_total', help: 'Runs that ended, by pool, phase (Succeeded, Failed, Superseded) and runner outcome.', labelNames: ['pool', 'phase', 'outcome'], registers: [registry] });
  const toStart = new prom.Histogram({ name: 'paddock_submit_to_start_seconds', help: 'From a run being queued to an attempt starting (each attempt).', labelNames: ['pool'], buckets: SECONDS, registers: [registry] });
  const duration = new prom.Histogram({ name: 'paddock_run_duration_seconds', help: 'From an attempt starting to the run ending.', labelNames: ['pool', 'phase'], buckets: SECONDS, registers: [registry] });
  const expiries = new prom.Counter({ name: 'paddock_lease_expiries_total', help: 'Warm leases taken back because the worker stopped renewing them.', labelNames: ['pool'], registers: [registry] });
  const retries = new prom.Counter({ name: 'paddock_retries_total', help: 'Attempts queued again after a failure (agent or infrastructure).', labelNames: ['pool', 'outcome'], registers: [registry] });

  const stop = controller.onLifecycle((e: LifecycleEvent) => {
    const pool = e.pool;
    switch (e.reason) {
      case 'Started':
        if (e.queuedAt && e.startedAt) toStart.observe({ pool }, Math.max(0, e.startedAt - e.queuedAt) / 1000);
        return;
      case 'Retried':
        retries.inc({ pool, outcome: e.outcome ?? 'unknown' });
        return;
      case 'LeaseExpired':
        expiries.inc({ pool });
        return;
      case 'Succeeded':
      case 'Failed':
      case 'Superseded':
        finished.inc({ pool, phase: e.reason, outcome: e.outcome ?? (e.reason === 'Superseded' ? 'superseded' : 'unknown') });
        if (e.startedAt && e.finishedAt) duration.observe({ pool, phase: e.reason }, Math.max(0, e.finishedAt - e.startedAt) / 1000);
        return;
    }
  });
  return { registry, stop };
}

/** GET /metrics (and /healthz) on a listener of its own. */
export function startMetrics(controller: Controller, opts: { readonly port: number; readonly host?: string }): Promise<ApiServer> {
  const { registry, stop } = controllerMetrics(controller);
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://metrics').pathname;
    if (req.method === 'GET' && path === '/metrics') {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'Content-Type': registry.contentType });
          res.end(text);
        },
        (err: Error) => {
          res.writeHead(500, { 'Content-Type': 'text/plain' });
          res.end(`metrics failed: ${err.message}\n`);
        },
      );
      return;
    }
    res.writeHead(path === '/healthz' ? 200 : 404, { 'Content-Type': 'text/plain' });
    res.end(path === '/healthz' ? 'ok\n' : 'only GET /metrics here\n');
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  return listen(server, opts.port, opts.host, stop);
}
