/**
 * The model gateway's retry cap (`<pool>/<provider>;max-retries=N/...`): the real gateway on
 * loopback in front of a loopback provider that answers what each test scripts.
 */
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import type { AddressInfo } from 'net';
import { Gateway, startGateway, TokenReviewer } from '../../controller/model-gateway';
import { providerFailingMessage, PROVIDER_FAILING_PATTERN } from '../../core/model-providers';
import { makeTmpDir } from '../support/runner-fixtures';

interface Provider {
  readonly url: string;
  /** Statuses still to answer, in order; then 200. */
  readonly script: number[];
  requests: number;
  close(): Promise<void>;
}

async function startProvider(): Promise<Provider> {
  const p = { script: [] as number[], requests: 0 } as { script: number[]; requests: number };
  const server = http.createServer((req, res) => {
    p.requests++;
    req.resume();
    const status = p.script.shift() ?? 200;
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(status === 200 ? { ok: true } : { error: { message: `upstream says ${status}` } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(p, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  });
}

let dir: string;
let provider: Provider;
let gateway: Gateway;
const log: string[] = [];
// A fake TokenReviewer: two pods (two tokens) of the same pool.
const reviewer: TokenReviewer = { review: async (token) => (token.startsWith('pod-') ? 'system:serviceaccount:paddock:pool-p' : undefined) };

beforeAll(async () => {
  dir = makeTmpDir('paddock-gw-unit-');
  fs.writeFileSync(path.join(dir, 'key'), 'sk-real-0123456789');
  provider = await startProvider();
  gateway = await startGateway({
    host: '127.0.0.1',
    port: 0,
    reviewer,
    log: (l) => log.push(l),
    config: {
      pools: {
        p: {
          serviceAccount: 'system:serviceaccount:paddock:pool-p',
          providers: {
            openai: { upstream: provider.url, header: 'authorization', value: 'Bearer {key}', keyFile: path.join(dir, 'key') },
            dead: { upstream: 'http://127.0.0.1:9', header: 'authorization', value: 'Bearer {key}', keyFile: path.join(dir, 'key') },
          },
        },
      },
    },
  });
});

afterAll(async () => {
  await gateway.close();
  await provider.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  provider.script.length = 0;
  provider.requests = 0;
});

async function call(route: string, token = 'pod-a'): Promise<{ status: number; body: any }> {
  const res = await fetch(`${gateway.url}/p/${route}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' });
  return { status: res.status, body: await res.json() };
}

const statuses = async (route: string, n: number, token?: string) => {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await call(route, token)).status);
  return out;
};

describe('the model gateway\'s retry cap', () => {
  test('without max-retries every failure is passed through as the provider answered it', async () => {
    provider.script.push(500, 500, 500, 500, 500);
    expect(await statuses('openai', 5)).toEqual([500, 500, 500, 500, 500]);
  });

  test('max-retries=2: two failures pass through, the third is answered 424 with the message the runner finds; the next streak starts afresh', async () => {
    provider.script.push(500, 503, 502, 500, 500, 500);
    const answers = [];
    for (let i = 0; i < 6; i++) answers.push(await call('openai;max-retries=2'));
    expect(answers.map((a) => a.status)).toEqual([500, 503, 424, 500, 500, 424]);
    expect(answers[0].body).toEqual({ error: { message: 'upstream says 500' } });
    expect(answers[2].body).toEqual({ type: 'error', error: { type: 'paddock_provider_failing', message: providerFailingMessage('openai', 3, 2) } });
    expect(PROVIDER_FAILING_PATTERN.exec(answers[2].body.error.message)?.slice(1)).toEqual(['openai', '3']);
    // Every request reached the provider: the cap changes answers, it never keeps a request from a live provider.
    expect(provider.requests).toBe(6);
    expect(log).toContain('pool p, provider openai: 3 failed requests in a row from one caller (max-retries 2); answered 424, final');
  });

  test('429 counts as a failure; a success ends the streak', async () => {
    provider.script.push(429, 500, 200, 500, 429, 500);
    expect(await statuses('openai;max-retries=2', 6)).toEqual([429, 500, 200, 500, 429, 424]);
  });

  test('a client error (4xx other than 429) is an answer of a live provider: it ends the streak', async () => {
    provider.script.push(500, 400, 500, 500);
    expect(await statuses('openai;max-retries=1', 4)).toEqual([500, 400, 500, 424]);
  });

  test('each caller (pod token) has its own streak', async () => {
    provider.script.push(500, 500, 500, 500);
    expect([(await call('openai;max-retries=1', 'pod-a')).status, (await call('openai;max-retries=1', 'pod-b')).status]).toEqual([500, 500]);
    expect([(await call('openai;max-retries=1', 'pod-a')).status, (await call('openai;max-retries=1', 'pod-b')).status]).toEqual([424, 424]);
  });

  test('a provider that does not answer at all counts too: 502, then 424', async () => {
    expect(await statuses('dead;max-retries=1', 2)).toEqual([502, 424]);
    expect(await statuses('dead;max-retries=0', 1)).toEqual([424]);
  });

  test('the final message holds nothing that makes opencode retry anyway (a 5xx or 429 status number, "server error", "try again", ...)', () => {
    for (const [failures, cap] of [[1, 0], [3, 2], [11, 10]]) {
      expect(providerFailingMessage('copilot-byok', failures, cap)).not.toMatch(/429|500|502|503|504|524|server.error|internal.error|unavailable|overloaded|try again|retry your request|rate.limit|timeout|terminated|exhausted/i);
    }
  });

  test.each([['openai;max-retries=x'], ['openai;max-retries=11'], ['openai;retries=2']])('a bad route parameter (%s) is refused with 400, naming the one there is', async (route) => {
    const r = await call(route);
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/^paddock model gateway: route parameter "[^"]+" is not understood; the only one is max-retries=N with N from 0 to 10, e\.g\. <pool>\/<provider>;max-retries=2\/\.\.\.$/);
    expect(provider.requests).toBe(0);
  });
});
