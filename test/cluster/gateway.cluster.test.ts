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
import { parseAllDocuments } from 'yaml';
import { api, applyDist, deleteNamespace, DIST, freePort, NS, paddock, Proc, serviceAccountKubeconfig, until } from './support/cluster';

jest.setTimeout(180_000);

const REAL_KEY = 'sk-ant-real-key-cluster-gw-5e6f';

async function poolToken(pool: string, audiences?: string[]): Promise<string> {
  const r = await api('POST', `/api/v1/namespaces/${NS}/serviceaccounts/pool-${pool}/token`, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { ...(audiences ? { audiences } : {}), expirationSeconds: 600 } });
  if (r.status !== 201) throw new Error(`TokenRequest for pool-${pool}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.status.token as string;
}

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

    // dist/'s gateway.json, with the keys where this test keeps them and the providers at the stand-in.
    const docs = parseAllDocuments(fs.readFileSync(DIST, 'utf8')).map((d) => d.toJSON()) as any[];
    const config = JSON.parse(docs.find((d) => d?.kind === 'ConfigMap' && d.metadata.name === 'paddock-model-gateway').data['gateway.json']);
    expect(Object.keys(config.pools).sort()).toEqual(['claude', 'codex']);
    for (const routes of Object.values<any>(config.pools)) {
      for (const [name, p] of Object.entries<any>(routes.providers)) {
        const keyFile = path.join(dir, `${name}.key`);
        fs.writeFileSync(keyFile, name === 'anthropic' ? REAL_KEY : 'sk-openai-not-used');
        Object.assign(p, { upstream: upstreamUrl, keyFile });
      }
    }
    const configFile = path.join(dir, 'gateway.json');
    fs.writeFileSync(configFile, JSON.stringify(config));
    const { kubeconfig } = await serviceAccountKubeconfig(NS, 'paddock-model-gateway', path.join(dir, 'gateway.kubeconfig'));
    const port = await freePort();
    gateway = paddock(['gateway', '--config', configFile, '--port', String(port), '--host', '127.0.0.1', '--kubeconfig', kubeconfig], { PATH: process.env.PATH });
    const url = `http://127.0.0.1:${port}`;
    await until('the gateway', async () => (await fetch(`${url}/healthz`).catch(() => undefined))?.ok, 30_000, gateway.text);

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
