/**
 * Issue 12 on the real API server: `paddock gateway` on the host as its synthesized
 * ServiceAccount (paddock-model-gateway, bound to system:auth-delegator by dist/), with the
 * gateway.json of dist/ (the providers' upstreams pointed at a loopback stand-in that
 * records what reaches it). Callers present projected-style tokens minted by the real
 * API server (TokenRequest): a pool's token for the gateway's audience reaches its own
 * provider with the real key; another pool's token, a token for another audience, and
 * garbage are refused, and the stand-in never sees them.
 */
import * as fs from 'fs';
import * as http from 'http';
import { AddressInfo } from 'net';
import * as os from 'os';
import * as path from 'path';
import { applyDist, deleteNamespace, NS, poolToken, Proc, startHostGateway } from './support/cluster';

jest.setTimeout(180_000);

const REAL_KEY = 'sk-ant-real-key-cluster-gw-5e6f';

describe('the model gateway on a real API server: TokenReview of pool tokens (a loopback stand-in for the provider)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-gw-cluster-'));
  const seen: Array<{ url: string; headers: http.IncomingHttpHeaders }> = [];
  let upstream: http.Server;
  let gateway: Proc | undefined;

  afterAll(async () => {
    await gateway?.stop();
    await new Promise((r) => upstream?.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("a pool's token reaches its provider with the real key; other pools, audiences and garbage get nothing", async () => {
    await deleteNamespace(NS);
    applyDist();
    upstream = http.createServer((req, res) => {
      seen.push({ url: req.url ?? '', headers: req.headers });
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"type":"message","content":[{"type":"text","text":"hi"}]}');
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;

    const gw = await startHostGateway(dir, upstreamUrl, { anthropic: REAL_KEY, openai: 'sk-openai-not-used' });
    gateway = gw;
    const url = gw.url;

    const call = (token: string, route = '/claude/anthropic/v1/messages') =>
      fetch(url + route, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': token, 'anthropic-version': '2023-06-01' }, body: '{"model":"m","messages":[]}' });

    // The claude pool's agent: its pod's projected token, for the gateway's audience.
    const claude = await poolToken('claude', ['paddock-model-gateway']);
    const ok = await call(claude);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ type: 'message' });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ url: '/v1/messages', headers: { 'x-api-key': REAL_KEY } });
    expect(JSON.stringify(seen[0].headers)).not.toContain(claude);

    // The codex pool's token for the same audience: a real pool, but not this route's.
    const codex = await poolToken('codex', ['paddock-model-gateway']);
    const other = await call(codex);
    expect(other.status).toBe(403);
    expect(((await other.json()) as any).error.message).toMatch(/pool "codex" may not use the routes of pool "claude"/);
    // The claude pool's token for the API server's audience (what a stolen kubectl token is): refused.
    expect((await call(await poolToken('claude'))).status).toBe(401);
    expect((await call('not-a-token')).status).toBe(401);
    // A pool's own token on its own route goes through; nothing refused reached the provider.
    expect((await call(codex, '/codex/openai/v1/responses')).status).toBe(200);
    expect(seen).toHaveLength(2);
    expect(seen[1]).toMatchObject({ url: '/v1/responses', headers: { authorization: 'Bearer sk-openai-not-used' } });
    expect(gateway.text()).not.toContain(REAL_KEY);
  });
});
