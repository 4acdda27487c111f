/**
 * The publish step behind its allowlist's egress proxy: git (HTTPS_PROXY) and the
 * forge's API calls (proxiedFetch) both tunnel through CONNECT. The proxy here is a
 * thin fake of the allowlist's one (say so: it only admits CONNECT to the listed
 * host:port pairs, records every request and refuses the rest with 403).
 */
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as path from 'path';
import { resolveDelivery } from '../../core/delivery';
import { publish } from '../../controller/publisher';
import { proxiedFetch } from '../../controller/proxy-fetch';
import { GitServer, startGitServer } from '../support/git-server';
import { FakeForge, startFakeForge } from '../support/fake-forge';
import { git, makeChangeRepo, makeTmpDir } from '../support/runner-fixtures';

const PUSHER = { username: 'robot', password: 'push-token-proxy-5e6f7a' };

interface FakeProxy {
  readonly url: string;
  readonly connects: Array<{ target: string; status: number }>;
  close(): Promise<void>;
}

/** A thin fake CONNECT proxy: tunnels to `allowed` host:port targets only. */
async function startFakeConnectProxy(allowed: () => string[]): Promise<FakeProxy> {
  const connects: Array<{ target: string; status: number }> = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((_req, res) => {
    res.writeHead(403).end('plain requests refused\n');
  });
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    sockets.add(client);
    const target = req.url ?? '';
    if (!allowed().includes(target)) {
      connects.push({ target, status: 403 });
      client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    connects.push({ target, status: 200 });
    const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
    const upstream = net.connect(port, host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    const end = () => (client.destroy(), upstream.destroy());
    upstream.on('error', end);
    client.on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    connects,
    close: () =>
      new Promise<void>((r) => {
        sockets.forEach((s) => s.destroy());
        server.close(() => r());
      }),
  };
}

let root: string;
let server: GitServer;
let forge: FakeForge;
let proxy: FakeProxy;
let base: string;
let allowed: string[] = [];

beforeAll(async () => {
  root = makeTmpDir('paddock-publish-proxy-');
  base = makeChangeRepo(path.join(root, 'repos'), 'acme/work');
  server = await startGitServer({ root: path.join(root, 'repos'), tls: true, push: PUSHER });
  forge = await startFakeForge('github');
  proxy = await startFakeConnectProxy(() => allowed);
});

afterAll(async () => {
  await Promise.all([server.close(), forge.close(), proxy.close()]);
});

const forgeHost = () => new URL(forge.url).host;

describe('the publish step through its egress proxy (thin fake CONNECT proxy, real git server, thin fake GitHub API)', () => {
  test('git and the pull request both tunnel to the allowed hosts; nothing goes around the proxy', async () => {
    allowed = [server.host, forgeHost()];
    const tokenFile = path.join(makeTmpDir(), 'token');
    fs.writeFileSync(tokenFile, PUSHER.password);
    const task = { name: 'fix', sources: [{ name: 'work', type: 'git_https' as const, url: server.repoUrl('acme/work'), branch: 'main' }], delivery: { branch: 'paddock/proxied', pullRequest: { title: 'Through the proxy' } } };
    const delivery = resolveDelivery(task, [{ host: server.host, secret: 's', key: 'k', username: PUSHER.username, forge: 'github', api: forge.url }])!;
    const before = forge.requests.length;
    const patch = Buffer.from('diff --git a/proxied.txt b/proxied.txt\nnew file mode 100644\n--- /dev/null\n+++ b/proxied.txt\n@@ -0,0 +1 @@\n+via the proxy\n');
    const status = await publish({
      delivery,
      base,
      patch,
      tokenFile,
      caEnv: { GIT_SSL_CAINFO: server.caFile! },
      proxyEnv: { HTTPS_PROXY: proxy.url, https_proxy: proxy.url, NO_PROXY: '', no_proxy: '' },
      fetch: proxiedFetch(proxy.url, []),
    });
    expect(status).toMatchObject({ state: 'pushed', branch: 'paddock/proxied', pullRequest: { number: 7 } });
    expect(git(path.join(root, 'repos', 'acme', 'work.git'), 'show', 'paddock/proxied:proxied.txt')).toBe('via the proxy');
    const targets = new Set(proxy.connects.map((c) => c.target));
    expect(targets).toEqual(new Set([server.host, forgeHost()]));
    expect(proxy.connects.every((c) => c.status === 200)).toBe(true);
    // The exact API calls, through the tunnel.
    expect(forge.requests.slice(before).map((r) => `${r.method} ${r.url}`)).toEqual(['POST /repos/acme/work/pulls']);
    expect(forge.requests[before].headers.authorization).toBe(`Bearer ${PUSHER.password}`);
    expect(forge.requests[before].body).toMatchObject({ title: 'Through the proxy', head: 'paddock/proxied', base: 'main', draft: true });
  });

  test('an API host the allowlist does not name: the proxy refuses it, the error says so', async () => {
    allowed = [server.host];
    const f = proxiedFetch(proxy.url, []);
    await expect(f(`${forge.url}/repos/acme/work`)).rejects.toThrow(new RegExp(`the egress proxy refused CONNECT ${forgeHost().replace(/\./g, '\\.')}: HTTP 403 \\(is 127\\.0\\.0\\.1 on the publish allowlist\\?\\)`));
    expect(proxy.connects.at(-1)).toEqual({ target: forgeHost(), status: 403 });
  });

  test('NO_PROXY names go direct; a proxy URL that is not http:// is refused naming HTTPS_PROXY', async () => {
    const connects = proxy.connects.length;
    const res = await proxiedFetch(proxy.url, ['127.0.0.1'])(`${forge.url}/repos/acme/work`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ default_branch: 'main' });
    expect(proxy.connects.length).toBe(connects);
    expect(() => proxiedFetch('socks5://127.0.0.1:1080')).toThrow(/HTTPS_PROXY: "socks5:\/\/127\.0\.0\.1:1080" must be an http:\/\/ URL of the egress proxy/);
  });
});
