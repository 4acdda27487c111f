/**
 * The egress-proxy backend of the EgressAllowlist: the rendered squid.conf (pure unit
 * tests) and the real Squid enforcing it (end to end).
 *
 * End-to-end network layout (nothing is added to the host's own network namespace;
 * neither namespace has a default route, so no packet can leave them):
 *
 *   test process ──unix socket──▶ [ns "proxy": bridge → squid 127.0.0.1:3128, 192.0.2.1]
 *                                              │ veth
 *                                 [ns "origin": 192.0.2.10 — HTTPS :8443 :9443, HTTP :8080,
 *                                                 recording DNS server :53]
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  BLOCKED_DESTINATIONS,
  HostRule,
  normalizeHostRule,
  renderSquidConf,
  validateHostRule,
} from '../../policy/squid-conf';
import { makeSelfSignedCert, Origin, OriginEcho, startOrigin } from '../support/https-origin';
import { CleanupStack, createTestNetwork } from '../support/netns';
import { httpGetViaProxy, httpsGetViaConnect, RunningSquid, startSquid, describeWithSquid, squidE2eUnavailableReason } from '../support/squid';

// ---------------------------------------------------------------------------
// validateHostRule

describe('validateHostRule', () => {
  const rule = (host: string, extra: Partial<HostRule> = {}): HostRule => ({ host, match: 'exact', ports: [443], ...extra });

  test.each<[string, HostRule]>([
    ['exact name', rule('api.openai.com')],
    ['suffix with leading dot', rule('.githubusercontent.com', { match: 'suffix' })],
    ['suffix without leading dot', rule('githubusercontent.com', { match: 'suffix' })],
    ['punycode', rule('xn--bcher-kva.de')],
    ['upper case (normalized, not an error)', rule('API.OpenAI.com')],
    ['several ports, plain HTTP', rule('deb.debian.org', { ports: [80, 443], allowPlainHttp: true })],
  ])('accepts %s', (_, r) => {
    expect(validateHostRule(r)).toEqual([]);
  });

  test.each<[string, HostRule, RegExp]>([
    ['empty host', rule(''), /^host: is empty; write a DNS name such as "api\.openai\.com"/],
    ['blank host', rule('   '), /^host: is empty/],
    ['scheme', rule('https://api.openai.com'), /^host: "https:\/\/api\.openai\.com" contains a URL scheme.*write only the name: "api\.openai\.com"$/],
    ['scheme, port and path', rule('https://api.openai.com:443/v1'), /^host: .*URL scheme.*write only the name: "api\.openai\.com"$/],
    ['path', rule('api.openai.com/v1/chat'), /^host: .* contains a path;.*write "api\.openai\.com"$/],
    ['query', rule('api.openai.com?x=1'), /^host: .* contains a path;.*write "api\.openai\.com"$/],
    ['user info', rule('user@api.openai.com'), /^host: .*user information.*write only the name: "api\.openai\.com"$/],
    ['leading wildcard', rule('*.example.com'), /^host: "\*\.example\.com" uses a wildcard; write host "\.example\.com" with match: 'suffix'/],
    ['inner wildcard', rule('api.*.com'), /^host: "api\.\*\.com": wildcards are not supported.*suffix rule such as "\.example\.com"/],
    ['trailing wildcard', rule('example.*'), /^host: .*wildcards are not supported/],
    ['lone wildcard', rule('*'), /^host: .*wildcards are not supported/],
    ['IPv4 literal', rule('10.0.0.1'), /^host: "10\.0\.0\.1" is an IP address; .*CIDR rule \(e\.g\. "10\.0\.0\.1\/32"\) instead$/],
    ['IPv4 literal with port', rule('169.254.169.254:80'), /^host: .*IP address with a port; .*CIDR rule \(e\.g\. "169\.254\.169\.254\/32"\)/],
    ['IPv6 literal', rule('2001:db8::1'), /^host: .*IP address; .*CIDR rule \(e\.g\. "2001:db8::1\/128"\)/],
    ['bracketed IPv6 literal', rule('[::1]'), /^host: .*IP address; .*"::1\/128"/],
    ['port in host', rule('api.openai.com:443'), /^host: .* contains a port; write "api\.openai\.com" and put 443 in ports$/],
    ['whitespace', rule('api openai.com'), /^host: .* contains whitespace/],
    ['underscore', rule('my_host.example.com'), /^host: .* contains "_" in label "my_host"; DNS labels use only letters, digits and "-"$/],
    ['label starting with "-"', rule('-bad.example.com'), /^host: label "-bad" .* must begin and end with a letter or digit$/],
    ['empty label', rule('a..example.com'), /^host: .* has an empty label/],
    ['label over 63 characters', rule(`${'a'.repeat(64)}.com`), /^host: label "a{64}" .* at most 63$/],
    ['name over 253 characters', rule(`${'abcdefghi.'.repeat(26)}com`), /^host: .* is 263 characters long; a DNS name has at most 253$/],
    ['non-ASCII name', rule('bücher.de'), /^host: .*non-ASCII.*punycode.*"xn--bcher-kva\.de"$/],
    ['trailing dot', rule('api.openai.com.'), /^host: .* ends with "\."; write it without the trailing dot: "api\.openai\.com"$/],
    ['leading dot on an exact rule', rule('.example.com'), /^host: "\.example\.com" starts with "\." .* set match: 'suffix', or write "example\.com"/],
    ['suffix of a whole TLD', rule('.com', { match: 'suffix' }), /^host: suffix "\.com" would allow a whole top-level domain/],
    ['numeric top-level label', rule('host.123'), /^host: .* ends in a numeric label/],
    ['unknown match', { host: 'a.com', match: 'regex' as 'exact', ports: [443] }, /^match: must be 'exact' or 'suffix', got "regex"$/],
    ['no ports', rule('api.openai.com', { ports: [] }), /^ports: must list at least one TCP port, e.g\. \[443\]/],
    ['missing ports', { host: 'a.com', match: 'exact' } as unknown as HostRule, /^ports: must list at least one TCP port/],
    ['port 0', rule('api.openai.com', { ports: [0] }), /^ports\[0\]: 0 is not a valid TCP port; write an integer from 1 to 65535, e.g\. 443$/],
    ['port over 65535', rule('api.openai.com', { ports: [443, 65536] }), /^ports\[1\]: 65536 is not a valid TCP port/],
    ['fractional port', rule('api.openai.com', { ports: [443.5] }), /^ports\[0\]: 443\.5 is not a valid TCP port/],
    ['negative port', rule('api.openai.com', { ports: [-1] }), /^ports\[0\]: -1 is not a valid TCP port/],
    ['port as a string', rule('api.openai.com', { ports: ['443' as unknown as number] }), /^ports\[0\]: "443" is not a valid TCP port/],
    ['allowPlainHttp not a boolean', rule('a.com', { allowPlainHttp: 'yes' as unknown as boolean }), /^allowPlainHttp: must be true or false, got "yes"$/],
  ])('rejects %s', (_, r, message) => {
    const errors = validateHostRule(r);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(message);
  });

  test('reports every bad field at once', () => {
    const errors = validateHostRule({ host: '*.x.com', match: 'glob' as 'exact', ports: [0, 70000] });
    expect(errors.map((e) => e.split(':')[0])).toEqual(['match', 'host', 'ports[0]', 'ports[1]']);
  });

  test('normalizes case, suffix dots and ports', () => {
    expect(normalizeHostRule({ host: 'API.OpenAI.com', match: 'exact', ports: [8443, 443, 443] })).toEqual({
      host: 'api.openai.com',
      match: 'exact',
      ports: [443, 8443],
      allowPlainHttp: false,
    });
    expect(normalizeHostRule({ host: 'GitHubUserContent.com', match: 'suffix', ports: [443] }).host).toBe('.githubusercontent.com');
    expect(() => normalizeHostRule({ host: 'https://x.com', match: 'exact', ports: [443] })).toThrow(/write only the name: "x\.com"/);
  });
});

// ---------------------------------------------------------------------------
// renderSquidConf

describe('renderSquidConf', () => {
  const rules: HostRule[] = [
    { host: 'api.openai.com', match: 'exact', ports: [443] },
    { host: '.githubusercontent.com', match: 'suffix', ports: [443] },
    { host: 'raw.githubusercontent.com', match: 'exact', ports: [443] }, // covered by the suffix
    { host: 'deb.debian.org', match: 'exact', ports: [80, 443], allowPlainHttp: true },
    { host: 'registry.npmjs.org', match: 'exact', ports: [443] },
  ];
  const conf = renderSquidConf({ rules });
  const directives = (text: string, name: string) =>
    text.split('\n').filter((l) => l.startsWith(`${name} `));

  test('is deterministic: order, duplicates and case of the input do not matter', () => {
    const shuffled: HostRule[] = [
      { host: 'Registry.NPMJS.org', match: 'exact', ports: [443, 443] },
      { host: 'deb.debian.org', match: 'exact', ports: [443, 80], allowPlainHttp: true },
      { host: 'githubusercontent.com', match: 'suffix', ports: [443] },
      { host: 'api.openai.com', match: 'exact', ports: [443] },
      { host: 'raw.githubusercontent.com', match: 'exact', ports: [443] },
      { host: 'api.openai.com', match: 'exact', ports: [443] },
    ];
    expect(renderSquidConf({ rules: shuffled })).toBe(conf);
    expect(renderSquidConf({ rules })).toBe(conf);
  });

  test('refuses unlisted names before any rule that needs DNS, and private ranges before allowing', () => {
    expect(directives(conf, 'http_access')).toEqual([
      'http_access deny manager',
      'http_access deny !allowed',
      'http_access deny !allowed_requests',
      'http_access deny to_localhost',
      'http_access deny blocked_dst',
      'http_access allow allowed_requests',
      'http_access deny all',
    ]);
    // Every ACL consulted before "deny to_localhost" is decided without DNS.
    const aclTypes = new Map(directives(conf, 'acl').map((l) => [l.split(' ')[1], l.split(' ')[2]]));
    const noDns = new Set(['dstdomain', 'port', 'method', 'proto', 'all-of', 'any-of']);
    for (const name of ['allowed', 'allowed_requests']) expect(noDns.has(aclTypes.get(name)!)).toBe(true);
    for (const [name, type] of aclTypes) {
      if (name !== 'blocked_dst') expect(noDns.has(type)).toBe(true);
    }
    expect(directives(conf, 'acl').filter((l) => / dstdomain /.test(l)).every((l) => / dstdomain -n /.test(l))).toBe(true);
  });

  test('denies private, loopback and link-local destinations', () => {
    expect(directives(conf, 'acl')).toContain(`acl blocked_dst dst ${BLOCKED_DESTINATIONS.join(' ')}`);
    expect(BLOCKED_DESTINATIONS).toEqual([
      '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16',
      '172.16.0.0/12', '192.168.0.0/16', '::1/128', 'fc00::/7', 'fe80::/10', '::ffff:0:0/96',
    ]);
  });

  test('groups names by ports, sorted, without names covered by a suffix', () => {
    expect(directives(conf, 'acl')).toEqual([
      'acl allowed dstdomain -n .githubusercontent.com api.openai.com deb.debian.org registry.npmjs.org',
      'acl tls1_names dstdomain -n deb.debian.org',
      'acl tls1_ports port 80 443',
      'acl tls1 all-of CONNECT tls1_names tls1_ports',
      'acl tls2_names dstdomain -n .githubusercontent.com api.openai.com registry.npmjs.org',
      'acl tls2_ports port 443',
      'acl tls2 all-of CONNECT tls2_names tls2_ports',
      'acl plain_http proto HTTP',
      'acl http1_names dstdomain -n deb.debian.org',
      'acl http1_ports port 80 443',
      'acl http1 all-of plain_http http1_names http1_ports',
      'acl allowed_requests any-of tls1 tls2 http1',
      `acl blocked_dst dst ${BLOCKED_DESTINATIONS.join(' ')}`,
    ]);
  });

  test('allows plain HTTP only for rules that ask for it', () => {
    const tlsOnly = renderSquidConf({ rules: [{ host: 'api.openai.com', match: 'exact', ports: [443] }] });
    expect(tlsOnly).not.toMatch(/proto HTTP/);
    expect(tlsOnly).toContain('acl allowed_requests any-of tls1\n');
  });

  test('no cache, logs to stdout/stderr, state under stateDir, no client leakage', () => {
    expect(conf).toMatch(/^cache deny all$/m);
    expect(conf).not.toMatch(/^cache_dir/m);
    expect(conf).toMatch(/^access_log stdio:\/dev\/stdout$/m);
    expect(conf).toMatch(/^cache_log \/dev\/stderr$/m);
    expect(conf).toMatch(/^pid_filename \/tmp\/squid\/squid\.pid$/m);
    expect(conf).toMatch(/^coredump_dir \/tmp\/squid$/m);
    expect(conf).toMatch(/^netdb_filename none$/m);
    expect(conf).toMatch(/^via off$/m);
    expect(conf).toMatch(/^forwarded_for delete$/m);
    expect(conf).toMatch(/^http_port 3128$/m);
    expect(conf).toMatch(/^connect_timeout \d+ seconds$/m);
    expect(conf).not.toMatch(/^hosts_file/m);
    expect(conf).not.toMatch(/^dns_nameservers/m);
  });

  test('options: port, state dir, hosts file, name servers', () => {
    const c = renderSquidConf({
      rules,
      httpPort: 8888,
      stateDir: '/var/run/egress/',
      dnsHostsFile: '/etc/paddock/hosts',
      dnsNameservers: ['10.96.0.10', '10.96.0.10', '10.0.0.2'],
    });
    expect(c).toMatch(/^http_port 8888$/m);
    expect(c).toMatch(/^pid_filename \/var\/run\/egress\/squid\.pid$/m);
    expect(c).toMatch(/^hosts_file \/etc\/paddock\/hosts$/m);
    expect(c).toMatch(/^dns_nameservers 10\.0\.0\.2 10\.96\.0\.10$/m);
  });

  test('every block of directives starts with a comment', () => {
    for (const block of conf.trim().split(/\n\n+/)) expect(block.startsWith('#')).toBe(true);
  });

  test('an empty allowlist refuses everything', () => {
    const c = renderSquidConf({ rules: [] });
    expect(directives(c, 'http_access')).toEqual(['http_access deny all']);
    expect(c).not.toMatch(/^acl /m);
  });

  test('throws listing every invalid rule and option', () => {
    expect(() =>
      renderSquidConf({
        rules: [
          { host: 'ok.example.com', match: 'exact', ports: [443] },
          { host: 'https://api.openai.com', match: 'exact', ports: [443] },
          { host: '*.example.com', match: 'exact', ports: [0] },
        ],
        httpPort: 0,
        stateDir: 'relative/dir',
        dnsNameservers: ['dns.google'],
      }),
    ).toThrow(
      new RegExp(
        [
          'rules\\[1\\]\\.host: .*write only the name: "api\\.openai\\.com"',
          'rules\\[2\\]\\.host: .*write host "\\.example\\.com" with match: \'suffix\'',
          'rules\\[2\\]\\.ports\\[0\\]: 0 is not a valid TCP port',
          'httpPort: 0 is not a valid TCP port',
          'stateDir: "relative/dir" must be an absolute path',
          'dnsNameservers\\[0\\]: "dns\\.google" is not an IP address',
        ].join('[\\s\\S]*'),
      ),
    );
  });
});

// ---------------------------------------------------------------------------
// The real Squid

const unavailable = squidE2eUnavailableReason();
const describeE2e = describeWithSquid('the Squid end-to-end tests', unavailable);

describeE2e('Squid enforcing the allowlist (real squid, network namespaces)', () => {
  const ORIGIN = '192.0.2.10';
  const PROXY_PORT = 3128;
  const cleanup = new CleanupStack();
  let squid: RunningSquid;
  let origin: Origin;
  let ca: string;

  /** Allowlisted names mapped (hosts_file) to addresses the proxy must refuse. */
  const blocked: Array<[string, string]> = [
    ['ten.blocked.test', '10.0.0.1'],
    ['metadata.blocked.test', '169.254.169.254'],
    ['loopback.blocked.test', '127.0.0.1'],
    ['cgnat.blocked.test', '100.64.0.1'],
    ['rfc1918-172.blocked.test', '172.16.0.1'],
    ['rfc1918-192.blocked.test', '192.168.1.1'],
    ['zero.blocked.test', '0.0.0.0'],
    ['v6-loopback.blocked.test', '::1'],
    ['v6-ula.blocked.test', 'fd00::1'],
    ['v6-linklocal.blocked.test', 'fe80::1'],
  ];

  beforeAll(async () => {
    if (unavailable !== undefined) throw new Error(`cannot run the Squid end-to-end tests: ${unavailable}`);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-egress-'));
    cleanup.add('temp dir', () => fs.rmSync(tmp, { recursive: true, force: true }));
    const cert = makeSelfSignedCert(tmp, ['*.allowed.test', 'suffix.test', '*.suffix.test', '*.b.suffix.test', '*.blocked.test']);
    ca = cert.certPem;

    const net = createTestNetwork();
    cleanup.add('network namespaces', () => net.destroy());

    origin = await startOrigin(net.origin, {
      address: ORIGIN,
      httpsPorts: [8443, 9443],
      httpPorts: [8080],
      cert,
      // Names Squid would have to ask DNS for (they are not in its hosts file).
      dnsRecords: {
        'dns.allowed.test': [ORIGIN],
        'unlisted.test': [ORIGIN],
        'suffix.test.unlisted.test': [ORIGIN],
      },
    });
    cleanup.add('origin', () => origin.stop());

    const rules: HostRule[] = [
      { host: 'exact.allowed.test', match: 'exact', ports: [8443, 8080] },
      { host: '.suffix.test', match: 'suffix', ports: [8443] },
      { host: 'plain.allowed.test', match: 'exact', ports: [8080], allowPlainHttp: true },
      { host: 'dns.allowed.test', match: 'exact', ports: [8443] },
      { host: '.blocked.test', match: 'suffix', ports: [8443] },
    ];
    const hosts = [
      `${ORIGIN} exact.allowed.test plain.allowed.test suffix.test a.suffix.test deep.b.suffix.test public.blocked.test`,
      ...blocked.map(([name, addr]) => `${addr} ${name}`),
      '',
    ].join('\n');
    squid = await startSquid({
      netns: net.proxy,
      port: PROXY_PORT,
      files: { hosts },
      conf: (p) =>
        renderSquidConf({
          rules,
          httpPort: PROXY_PORT,
          stateDir: p.stateDir,
          dnsHostsFile: p.file('hosts'),
          dnsNameservers: [ORIGIN],
        }),
    });
    cleanup.add('squid', () => squid.stop());
  });

  afterAll(async () => {
    await cleanup.run();
  });

  const connect = (authority: string, servername?: string) => httpsGetViaConnect(squid, authority, { ca, servername });
  const expectRefused = (r: { status: number; headers: Record<string, unknown> }) => {
    expect(r.status).toBe(403);
    // Refused by an ACL, not a failed connection attempt (which would be 503).
    expect(r.headers['x-squid-error']).toMatch(/^ERR_ACCESS_DENIED/);
  };
  const accessLogLine = async (needle: string) => (await squid.waitForAccessLog(needle))[0];

  test('runs as the proxy user with a read-only config, writing only its state dir', () => {
    const status = fs.readFileSync(`/proc/${squid.pid}/status`, 'utf8');
    const proxyUid = fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('proxy:'))!.split(':')[2];
    expect(status).toMatch(new RegExp(`^Uid:\\s+${proxyUid}\\s+${proxyUid}\\s`, 'm'));
    expect(fs.statSync(squid.confPath).mode & 0o777).toBe(0o444);
    expect(fs.statSync(squid.dir).mode & 0o777).toBe(0o555);
    expect(fs.readFileSync(path.join(squid.stateDir, 'squid.pid'), 'utf8').trim()).toBe(String(squid.pid));
  });

  test('(a) an allowed exact name gets through to the origin', async () => {
    const r = await connect('exact.allowed.test:8443');
    expect(r.tunnelled).toBe(true);
    expect(r.status).toBe(200);
    const echo = JSON.parse(r.body) as OriginEcho;
    expect(echo).toMatchObject({ scheme: 'https', sni: 'exact.allowed.test', port: 8443, method: 'GET', url: '/' });
    expect(await accessLogLine('CONNECT exact.allowed.test:8443')).toMatch(/TCP_TUNNEL\/200 .* HIER_DIRECT\/192\.0\.2\.10 /);
  });

  test('(a) names are matched case-insensitively', async () => {
    const r = await connect('EXACT.Allowed.TEST:8443', 'exact.allowed.test');
    expect(r.status).toBe(200);
  });

  test('(b) a suffix rule matches subdomains (and, as in Squid, the bare name)', async () => {
    for (const name of ['a.suffix.test', 'deep.b.suffix.test', 'suffix.test']) {
      const r = await connect(`${name}:8443`);
      expect({ name, status: r.status, tunnelled: r.tunnelled }).toEqual({ name, status: 200, tunnelled: true });
      expect((JSON.parse(r.body) as OriginEcho).sni).toBe(name);
    }
  });

  test('(b) a suffix rule does not match look-alike names', async () => {
    for (const name of ['notsuffix.test', 'suffix.test.unlisted.test']) expectRefused(await connect(`${name}:8443`));
  });

  test('(c) an unlisted name is refused and never resolved; an allowed one is', async () => {
    // Control: an allowed name that is not in the hosts file is resolved through DNS.
    const allowed = await connect('dns.allowed.test:8443');
    expect(allowed.status).toBe(200);
    expect((await origin.dnsQueries()).map((q) => q.name)).toContain('dns.allowed.test');

    const refused = await connect('unlisted.test:8443');
    expectRefused(refused);
    expect(await accessLogLine('CONNECT unlisted.test:8443')).toMatch(/TCP_DENIED\/403 .* HIER_NONE\/- /);
    const asked = (await origin.dnsQueries()).map((q) => q.name);
    expect(asked).not.toContain('unlisted.test');
    expect(asked).not.toContain('suffix.test.unlisted.test');
  });

  test('(c) an IP-address destination is refused without a reverse lookup', async () => {
    expectRefused(await connect(`${ORIGIN}:8443`, 'exact.allowed.test'));
    expect((await origin.dnsQueries()).filter((q) => q.type === 'PTR')).toEqual([]);
  });

  test('(d) control: an allowed name on a public address gets through', async () => {
    expect((await connect('public.blocked.test:8443')).status).toBe(200);
  });

  test.each(blocked)('(d) an allowed name resolving to a blocked address is refused: %s -> %s', async (name) => {
    expectRefused(await connect(`${name}:8443`));
    expect(await accessLogLine(`CONNECT ${name}:8443`)).toMatch(/TCP_DENIED\/403 /);
  });

  test('(e) an allowed name on a port not in its ports is refused', async () => {
    expectRefused(await connect('exact.allowed.test:9443'));
    expectRefused(await connect('a.suffix.test:9443'));
  });

  test('(f) plain HTTP to an allowed name without allowPlainHttp is refused', async () => {
    // exact.allowed.test lists port 8080, but only for CONNECT.
    expectRefused(await httpGetViaProxy(squid, 'http://exact.allowed.test:8080/'));
  });

  test('(f) plain HTTP with allowPlainHttp gets through, without Via or X-Forwarded-For', async () => {
    const r = await httpGetViaProxy(squid, 'http://plain.allowed.test:8080/path?q=1');
    expect(r.status).toBe(200);
    const echo = JSON.parse(r.body) as OriginEcho;
    expect(echo).toMatchObject({ scheme: 'http', port: 8080, method: 'GET', url: '/path?q=1' });
    expect(echo.headers).not.toHaveProperty('via');
    expect(echo.headers).not.toHaveProperty('x-forwarded-for');
    // ...but only on its ports.
    expectRefused(await httpGetViaProxy(squid, 'http://plain.allowed.test:8443/'));
  });

  test('the proxy does not serve its cache manager', async () => {
    const r = await httpGetViaProxy(squid, `http://127.0.0.1:${PROXY_PORT}/squid-internal-mgr/info`);
    expect(r.status).toBe(403);
  });
});
