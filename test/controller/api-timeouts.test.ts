/**
 * Slow clients over loopback (slowloris-style raw sockets) against the real lease and
 * task API listeners: stalled headers, a body that dribbles in, and idle kept-alive
 * connections are closed; a long poll, whose wait comes after the request, is not.
 */
import * as net from 'net';
import { ApiServers, startApis } from '../../controller/api';
import { Controller } from '../../controller/controller';
import { localToken, memoryPlatform, slowHarness } from './support/platform';
import { makeTmpDir } from '../support/runner-fixtures';

jest.setTimeout(30_000);

const TIMEOUTS = { headersMs: 800, requestMs: 1500, idleMs: 800, checkEveryMs: 100 };

/** Connect, then write `parts` one every `everyMs` while the socket is open; resolves with what the server sent and when it closed. */
function slowClient(port: number, parts: string[], everyMs: number): Promise<{ closedAfterMs: number; received: string; sent: number }> {
  return new Promise((resolve) => {
    const start = Date.now();
    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    const next = () => {
      if (sent < parts.length && !socket.destroyed) {
        socket.write(parts[sent++]);
        timer = setTimeout(next, everyMs);
      }
    };
    socket.on('connect', next);
    socket.on('data', (d) => (received += d.toString()));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ closedAfterMs: Date.now() - start, received, sent });
    });
  });
}

describe('controller APIs: slow clients do not hold connections forever', () => {
  let controller: Controller;
  let apis: ApiServers;
  let token: ReturnType<typeof localToken>;
  beforeAll(async () => {
    controller = new Controller({ store: memoryPlatform(slowHarness('/dev/null', 10)), namespace: 'paddock' });
    await controller.start();
    token = localToken(makeTmpDir('paddock-timeouts-'));
    apis = await startApis(controller, { port: 0, workerPort: 0, host: '127.0.0.1', timeouts: TIMEOUTS, auth: token.auth });
  });
  afterAll(async () => {
    await apis.close();
    await controller.stop();
  });

  test('headers sent one byte every 200 ms (slowloris): closed with 408 after the header timeout', async () => {
    const request = 'POST /v1/leases HTTP/1.1\r\nHost: controller\r\nX-Padding: ' + 'a'.repeat(200) + '\r\n\r\n';
    const r = await slowClient(apis.workers.port, request.split(''), 200);
    expect(r.sent).toBeLessThan(request.length); // it never got to finish
    expect(r.received).toMatch(/^HTTP\/1\.1 408/);
    expect(r.closedAfterMs).toBeLessThan(10_000);
  });

  test('a body that dribbles in: closed after the request timeout, on the task API too', async () => {
    const head = 'POST /v1/tasks HTTP/1.1\r\nHost: controller\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n';
    const r = await slowClient(apis.tasks.port, [head, ...'{"name": "x"'.padEnd(1000, ' ').split('')], 100);
    expect(r.sent).toBeLessThan(1001);
    expect(r.received).toMatch(/^HTTP\/1\.1 408/);
    expect(r.closedAfterMs).toBeLessThan(10_000);
  });

  test('an idle kept-alive connection is closed after the idle timeout', async () => {
    const r = await slowClient(apis.tasks.port, ['GET /healthz HTTP/1.1\r\nHost: controller\r\n\r\n'], 100);
    expect(r.received).toMatch(/^HTTP\/1\.1 200/);
    expect(r.closedAfterMs).toBeGreaterThanOrEqual(TIMEOUTS.idleMs - 100);
    expect(r.closedAfterMs).toBeLessThan(10_000);
  });

  test('a connection that sends nothing at all is closed too', async () => {
    const r = await slowClient(apis.workers.port, [], 100);
    expect(r.closedAfterMs).toBeLessThan(10_000);
  });

  test('a long poll longer than the request timeout still gets its answer', async () => {
    const started = Date.now();
    const res = await fetch(`${apis.workers.url}/v1/leases`, { method: 'POST', headers: token.headers, body: JSON.stringify({ pool: 'warm', worker: 'w', waitMs: 2500 }) });
    expect(res.status).toBe(204);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2400);
  });
});
