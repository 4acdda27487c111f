/**
 * EgressAllowlist as constructs: the three backends, the objects each
 * synthesizes (strictly schema-validated, CiliumNetworkPolicy included), the
 * agent pods' proxy settings, the pool's effective allowlist (its harnesses'
 * hosts + its tasks' git hosts + the user's rules), and bad rules.
 * The real Squid enforcing the synthesized squid.conf: proxy.test.ts.
 */
import { createHash } from 'crypto';
import { ApiObject, JsonPatch } from 'cdk8s';
import { parse as parseYaml } from 'yaml';
import { AgentPool, AgentTask, EgressAllowlist, EgressRule, Harness, Platform } from '../../constructs';
import { checkAgentPodsDenyByDefault, checkPodSecurityRestricted, KubeObject, selects } from '../../policy/rules';
import { renderSquidConf } from '../../policy/squid-conf';
import { expectValidK8s, registerSchema, validateK8sObject } from '../support/k8s-schema';
import { find, keyedPool, newPlatform, synth, synthProblems } from '../support/synth';

/** Model keys the agents hold themselves, so a pool's egress lists its provider (through the model gateway it would not). */
const EXPOSED = { exposeToAgent: true } as const;
import * as ciliumSchema from './cilium-network-policy.schema.json';

registerSchema('cilium.io/v2', 'CiliumNetworkPolicy', ciliumSchema);

const PROXY_URL = 'http://egress-proxy-agents.paddock.svc:3128';

/** A codex pool with a task on github.com under one allowlist. */
function codexPlatform(allowlist: { rules?: EgressRule[]; backend?: 'proxy' | 'cilium' | 'networkpolicy'; proxy?: object } = {}) {
  const ctx = newPlatform();
  const pool = keyedPool(ctx.platform, 'codex', { harnesses: [Harness.codex()] }, EXPOSED);
  const list = new EgressAllowlist(ctx.platform, 'agents', allowlist);
  pool.allowEgressTo(list);
  new AgentTask(ctx.platform, 'fix', {
    pool,
    prompt: 'Fix it.',
    sources: [
      { url: 'https://github.com/octocat/Hello-World.git' },
      { name: 'mirror', url: 'https://git.example.com:8443/org/mirror.git' },
    ],
  });
  return { ...ctx, pool, list };
}

const envOf = (podSpec: any): Record<string, string> => Object.fromEntries(podSpec.containers[0].env.filter((e: any) => 'value' in e).map((e: any) => [e.name, e.value]));

describe('backend "proxy" (the default)', () => {
  const { chart } = codexPlatform({ rules: [{ host: '.githubusercontent.com' }, { host: 'deb.debian.org', ports: [80, 443], allowPlainHttp: true }] });
  const objects = synth(chart);
  const names = objects.map((o) => `${o.kind}/${o.metadata?.name}`);
  const deployment = find(objects, 'Deployment', 'egress-proxy-agents');
  const configMap = find(objects, 'ConfigMap', 'egress-agents');
  const description = JSON.parse(configMap.data['allowlist.json']);

  test('synthesizes the proxy Deployment, Service, ServiceAccount and NetworkPolicies, all strictly valid', () => {
    expect(names).toEqual(
      expect.arrayContaining([
        'Deployment/egress-proxy-agents',
        'Service/egress-proxy-agents',
        'ServiceAccount/egress-proxy-agents',
        'NetworkPolicy/egress-proxy-agents',
        'NetworkPolicy/egress-agents',
        'ConfigMap/egress-agents',
      ]),
    );
    expect(names).not.toContain('PodDisruptionBudget/egress-proxy-agents'); // one replica: nothing to budget
    expect(names.filter((n) => n.startsWith('CiliumNetworkPolicy/'))).toEqual([]);
    expectValidK8s(objects);
  });

  test('the proxy pod is hardened: non-root (Debian proxy, 13), read-only root, drop ALL, seccomp, no token', () => {
    const pod = deployment.spec.template.spec;
    const container = pod.containers[0];
    expect(checkPodSecurityRestricted(deployment)).toEqual([]);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 13, runAsGroup: 13, seccompProfile: { type: 'RuntimeDefault' } });
    expect(container.securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.serviceAccountName).toBe('egress-proxy-agents');
    expect(container.image).toBe('ghcr.io/paddock-dev/paddock-egress-proxy:0.1.0');
    expect(container.args).toEqual(['-N', '-f', '/etc/paddock/egress/squid.conf']);
    // Writable: only the state dir and /dev/shm (memory), both emptyDirs with limits.
    expect(container.volumeMounts).toEqual([
      { name: 'config', mountPath: '/etc/paddock/egress', readOnly: true },
      { name: 'state', mountPath: '/run/squid' },
      { name: 'shm', mountPath: '/dev/shm' },
    ]);
    expect(pod.volumes).toEqual([
      { name: 'config', configMap: { name: 'egress-agents', items: [{ key: 'squid.conf', path: 'squid.conf' }] } },
      { name: 'state', emptyDir: { sizeLimit: '16Mi' } },
      { name: 'shm', emptyDir: { medium: 'Memory', sizeLimit: '32Mi' } },
    ]);
  });

  test('squid.conf is the rendering of the effective allowlist; a change rolls the proxy pods', () => {
    const conf = configMap.data['squid.conf'];
    expect(conf).toBe(
      renderSquidConf({
        rules: [
          { host: '.githubusercontent.com', match: 'suffix', ports: [443] },
          { host: 'api.openai.com', match: 'exact', ports: [443] },
          { host: 'deb.debian.org', match: 'exact', ports: [80, 443], allowPlainHttp: true },
          { host: 'git.example.com', match: 'exact', ports: [8443] },
          { host: 'github.com', match: 'exact', ports: [443] },
        ],
        stateDir: '/run/squid',
      }),
    );
    expect(deployment.spec.template.metadata.annotations['paddock.dev/squid-conf-sha256']).toBe(createHash('sha256').update(conf).digest('hex'));
  });

  test('allowlist.json: the union of the user rules, the harness hosts and the task git hosts, with where each came from', () => {
    expect(description).toMatchObject({ kind: 'EgressAllowlist', name: 'agents', backend: 'proxy', pools: ['codex'], proxy: { url: PROXY_URL } });
    expect(description.hosts.map((h: any) => [h.host, h.ports, h.from])).toEqual([
      ['.githubusercontent.com', [443], ['rule']],
      ['api.openai.com', [443], ['harness codex (pool codex)']],
      ['deb.debian.org', [80, 443], ['rule']],
      ['git.example.com', [8443], ['task fix source mirror (pool codex)']],
      ['github.com', [443], ['task fix source hello-world (pool codex)']],
    ]);
  });

  test('agent pods (workers, Job template, task Job) get HTTPS_PROXY, HTTP_PROXY and NO_PROXY, upper and lower case', () => {
    const template = parseYaml(find(objects, 'ConfigMap', 'pool-codex').data['job-template.yaml']);
    const job = objects.find((o) => o.kind === 'Job')!;
    for (const pod of [find(objects, 'Deployment', 'pool-codex').spec.template.spec, template.spec.template.spec, (job.spec as any).template.spec]) {
      const env = envOf(pod);
      for (const name of ['HTTPS_PROXY', 'HTTP_PROXY', 'https_proxy', 'http_proxy']) expect(env[name]).toBe(PROXY_URL);
      expect(env.NO_PROXY).toBe(env.no_proxy);
      const noProxy = env.NO_PROXY.split(',');
      // The controller and cluster-local names go direct; the allowlisted hosts never do.
      expect(noProxy).toEqual(expect.arrayContaining(['localhost', '127.0.0.1', 'paddock-controller', 'paddock-controller.paddock.svc', '.svc', '.cluster.local']));
      for (const host of description.hosts) expect(noProxy.some((n: string) => host.host.endsWith(n.replace(/^\./, '')))).toBe(false);
    }
  });

  test('pool.json carries the proxy for the runner (egress.proxy, egress.noProxy)', () => {
    const pool = JSON.parse(find(objects, 'ConfigMap', 'pool-codex').data['pool.json']);
    expect(pool.egress).toEqual({ proxy: PROXY_URL, noProxy: description.proxy.noProxy });
  });

  test("the agents' NetworkPolicy allows DNS and the proxy pods, and no address", () => {
    const np = find(objects, 'NetworkPolicy', 'egress-agents');
    expect(np.spec.podSelector).toEqual({ matchLabels: { 'egress.paddock.dev/agents': 'allow' } });
    const [dns, proxy, ...rest] = np.spec.egress;
    expect(dns.ports).toEqual([{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }]);
    expect(proxy).toEqual({ to: [{ podSelector: { matchLabels: deployment.spec.selector.matchLabels } }], ports: [{ protocol: 'TCP', port: 3128 }] });
    expect(rest).toEqual([]);
    expect(selects(proxy.to[0].podSelector, deployment.spec.template.metadata.labels)).toBe(true);
  });

  test("the proxy's NetworkPolicy: in only from pods under the allowlist; out to DNS and the internet on the allowed ports, private ranges excepted", () => {
    const np = find(objects, 'NetworkPolicy', 'egress-proxy-agents');
    expect(np.spec.podSelector.matchLabels).toEqual(deployment.spec.selector.matchLabels);
    expect(np.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(np.spec.ingress).toEqual([{ from: [{ podSelector: { matchLabels: { 'egress.paddock.dev/agents': 'allow' } } }], ports: [{ protocol: 'TCP', port: 3128 }] }]);
    const [dns, internet, ...rest] = np.spec.egress;
    expect(dns.to[0].podSelector.matchLabels).toEqual({ 'k8s-app': 'kube-dns' });
    expect(internet.ports).toEqual([80, 443, 8443].map((port) => ({ protocol: 'TCP', port })));
    expect(internet.to).toEqual([
      { ipBlock: { cidr: '0.0.0.0/0', except: ['0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.168.0.0/16'] } },
      { ipBlock: { cidr: '::/0', except: ['::1/128', 'fc00::/7', 'fe80::/10'] } },
    ]);
    expect(rest).toEqual([]);
  });

  test('agent pods stay under the default-deny policy; the proxy pod is no agent pod', () => {
    const expanded = [...objects, { ...parseYaml(find(objects, 'ConfigMap', 'pool-codex').data['job-template.yaml']), metadata: { name: 'job-template', namespace: 'paddock' } }] as KubeObject[];
    expect(checkAgentPodsDenyByDefault(expanded, 'paddock.dev/agent')).toEqual([]);
    expect(deployment.spec.template.metadata.labels['paddock.dev/agent']).toBeUndefined();
    expect(deployment.spec.template.metadata.labels['egress.paddock.dev/agents']).toBeUndefined();
  });

  test('deterministic: the same app synthesizes byte-identical objects', () => {
    const again = synth(codexPlatform({ rules: [{ host: 'deb.debian.org', ports: [443, 80], allowPlainHttp: true }, { host: '.GitHubUserContent.com' }] }).chart);
    expect(JSON.stringify(again)).toBe(JSON.stringify(objects));
  });

  test('more replicas: a PodDisruptionBudget and spreading over nodes; options reach the Deployment and squid.conf', () => {
    const { chart: c2 } = codexPlatform({
      proxy: { replicas: 3, port: 8888, dnsNameservers: ['10.96.0.10'], hostsFile: '/etc/paddock/hosts', stateDir: '/var/run/egress', resources: { limits: { memory: '512Mi' } } },
    });
    const o2 = synth(c2);
    expectValidK8s(o2);
    const d = find(o2, 'Deployment', 'egress-proxy-agents');
    expect(d.spec.replicas).toBe(3);
    expect(d.spec.template.spec.topologySpreadConstraints[0].topologyKey).toBe('kubernetes.io/hostname');
    expect(find(o2, 'PodDisruptionBudget', 'egress-proxy-agents').spec).toEqual({ minAvailable: 1, selector: d.spec.selector });
    expect(d.spec.template.spec.containers[0].resources).toEqual({ limits: { memory: '512Mi' } });
    const conf = find(o2, 'ConfigMap', 'egress-agents').data['squid.conf'];
    expect(conf).toMatch(/^http_port 8888$/m);
    expect(conf).toMatch(/^dns_nameservers 10\.96\.0\.10$/m);
    expect(conf).toMatch(/^hosts_file \/etc\/paddock\/hosts$/m);
    expect(conf).toMatch(/^pid_filename \/var\/run\/egress\/squid\.pid$/m);
    expect(find(o2, 'Service', 'egress-proxy-agents').spec.ports[0].port).toBe(8888);
    expect(envOf(find(o2, 'Deployment', 'pool-codex').spec.template.spec).HTTPS_PROXY).toBe('http://egress-proxy-agents.paddock.svc:8888');
    // Squid may ask those name servers directly.
    expect(find(o2, 'NetworkPolicy', 'egress-proxy-agents').spec.egress[1]).toEqual({
      to: [{ ipBlock: { cidr: '10.96.0.10/32' } }],
      ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }],
    });
  });

  test('CIDR rules stay plain NetworkPolicy rules next to the proxy, and NO_PROXY sends clients there directly', () => {
    const { chart: c3 } = codexPlatform({ rules: [{ cidr: '10.20.0.0/16', ports: [443] }], proxy: { noProxy: ['git.corp.example', '.corp.example'] } });
    const o3 = synth(c3);
    const np = find(o3, 'NetworkPolicy', 'egress-agents');
    expect(np.spec.egress[1]).toEqual({ to: [{ ipBlock: { cidr: '10.20.0.0/16' } }], ports: [{ protocol: 'TCP', port: 443 }] });
    expect(envOf(find(o3, 'Deployment', 'pool-codex').spec.template.spec).NO_PROXY).toBe(
      'localhost,127.0.0.1,::1,paddock-controller,paddock-controller.paddock,paddock-controller.paddock.svc,.svc,.cluster.local,10.20.0.0/16,git.corp.example,.corp.example',
    );
  });

  test('pools sharing an allowlist share what they add; a pool without one gets no proxy', () => {
    const { chart: c4, platform } = newPlatform();
    const shared = new EgressAllowlist(platform, 'shared');
    keyedPool(platform, 'codex', { harnesses: [Harness.codex()] }, EXPOSED).allowEgressTo(shared);
    keyedPool(platform, 'claude', { harnesses: [Harness.claudeCode()] }, EXPOSED).allowEgressTo(shared);
    keyedPool(platform, 'gemini', { harnesses: [Harness.geminiCli()] }, EXPOSED);
    const o4 = synth(c4);
    const d = JSON.parse(find(o4, 'ConfigMap', 'egress-shared').data['allowlist.json']);
    expect(d.pools).toEqual(['claude', 'codex']);
    expect(d.hosts.map((h: any) => `${h.host} <- ${h.from}`)).toEqual(['api.anthropic.com <- harness claude-code (pool claude)', 'api.openai.com <- harness codex (pool codex)']);
    expect(envOf(find(o4, 'Deployment', 'pool-gemini').spec.template.spec).HTTPS_PROXY).toBeUndefined();
    expect(JSON.parse(find(o4, 'ConfigMap', 'pool-gemini').data['pool.json']).egress).toBeUndefined();
  });
});

describe('backend "cilium"', () => {
  const { chart } = codexPlatform({ backend: 'cilium', rules: [{ host: '.githubusercontent.com' }, { host: 'api.example.com', ports: [443, 8443] }, { cidr: '203.0.113.0/24' }] });
  const objects = synth(chart);

  test('a CiliumNetworkPolicy that passes the strict Cilium schema; no proxy, no proxy env', () => {
    expectValidK8s(objects);
    expect(objects.filter((o) => /egress-proxy/.test(o.metadata?.name ?? ''))).toEqual([]);
    expect(envOf(find(objects, 'Deployment', 'pool-codex').spec.template.spec).HTTPS_PROXY).toBeUndefined();
  });

  test('DNS through Cilium\'s DNS proxy (rules.dns "*", to kube-dns), then toFQDNs per port set', () => {
    const cnp = find(objects, 'CiliumNetworkPolicy', 'egress-agents');
    expect(cnp.spec.endpointSelector).toEqual({ matchLabels: { 'egress.paddock.dev/agents': 'allow' } });
    expect(cnp.spec.egress).toEqual([
      {
        toEndpoints: [{ matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'kube-system', 'k8s:k8s-app': 'kube-dns' } }],
        toPorts: [{ ports: [{ port: '53', protocol: 'ANY' }], rules: { dns: [{ matchPattern: '*' }] } }],
      },
      {
        toFQDNs: [
          { matchName: 'api.openai.com' },
          { matchName: 'github.com' },
          { matchName: 'githubusercontent.com' },
          { matchPattern: '**.githubusercontent.com' },
        ],
        toPorts: [{ ports: [{ port: '443', protocol: 'TCP' }] }],
      },
      { toFQDNs: [{ matchName: 'api.example.com' }], toPorts: [{ ports: [{ port: '443', protocol: 'TCP' }, { port: '8443', protocol: 'TCP' }] }] },
      { toFQDNs: [{ matchName: 'git.example.com' }], toPorts: [{ ports: [{ port: '8443', protocol: 'TCP' }] }] },
    ]);
  });

  test('CIDR rules stay in the plain NetworkPolicy, which leaves DNS to the CiliumNetworkPolicy', () => {
    const np = find(objects, 'NetworkPolicy', 'egress-agents');
    expect(np.spec.egress).toEqual([
      { to: [{ ipBlock: { cidr: '203.0.113.0/24' } }], ports: [{ protocol: 'TCP', port: 443 }] },
    ]);
  });

  test('the strict schema catches a typo and a bad port in the CiliumNetworkPolicy', () => {
    const cnp = JSON.parse(JSON.stringify(find(objects, 'CiliumNetworkPolicy', 'egress-agents')));
    cnp.spec.egress[1].toFQDN = cnp.spec.egress[1].toFQDNs;
    cnp.spec.egress[2].toPorts[0].ports[0].port = 443;
    const errors = validateK8sObject(cnp).join('\n');
    expect(errors).toMatch(/spec\.egress\[1\]\.toFQDN: unknown field \(did you mean "toFQDNs"\?\)/);
    expect(errors).toMatch(/spec\.egress\[2\]\.toPorts\[0\]\.ports\[0\]\.port: must be string/);
  });
});

describe('backend "networkpolicy"', () => {
  test('CIDR rules only: the pools\' hosts are listed as not enforced, not allowed', () => {
    const { chart } = codexPlatform({ backend: 'networkpolicy', rules: [{ cidr: '0.0.0.0/0', ports: [443] }] });
    const objects = synth(chart);
    expectValidK8s(objects);
    const d = JSON.parse(find(objects, 'ConfigMap', 'egress-agents').data['allowlist.json']);
    expect(d.hosts).toEqual([]);
    expect(d.unenforced.map((h: any) => h.host)).toEqual(['api.openai.com', 'git.example.com', 'github.com']);
    expect(find(objects, 'NetworkPolicy', 'egress-agents').spec.egress).toHaveLength(2); // DNS + the CIDR
    expect(objects.filter((o) => /egress-proxy/.test(o.metadata?.name ?? '') || o.kind === 'CiliumNetworkPolicy')).toEqual([]);
  });

  test('a host rule fails synthesis, naming the backends that can enforce it', () => {
    const { chart } = codexPlatform({ backend: 'networkpolicy', rules: [{ host: 'api.openai.com' }] });
    expect(synthProblems(chart)).toEqual([
      'EgressAllowlist "agents": host rule "api.openai.com" cannot be enforced by backend "networkpolicy", which sees only IP addresses; ' +
        'synthesis fails closed rather than allow nothing-or-everything. Use backend "proxy" (the default: an egress proxy that checks names) ' +
        'or "cilium" (CiliumNetworkPolicy toFQDNs), or allow the provider by CIDR, e.g. { cidr: "203.0.113.0/24", ports: [443] }',
    ]);
  });
});

describe('bad rules and options fail at once with a clear message', () => {
  const at = 'EgressAllowlist "e": rule ';
  const cases: Array<[string, (platform: Platform) => unknown, RegExp]> = [
    ['empty host', (p) => new EgressAllowlist(p, 'e', { rules: [{ host: '' }] }), /EgressAllowlist "e": rule \{"host":""\}: host: is empty; write a DNS name such as "api\.openai\.com"/],
    ['scheme in a host', (p) => new EgressAllowlist(p, 'e', { rules: [{ host: 'https://api.openai.com/v1' }] }), /host: "https:\/\/api\.openai\.com\/v1" contains a URL scheme \("https:\/\/"\); write only the name: "api\.openai\.com"/],
    ['wildcard in the middle', (p) => new EgressAllowlist(p, 'e', { rules: [{ host: 'api.*.com' }] }), /host: "api\.\*\.com": wildcards are not supported here; list each name as an exact rule, or use a suffix rule such as "\.example\.com"/],
    ['leading wildcard', (p) => new EgressAllowlist(p, 'e', { rules: [{ host: '*.github.com' }] }), /host: "\*\.github\.com" uses a wildcard; write host "\.github\.com"/],
    ['port 0 on a host rule', (p) => new EgressAllowlist(p, 'e', { rules: [{ host: 'api.openai.com', ports: [0] }] }), /rule \{"host":"api\.openai\.com","ports":\[0\]\}: ports\[0\]: 0 is not a valid TCP port; write an integer from 1 to 65535, e\.g\. 443/],
    ['port 0 on a CIDR rule', (p) => new EgressAllowlist(p, 'e', { rules: [{ cidr: '203.0.113.0/24', ports: [0] }] }), /ports\[0\]: must be an integer from 1 to 65535, got 0/],
    ['no ports', (p) => new EgressAllowlist(p, 'e', { rules: [{ host: 'api.openai.com', ports: [] }] }), /ports must list at least one port, e\.g\. \[443\]/],
    ['port in the host', (p) => new EgressAllowlist(p, 'e', { rules: [{ host: 'api.openai.com:443' }] }), /host: "api\.openai\.com:443" contains a port; write "api\.openai\.com" and put 443 in ports/],
    ['IP address as a host', (p) => new EgressAllowlist(p, 'e', { rules: [{ host: '169.254.169.254' }] }), /is an IP address; host rules take DNS names: allow addresses with a CIDR rule \(e\.g\. "169\.254\.169\.254\/32"\) instead/],
    ['suffix host marked exact', (p) => new EgressAllowlist(p, 'e', { rules: [{ host: '.example.com', match: 'exact' }] }), /starts with "\." which means a suffix match/],
    ['UDP host rule', (p) => new EgressAllowlist(p, 'e', { rules: [{ host: 'api.openai.com', protocol: 'UDP' }] }), /host rules are TCP/],
    ['allowPlainHttp on a CIDR rule', (p) => new EgressAllowlist(p, 'e', { rules: [{ cidr: '203.0.113.0/24', allowPlainHttp: true }] }), /allowPlainHttp applies to host rules only/],
    ['both cidr and host', (p) => new EgressAllowlist(p, 'e', { rules: [{ cidr: '203.0.113.0/24', host: 'a.com' }] }), /give exactly one of cidr or host/],
    ['unknown backend', (p) => new EgressAllowlist(p, 'e', { backend: 'istio' as any }), /backend "istio" is unknown; use "proxy", "cilium", "networkpolicy"/],
    ['proxy options with another backend', (p) => new EgressAllowlist(p, 'e', { backend: 'cilium', proxy: { replicas: 2 } }), /proxy options apply to backend "proxy" only, not "cilium"/],
    ['proxy replicas 0', (p) => new EgressAllowlist(p, 'e', { proxy: { replicas: 0 } }), /EgressAllowlist "e": proxy\.replicas: must be an integer from 1 to 10, got 0/],
    ['privileged proxy port', (p) => new EgressAllowlist(p, 'e', { proxy: { port: 80 } }), /proxy\.port: must be an integer from 1024 to 65535, got 80/],
    ['relative state dir', (p) => new EgressAllowlist(p, 'e', { proxy: { stateDir: 'run/squid' } }), /EgressAllowlist "e": proxy\.stateDir: "run\/squid" must be an absolute path/],
    ['a NO_PROXY entry with a comma', (p) => new EgressAllowlist(p, 'e', { proxy: { noProxy: ['a.example,b.example'] } }), /proxy\.noProxy\[0\]: "a\.example,b\.example" must be a host name/],
    ['name server by name', (p) => new EgressAllowlist(p, 'e', { proxy: { dnsNameservers: ['dns.google'] } }), /proxy\.dnsNameservers\[0\]: "dns\.google" is not an IP address/],
    ['two allowlists with one name', (p) => [new EgressAllowlist(p, 'a', { name: 'web' }), new EgressAllowlist(p, 'b', { name: 'web' })], /EgressAllowlist "web": an allowlist with this name already exists in platform "paddock" \(test\/platform\/a\); allowlist names must be unique/],
    ['name too long for its proxy objects', (p) => new EgressAllowlist(p, 'a'.repeat(51)), /name: "a{51}" is not a valid name: use at most 50/],
    [
      'a pool under two proxy allowlists',
      (p) => {
        const pool = keyedPool(p, 'codex', { harnesses: [Harness.codex()] }, EXPOSED);
        pool.allowEgressTo(new EgressAllowlist(p, 'one'));
        pool.allowEgressTo(new EgressAllowlist(p, 'two'));
      },
      /AgentPool "codex": allowEgressTo\("two"\): the pool already uses allowlist "one" with backend "proxy", and a pod has one HTTPS_PROXY; put the rules of both into one allowlist/,
    ],
    [
      'a pool mixing proxy and cilium',
      (p) => {
        const pool = keyedPool(p, 'codex', { harnesses: [Harness.codex()] }, EXPOSED);
        pool.allowEgressTo(new EgressAllowlist(p, 'one', { backend: 'cilium' }));
        pool.allowEgressTo(new EgressAllowlist(p, 'two'));
      },
      /the pool already uses allowlist "one" with backend "cilium"; one pool's host names are enforced by one backend/,
    ],
    [
      'a harness host that is a URL',
      (p) => keyedPool(p, 'x', { harnesses: [Harness.codex({ extraHosts: ['https://llm.example.com'] })] }, EXPOSED).allowEgressTo(new EgressAllowlist(p, 'e')),
      /Harness "codex": hosts\[1\]: "https:\/\/llm\.example\.com" contains a URL scheme/,
    ],
  ];

  test.each(cases)('%s', (_name, build, message) => {
    const { platform } = newPlatform();
    expect(() => build(platform)).toThrow(message);
  });

  test(`messages name the allowlist and the rule (${at}...)`, () => {
    const { platform } = newPlatform();
    expect(() => new EgressAllowlist(platform, 'e', { rules: [{ host: 'https://x.com', ports: [0] }] })).toThrow(
      `${at}{"host":"https://x.com","ports":[0]}: host: "https://x.com" contains a URL scheme ("https://"); write only the name: "x.com"\n` +
        `${at}{"host":"https://x.com","ports":[0]}: ports[0]: 0 is not a valid TCP port; write an integer from 1 to 65535, e.g. 443`,
    );
  });

  test('a task source on an IP address fails synthesis: names only, addresses by CIDR', () => {
    const { chart, platform } = newPlatform();
    const pool = keyedPool(platform, 'codex', { harnesses: [Harness.codex()] }, EXPOSED);
    pool.allowEgressTo(new EgressAllowlist(platform, 'e'));
    new AgentTask(platform, 't', { pool, prompt: 'p', sources: [{ url: 'https://10.1.2.3/org/repo.git' }] });
    expect(synthProblems(chart)).toEqual([
      'EgressAllowlist "e": task t source repo (pool codex): host: "10.1.2.3" is an IP address; host rules take DNS names: allow addresses with a CIDR rule (e.g. "10.1.2.3/32") instead',
    ]);
  });

  test('a patched proxy pod that drops its hardening fails the policy', () => {
    const { chart, list } = codexPlatform();
    (list.proxy!.node.findChild('deployment') as ApiObject).addJsonPatch(JsonPatch.remove('/spec/template/spec/containers/0/securityContext/capabilities'));
    expect(synthProblems(chart)).toEqual(['Deployment "egress-proxy-agents": container "squid": securityContext.capabilities.drop must include "ALL"']);
  });
});
