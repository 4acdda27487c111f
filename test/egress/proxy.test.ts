/**
 * The egress proxy end to end: the real Squid runs the squid.conf SYNTHESIZED for a
 * platform built here (taken from the allowlist's ConfigMap; only the test-only
 * proxy options differ: hosts file, DNS server, state directory), and a real agent
 * CLI (codex) reaches the mock model server through it, over HTTPS, using nothing
 * but HTTPS_PROXY.
 *
 * Network layout (nothing is added to the host's network namespace; no namespace
 * has a default route, so nothing can leave them):
 *
 *   [ns "agent" 198.51.100.2] ──veth──▶ [ns "proxy" 198.51.100.1 / 192.0.2.1: squid :3128]
 *     codex, HTTPS_PROXY only                          │ veth
 *                                   [ns "origin" 192.0.2.10: HTTPS echo :8443 :9443, DNS :53,
 *                                     TLS :443 ──unix socket──▶ mock model server (this process, 127.0.0.1)]
 *
 * The test process reaches Squid through a Unix-socket bridge (see support/squid.ts).
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { AgentPool, AgentTask, EgressAllowlist, Harness } from '../../constructs';
import { MOCK_PRESETS, MOCK_PROVIDER, PRESET_PROGRAM } from '../support/mock-provider';
import { AGENTS_BIN, OPENCODE_BIN, runAgentE2e } from '../runner/support/agent-e2e';
import { Origin, OriginEcho, startOrigin, TestCertificate } from '../support/https-origin';
import { startMockModelServer, MockModelServer } from '../support/mock-model-server';
import { CleanupStack, createNetns, createTestNetwork, linkNetns, Netns, startNodeInNetns } from '../support/netns';
import { httpsGetViaConnect, RunningSquid, startSquid, describeWithSquid, squidE2eUnavailableReason } from '../support/squid';
import { find, keyedPool, newPlatform, synth } from '../support/synth';

/** Model keys the agents hold themselves, so a pool's egress lists its provider (through the model gateway it would not). */
const EXPOSED = { exposeToAgent: true } as const;

const ORIGIN = '192.0.2.10';
const PROXY_IN_AGENT_NET = '198.51.100.1';
const AGENT = '198.51.100.2';
const PORT = 3128;
const CLI_TIMEOUT_MS = 60_000;
const IP = execFileSync('sh', ['-c', 'command -v ip || echo /usr/sbin/ip'], { encoding: 'utf8' }).trim();

const unavailable = squidE2eUnavailableReason();
const describeE2e = describeWithSquid('the egress proxy end-to-end tests', unavailable);

/** Inside the origin namespace: TLS on address:443 (the model's name), each connection piped to a Unix socket. */
const TLS_TERMINATOR_SOURCE = `
const tls = require('tls');
const net = require('net');
async function init(c) {
  const server = tls.createServer({ cert: c.cert, key: c.key }, (client) => {
    const upstream = net.connect({ path: c.socketPath });
    const close = () => { client.destroy(); upstream.destroy(); };
    client.on('error', close); upstream.on('error', close);
    client.on('close', close); upstream.on('close', close);
    client.pipe(upstream); upstream.pipe(client);
  });
  await new Promise((resolve, reject) => { server.once('error', reject); server.listen(443, c.address, resolve); });
}
async function handle() {}
`;

/**
 * A test CA and a server certificate it issued for `names`. (A self-signed leaf would
 * do for Node, but rustls, in codex, refuses a CA certificate used as a server's.)
 */
function makeTestCa(dir: string, names: readonly string[]): { ca: string; caFile: string; server: TestCertificate } {
  const f = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl('req', '-x509', ...ec, '-days', '1', '-subj', '/CN=paddock test CA', '-keyout', f('ca.key'), '-out', f('ca.crt'),
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  openssl('req', ...ec, '-subj', '/CN=paddock test origin', '-keyout', f('server.key'), '-out', f('server.csr'));
  fs.writeFileSync(f('server.ext'), [
    `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`,
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=serverAuth',
    '',
  ].join('\n'));
  openssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '1',
    '-extfile', f('server.ext'), '-out', f('server.crt'));
  return {
    ca: fs.readFileSync(f('ca.crt'), 'utf8'),
    caFile: f('ca.crt'),
    server: { certPem: fs.readFileSync(f('server.crt'), 'utf8'), keyPem: fs.readFileSync(f('server.key'), 'utf8') },
  };
}

/** In this process: a Unix socket piped to the mock model server on 127.0.0.1. */
function relayUnixToLoopback(socketPath: string, port: number): Promise<net.Server> {
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve(server));
  });
}

/**
 * The platform under test: a codex pool whose harness also needs the mock model's
 * name, a task with a source on an allowed git host, and the user's rules.
 */
function buildPlatform(proxy: { stateDir: string; hostsFile: string }) {
  const { chart, platform } = newPlatform();
  const pool = keyedPool(platform, 'codex', { harnesses: [Harness.codex({ extraHosts: ['model.allowed.test'] })] }, EXPOSED);
  const allowlist = new EgressAllowlist(platform, 'agents', {
    rules: [
      { host: 'api.allowed.test', ports: [8443] },
      { host: '.suffix.test', ports: [8443] },
      // Allowed names that resolve to addresses the proxy must refuse anyway.
      { host: 'internal.allowed.test', ports: [8443] },
      { host: 'metadata.allowed.test', ports: [8443] },
      { host: 'private-dns.allowed.test', ports: [8443] },
    ],
    proxy: { ...proxy, dnsNameservers: [ORIGIN] },
  });
  pool.allowEgressTo(allowlist);
  new AgentTask(platform, 'fix', { pool, prompt: 'Fix it.', sources: [{ url: 'https://git.allowed.test:8443/org/repo.git' }] });
  const objects = synth(chart);
  const env = Object.fromEntries(
    find(objects, 'Deployment', 'pool-codex').spec.template.spec.containers[0].env.filter((e: any) => 'value' in e).map((e: any) => [e.name, e.value]),
  );
  return { squidConf: find(objects, 'ConfigMap', 'egress-agents').data['squid.conf'] as string, env };
}

describeE2e('the synthesized egress proxy (real squid, network namespaces)', () => {
  const cleanup = new CleanupStack();
  let squid: RunningSquid;
  let origin: Origin;
  let agentNs: Netns;
  let mock: MockModelServer;
  let ca: string;
  let caFile: string;
  let poolEnv: Record<string, string>;
  let tmp: string;

  beforeAll(async () => {
    if (unavailable !== undefined) throw new Error(`cannot run the egress proxy end-to-end tests: ${unavailable}`);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-egress-proxy-'));
    cleanup.add('temp dir', () => fs.rmSync(tmp, { recursive: true, force: true }));
    const pki = makeTestCa(tmp, ['*.allowed.test', '*.suffix.test', '*.b.suffix.test']);
    const cert = pki.server;
    ca = pki.ca;
    caFile = pki.caFile;

    const netw = createTestNetwork();
    cleanup.add('network namespaces', () => netw.destroy());
    agentNs = createNetns('agent');
    cleanup.add('agent namespace', () => agentNs.destroy());
    linkNetns(netw.proxy, `${PROXY_IN_AGENT_NET}/24`, agentNs, `${AGENT}/24`, 'agent0');

    origin = await startOrigin(netw.origin, {
      address: ORIGIN,
      httpsPorts: [8443, 9443],
      httpPorts: [],
      cert,
      // Names Squid has to ask DNS for (not in its hosts file).
      dnsRecords: { 'api.allowed.test': [ORIGIN], 'unlisted.test': [ORIGIN], 'private-dns.allowed.test': ['192.168.1.1'] },
    });
    cleanup.add('origin', () => origin.stop());

    mock = await startMockModelServer({
      shellCommand: 'echo paddock-through-the-proxy > proof.txt',
      finalText: 'Done.\n\n```result\n{"status":"ok","via":"egress-proxy"}\n```\n',
    });
    cleanup.add('mock model server', () => mock.close());
    const socketPath = path.join(tmp, 'model.sock');
    const relay = await relayUnixToLoopback(socketPath, mock.port);
    cleanup.add('model relay', () => new Promise<void>((resolve) => relay.close(() => resolve())));
    const terminator = await startNodeInNetns(netw.origin, TLS_TERMINATOR_SOURCE, { cert: cert.certPem, key: cert.keyPem, address: ORIGIN, socketPath });
    cleanup.add('TLS terminator', () => terminator.stop());

    const hosts = [
      `${ORIGIN} model.allowed.test git.allowed.test a.suffix.test deep.b.suffix.test`,
      '10.0.0.1 internal.allowed.test',
      '169.254.169.254 metadata.allowed.test',
      '',
    ].join('\n');
    squid = await startSquid({
      netns: netw.proxy,
      port: PORT,
      files: { hosts },
      conf: (p) => {
        const built = buildPlatform({ stateDir: p.stateDir, hostsFile: p.file('hosts') });
        poolEnv = built.env;
        return built.squidConf;
      },
    });
    cleanup.add('squid', () => squid.stop());
  });

  afterAll(async () => {
    await cleanup.run();
  });

  const connect = (authority: string) => httpsGetViaConnect(squid, authority, { ca });
  const expectRefused = async (authority: string) => {
    const r = await connect(authority);
    expect({ authority, status: r.status, tunnelled: r.tunnelled }).toEqual({ authority, status: 403, tunnelled: false });
    // Refused by an ACL, not a failed connection attempt (which would be 503).
    expect(r.headers['x-squid-error']).toMatch(/^ERR_ACCESS_DENIED/);
  };

  test('the squid.conf is the synthesized one (the test changed only hosts file, DNS server and state dir)', () => {
    const conf = fs.readFileSync(squid.confPath, 'utf8');
    expect(conf).toMatch(/^acl allowed dstdomain -n .*\bmodel\.allowed\.test\b/m);
    expect(conf).toMatch(/^acl allowed dstdomain -n .*\bgit\.allowed\.test\b/m);
    expect(conf).toMatch(/^acl allowed dstdomain -n .*\bapi\.openai\.com\b/m);
    expect(conf).toMatch(new RegExp(`^hosts_file ${squid.dir}/hosts$`, 'm'));
    expect(conf).toMatch(new RegExp(`^dns_nameservers ${ORIGIN.replace(/\./g, '\\.')}$`, 'm'));
  });

  test('an allowed name gets through: a user rule, a suffix rule, a task\'s git host', async () => {
    for (const authority of ['api.allowed.test:8443', 'a.suffix.test:8443', 'deep.b.suffix.test:8443', 'git.allowed.test:8443']) {
      const r = await connect(authority);
      expect({ authority, status: r.status, tunnelled: r.tunnelled }).toEqual({ authority, status: 200, tunnelled: true });
      expect((JSON.parse(r.body) as OriginEcho).sni).toBe(authority.split(':')[0]);
    }
    expect((await squid.waitForAccessLog('CONNECT api.allowed.test:8443'))[0]).toMatch(/TCP_TUNNEL\/200 .* HIER_DIRECT\/192\.0\.2\.10 /);
  });

  test('a name not on the list is refused, and never even looked up', async () => {
    await expectRefused('unlisted.test:8443');
    await expectRefused('allowed.test.unlisted.test:8443');
    const asked = (await origin.dnsQueries()).map((q) => q.name);
    expect(asked).toContain('api.allowed.test'); // control: allowed names are resolved
    expect(asked).not.toContain('unlisted.test');
  });

  test('an allowed name that resolves to a private or link-local address is refused', async () => {
    await expectRefused('internal.allowed.test:8443'); // 10.0.0.1, hosts file
    await expectRefused('metadata.allowed.test:8443'); // 169.254.169.254, the cloud metadata service
    await expectRefused('private-dns.allowed.test:8443'); // 192.168.1.1, from DNS
    expect((await squid.waitForAccessLog('CONNECT metadata.allowed.test:8443'))[0]).toMatch(/TCP_DENIED\/403 /);
  });

  test('an allowed name on a port it was not allowed is refused', async () => {
    await expectRefused('api.allowed.test:9443');
    await expectRefused('model.allowed.test:8443'); // the harness host is allowed on 443 only
  });

  test('the agent namespace has no way out but the proxy', async () => {
    const probe = await startNodeInNetns(
      agentNs,
      `async function init() {}
       async function handle(op, a) {
         return await new Promise((resolve) => {
           const s = require('net').connect(a.port, a.host);
           s.once('connect', () => { s.destroy(); resolve('connected'); });
           s.once('error', (e) => resolve(e.code));
         });
       }`,
      {},
    );
    try {
      expect(await probe.call('connect', { host: ORIGIN, port: 443 })).toBe('ENETUNREACH');
      expect(await probe.call('connect', { host: PROXY_IN_AGENT_NET, port: PORT })).toBe('connected');
    } finally {
      await probe.stop();
    }
  });

  test('control: the mock model server answers through the proxy (CONNECT model.allowed.test:443 + TLS)', async () => {
    const r = await connect('model.allowed.test:443');
    expect({ status: r.status, tunnelled: r.tunnelled, body: r.body }).toEqual({ status: 200, tunnelled: true, body: 'ok' });
  });

  // Every preset with its real CLI, run by the runner: the agent process (only it) is put
  // into the agent namespace by a wrapper on PATH, so its one way out is HTTPS_PROXY.
  test.each(MOCK_PRESETS)('the %s preset reaches its model over HTTPS through the proxy, given only HTTPS_PROXY', async (preset) => {
    const program = PRESET_PROGRAM[preset];
    const real = [AGENTS_BIN, OPENCODE_BIN].map((dir) => path.join(dir, program)).find((f) => fs.existsSync(f));
    if (!real) throw new Error(`${program} is not installed in test/agents; run: npm ci --prefix test/agents`);
    const wrappers = fs.mkdtempSync(path.join(tmp, `wrap-${program}-`));
    fs.writeFileSync(path.join(wrappers, program), `#!/bin/sh\nexec ${IP} netns exec ${agentNs.name} ${real} "$@"\n`, { mode: 0o755 });
    const recipe = MOCK_PROVIDER[preset];
    const proxyUrl = `http://${PROXY_IN_AGENT_NET}:${PORT}`;
    expect(poolEnv.HTTPS_PROXY).toBe('http://egress-proxy-agents.paddock.svc:3128');
    const seen = mock.requests.length;
    const r = await runAgentE2e({
      harness: Harness.fromPreset(preset, { extraHosts: ['model.allowed.test'] }).spec,
      model: recipe.model,
      mock: { server: mock, url: 'https://model.allowed.test' },
      credentials: { [recipe.secretEnv]: 'sk-e2e-proxy-0123456789abcdef' },
      // The test origin's CA (test-only: a real provider has a public certificate).
      taskEnv: { ...recipe.env('{mock}'), ...(preset === 'codex' ? { CODEX_CA_CERTIFICATE: caFile } : { NODE_EXTRA_CA_CERTS: caFile }) },
      taskConfig: recipe.config('{mock}'),
      // What the synthesized pod sets, with the proxy's address in this test network.
      runnerEnv: { HTTPS_PROXY: proxyUrl, https_proxy: proxyUrl, NO_PROXY: poolEnv.NO_PROXY, no_proxy: poolEnv.no_proxy },
      pathPrefix: [wrappers],
      timeoutSeconds: CLI_TIMEOUT_MS / 1000,
    });
    const requests = mock.requests.slice(seen);
    if (r.code !== 0) {
      throw new Error(`${preset}: ${r.status.outcome} (${r.status.message})\n--- stderr\n${r.stderr.slice(-3000)}\n--- squid\n${squid.accessLog().slice(-2000)}\n--- mock\n${requests.map((q) => `${q.method} ${q.url} ${q.kind}`).join('\n')}`);
    }
    expect(fs.readFileSync(path.join(r.workdir, 'proof.txt'), 'utf8')).toBe('paddock-through-the-proxy\n');
    expect(r.results).toEqual([{ status: 'ok', via: 'egress-proxy' }]);
    const kinds = requests.map((q) => q.kind);
    expect(kinds).toContain('tool_call');
    expect(kinds).toContain('final');
    // Every model request went through a tunnel the proxy allowed, to the allowlisted name.
    const tunnels = await squid.waitForAccessLog('CONNECT model.allowed.test:443');
    for (const line of tunnels) expect(line).toMatch(/TCP_TUNNEL\/200 /);
  }, CLI_TIMEOUT_MS + 10_000);
});
