/**
 * The publish step behind its allowlist's egress proxy: git (HTTPS_PROXY) and the
 * forge's API calls (forgeFetch) both tunnel through CONNECT. The proxy here is a
 * thin fake of the allowlist's one (say so: it only admits CONNECT to the listed
 * host:port pairs, records every request and refuses the rest with 403). The forge's
 * API is reached over plain HTTP and over TLS with a private CA inside the tunnel.
 */
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as path from 'path';
import { resolveDelivery } from '../../core/delivery';
import { publish } from '../../controller/publisher';
import { forgeFetch } from '../../controller/proxy-fetch';
import { makeSelfSignedCert } from '../support/https-origin';
import { forgeFetchOf } from '../../cli/publish';
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
let tlsForge: FakeForge;
let forgeCa: string;
let proxy: FakeProxy;
let base: string;
let allowed: string[] = [];

beforeAll(async () => {
  root = makeTmpDir('paddock-publish-proxy-');
  base = makeChangeRepo(path.join(root, 'repos'), 'acme/work');
  server = await startGitServer({ root: path.join(root, 'repos'), tls: true, push: PUSHER });
  forge = await startFakeForge('github');
  proxy = await startFakeConnectProxy(() => allowed);
  const cert = makeSelfSignedCert(makeTmpDir('paddock-forge-ca-'), ['localhost']);
  forgeCa = cert.certPem;
  tlsForge = await startFakeForge('github', cert);
});

afterAll(async () => {
  await Promise.all([server.close(), forge.close(), tlsForge.close(), proxy.close()]);
});

const forgeHost = () => new URL(forge.url).host;

/** Deliver a one-file patch to branch `branch` with a pull request on the forge at `api`, git and API through the proxy. */
async function publishThroughProxy(api: string, branch: string, title: string, file: string, fetch: typeof globalThis.fetch) {
  const tokenFile = path.join(makeTmpDir(), 'token');
  fs.writeFileSync(tokenFile, PUSHER.password);
  const task = { name: 'fix', sources: [{ name: 'work', type: 'git_https' as const, url: server.repoUrl('acme/work'), branch: 'main' }], delivery: { branch, pullRequest: { title } } };
  const delivery = resolveDelivery(task, [{ host: server.host, secret: 's', key: 'k', username: PUSHER.username, forge: 'github', api }])!;
  const patch = Buffer.from(`diff --git a/${file} b/${file}\nnew file mode 100644\n--- /dev/null\n+++ b/${file}\n@@ -0,0 +1 @@\n+${title}\n`);
  return publish({
    delivery,
    base,
    patch,
    tokenFile,
    caEnv: { GIT_SSL_CAINFO: server.caFile! },
    proxyEnv: { HTTPS_PROXY: proxy.url, https_proxy: proxy.url, NO_PROXY: '', no_proxy: '' },
    fetch,
  });
}

describe('the publish step through its egress proxy (thin fake CONNECT proxy, real git server, thin fake GitHub API)', () => {
  test('git and the pull request both tunnel to the allowed hosts; nothing goes around the proxy', async () => {
    allowed = [server.host, forgeHost()];
    const before = forge.requests.length;
    const status = await publishThroughProxy(forge.url, 'paddock/proxied', 'Through the proxy', 'proxied.txt', forgeFetch({ proxy: proxy.url }));
    expect(status).toMatchObject({ state: 'pushed', branch: 'paddock/proxied', pullRequest: { number: 7 } });
    expect(git(path.join(root, 'repos', 'acme', 'work.git'), 'show', 'paddock/proxied:proxied.txt')).toBe('Through the proxy');
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
    const f = forgeFetch({ proxy: proxy.url });
    await expect(f(`${forge.url}/repos/acme/work`)).rejects.toThrow(new RegExp(`the egress proxy refused CONNECT ${forgeHost().replace(/\./g, '\\.')}: HTTP 403 \\(is 127\\.0\\.0\\.1 on the publish allowlist\\?\\)`));
    expect(proxy.connects.at(-1)).toEqual({ target: forgeHost(), status: 403 });
  });

  test('NO_PROXY names go direct; a proxy URL that is not http:// is refused naming HTTPS_PROXY', async () => {
    const connects = proxy.connects.length;
    const res = await forgeFetch({ proxy: proxy.url, noProxy: ['127.0.0.1'] })(`${forge.url}/repos/acme/work`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ default_branch: 'main' });
    expect(proxy.connects.length).toBe(connects);
    expect(() => forgeFetch({ proxy: 'socks5://127.0.0.1:1080' })).toThrow(/HTTPS_PROXY: "socks5:\/\/127\.0\.0\.1:1080" must be an http:\/\/ URL of the egress proxy/);
  });
});

describe('the forge API over TLS inside the tunnel (thin fake CONNECT proxy, thin fake GitHub API with a private CA)', () => {
  const tlsHost = () => new URL(tlsForge.url).host;

  test('the pull request goes through CONNECT, then TLS checked against the private CA', async () => {
    allowed = [server.host, tlsHost()];
    const status = await publishThroughProxy(tlsForge.url, 'paddock/tls-tunnel', 'TLS through the proxy', 'tls.txt', forgeFetch({ proxy: proxy.url, ca: forgeCa }));
    expect(status).toMatchObject({ state: 'pushed', branch: 'paddock/tls-tunnel', pullRequest: { number: 7 } });
    expect(proxy.connects.at(-1)).toEqual({ target: tlsHost(), status: 200 });
    expect(tlsForge.requests.map((r) => `${r.method} ${r.url}`)).toEqual(['POST /repos/acme/work/pulls']);
    expect(tlsForge.requests[0].headers.authorization).toBe(`Bearer ${PUSHER.password}`);
  });

  test('without the CA the TLS handshake in the tunnel fails, and the error says where to give the CA', async () => {
    allowed = [tlsHost()];
    const before = tlsForge.requests.length;
    await expect(forgeFetch({ proxy: proxy.url })(`${tlsForge.url}/repos/acme/work`)).rejects.toThrow(/GET https:\/\/localhost:\d+\/repos\/acme\/work: .*self.signed.*\(a private forge: give its CA as GIT_SSL_CAINFO or SSL_CERT_FILE, as for git\)/);
    expect(tlsForge.requests.length).toBe(before);
  });

  test('direct (no proxy) with the private CA: the request reaches the API without any CONNECT', async () => {
    const connects = proxy.connects.length;
    const res = await forgeFetch({ ca: forgeCa })(`${tlsForge.url}/repos/acme/work`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ default_branch: 'main' });
    expect(proxy.connects.length).toBe(connects);
  });
});

describe('paddock publish: the forge fetch from the pod environment', () => {
  test('GIT_SSL_CAINFO is trusted for the API too; behind HTTPS_PROXY the call tunnels', async () => {
    const caFile = path.join(makeTmpDir(), 'ca.pem');
    fs.writeFileSync(caFile, forgeCa);
    allowed = [new URL(tlsForge.url).host];
    const connects = proxy.connects.length;
    const res = await forgeFetchOf({ GIT_SSL_CAINFO: caFile, HTTPS_PROXY: proxy.url })(`${tlsForge.url}/repos/acme/work`);
    expect(res.status).toBe(200);
    expect(proxy.connects.length).toBe(connects + 1);
  });

  test('an unreadable CA file is a usage error naming the variable', () => {
    expect(() => forgeFetchOf({ GIT_SSL_CAINFO: '/nonexistent/ca.pem' })).toThrow(/GIT_SSL_CAINFO: cannot read the CA file \/nonexistent\/ca\.pem \(ENOENT.*\); mount the forge's CA there or unset it/);
    expect(() => forgeFetchOf({ SSL_CERT_FILE: '/nonexistent/bundle.pem' })).toThrow(/SSL_CERT_FILE: cannot read the CA file/);
  });
});
