/**
 * The model gateway's cost on a streamed response: a loopback "provider" streams an SSE
 * answer (many small events, as a model does), read directly and through the gateway
 * (`startGateway`, with the key put on the way out). Ratios against the direct call in the
 * same run: time to the first event (the gateway must not buffer) and to the last byte.
 */
import * as fs from 'fs';
import * as http from 'http';
import { AddressInfo } from 'net';
import * as os from 'os';
import * as path from 'path';
import { startGateway } from '../controller/model-gateway';

const EVENTS = 2_000;
const EVENT = `data: ${JSON.stringify({ type: 'response.output_text.delta', delta: 'x'.repeat(80) })}\n\n`;
const SAMPLES = 15;

export interface GatewayCase {
  readonly how: 'direct' | 'gateway';
  /** Median ms to the first event. */
  readonly firstMs: number;
  /** Median ms to the end of the stream. */
  readonly totalMs: number;
}

async function provider(): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    let sent = 0;
    // Events in bursts of 50, one burst per tick, as a streaming model writes them.
    const burst = () => {
      for (let i = 0; i < 50 && sent < EVENTS; i++, sent++) res.write(EVENT);
      if (sent < EVENTS) setImmediate(burst);
      else res.end('data: [DONE]\n\n');
    };
    burst();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((r) => server.close(() => r())) };
}

async function stream(url: string, headers: Record<string, string>): Promise<{ firstMs: number; totalMs: number }> {
  const t0 = performance.now();
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{"stream":true}' });
  if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status} ${await res.text()}`);
  let firstMs = 0;
  let bytes = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    if (!bytes) firstMs = performance.now() - t0;
    bytes += chunk.length;
  }
  if (bytes < EVENTS * EVENT.length) throw new Error(`${url}: short stream (${bytes} bytes)`);
  return { firstMs, totalMs: performance.now() - t0 };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function benchGateway(): Promise<GatewayCase[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-bench-gw-'));
  const up = await provider();
  try {
    fs.writeFileSync(path.join(dir, 'key'), 'sk-bench-real-key');
    fs.writeFileSync(path.join(dir, 'token'), 'bench-pool-token');
    const gw = await startGateway({
      host: '127.0.0.1',
      port: 0,
      config: { pools: { bench: { tokenFile: path.join(dir, 'token'), providers: { openai: { upstream: up.url, header: 'authorization', value: 'Bearer {key}', keyFile: path.join(dir, 'key') } } } } },
    });
    try {
      const ways: Array<[GatewayCase['how'], () => Promise<{ firstMs: number; totalMs: number }>]> = [
        ['direct', () => stream(`${up.url}/v1/responses`, { authorization: 'Bearer sk-bench-real-key' })],
        ['gateway', () => stream(`${gw.url}/bench/openai/v1/responses`, { authorization: 'Bearer bench-pool-token' })],
      ];
      const samples = new Map<GatewayCase['how'], Array<{ firstMs: number; totalMs: number }>>(ways.map(([how]) => [how, []]));
      // Interleaved, after one warm-up each, so both see the same machine.
      for (let i = 0; i <= SAMPLES; i++) {
        for (const [how, run] of ways) {
          const s = await run();
          if (i > 0) samples.get(how)!.push(s);
        }
      }
      return ways.map(([how]) => ({ how, firstMs: median(samples.get(how)!.map((s) => s.firstMs)), totalMs: median(samples.get(how)!.map((s) => s.totalMs)) }));
    } finally {
      await gw.close();
    }
  } finally {
    await up.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function reportGateway(cases: readonly GatewayCase[]): string[] {
  const [direct, gateway] = cases;
  return [
    `model gateway: a streamed answer of ${EVENTS} SSE events (${Math.round((EVENTS * EVENT.length) / 1024)} KiB), median of ${SAMPLES}`,
    ...cases.map((c) => `  ${c.how.padEnd(8)} first event ${c.firstMs.toFixed(1).padStart(6)} ms   whole stream ${c.totalMs.toFixed(1).padStart(6)} ms`),
    `  ratio gateway / direct: first event ${(gateway.firstMs / direct.firstMs).toFixed(2)}, whole stream ${(gateway.totalMs / direct.totalMs).toFixed(2)}`,
  ];
}

if (require.main === module) {
  benchGateway()
    .then((c) => console.log(reportGateway(c).join('\n')))
    .catch((err) => {
      console.error(err);
      process.exitCode = 1;
    });
}
