/**
 * The task client waits out a controller that is starting or electing a leader (503 with
 * Retry-After), and shows any other answer, 503 without Retry-After included, as it is.
 * A small loopback HTTP server plays the controller: what is under test is the client.
 */
import * as http from 'http';
import { AddressInfo } from 'net';
import { main } from '../../cli/main';

async function serve(answers: Array<{ status: number; headers?: Record<string, string>; body: unknown }>): Promise<{ url: string; hits: () => number; close: () => Promise<void> }> {
  let hits = 0;
  const server = http.createServer((req, res) => {
    const a = answers[Math.min(hits++, answers.length - 1)];
    res.writeHead(a.status, { 'Content-Type': 'application/json', ...a.headers });
    res.end(JSON.stringify(a.body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits: () => hits, close: () => new Promise((r) => server.close(() => r())) };
}

async function list(url: string): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(['tasks', 'list', '--server', url, '--token', 't0ken', '--output', 'json'], { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) }, {});
  return { code, stdout, stderr };
}

describe('paddock tasks against a controller that answers 503', () => {
  test('503 with Retry-After is retried until the controller answers', async () => {
    const starting = { status: 503, headers: { 'Retry-After': '0' }, body: { error: 'the controller is starting; retry' } };
    const s = await serve([starting, starting, { status: 200, body: { tasks: [] } }]);
    try {
      const r = await list(s.url);
      expect(s.hits()).toBe(3);
      expect(r.code).toBe(0);
    } finally {
      await s.close();
    }
  });

  test('503 without Retry-After is shown at once', async () => {
    const s = await serve([{ status: 503, body: { error: 'down for good' } }, { status: 200, body: { tasks: [] } }]);
    try {
      const r = await list(s.url);
      expect(s.hits()).toBe(1);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('down for good');
    } finally {
      await s.close();
    }
  });
});
