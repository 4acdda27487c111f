import { Lazy } from 'cdk8s';
import { Construct, IConstruct } from 'constructs';
import type { NetworkPolicyEgressRule } from 'kubernetes-types/networking/v1';
import { HostRule, normalizeHostRule, validateHostRule } from '../policy/squid-conf';
import { SPEC_API_VERSION } from '../policy/specs';
import { blockedRangesExcept, blockedRangesWithin, metadataAddressOf, parseCidr } from './cidr';
import { EgressProxy, EgressProxyOptions } from './egress-proxy';
import type { Harness } from '../core/harness';
import { kubeObject } from './kube-object';
import { EGRESS_LABEL_PREFIX, standardLabels } from '../core/labels';
import { Platform } from './platform';
import { checkDnsLabel, checkInteger, fail } from '../core/validation';
import { stableJson } from '../core/stable-json';

/** One allowed destination: an address range (`cidr`) or a host name (`host`). */
export interface EgressRule {
  /** e.g. "203.0.113.0/24"; private and link-local ranges inside it stay blocked unless named on their own. */
  readonly cidr?: string;
  /**
   * A DNS name: "api.openai.com" (exactly that name) or ".githubusercontent.com"
   * (that name and all its subdomains). No scheme, port, path or wildcard.
   */
  readonly host?: string;
  /** How `host` matches. @default - "suffix" when host starts with ".", else "exact" */
  readonly match?: 'exact' | 'suffix';
  /** @default [443] */
  readonly ports?: number[];
  /** CIDR rules only; host rules are TCP. @default "TCP" */
  readonly protocol?: 'TCP' | 'UDP';
  /**
   * Host rules, `proxy` backend: also allow plain `http://` requests to the
   * name on `ports` (readable and changeable in transit). The `cilium`
   * backend allows any protocol on a rule's ports anyway.
   * @default false - HTTPS (CONNECT) only
   */
  readonly allowPlainHttp?: boolean;
}

/**
 * How an allowlist is enforced.
 * - `proxy`: Paddock's egress proxy (Squid), which sees the host name of every
 *   request; pods reach the internet only through it (HTTPS_PROXY).
 * - `cilium`: a CiliumNetworkPolicy with `toFQDNs`; Cilium's DNS proxy learns
 *   which addresses the allowed names resolve to. Needs Cilium as the CNI.
 * - `networkpolicy`: a plain NetworkPolicy, which sees only addresses: CIDR
 *   rules only; host rules fail synthesis.
 */
export type EgressBackend = 'proxy' | 'cilium' | 'networkpolicy';

export const EGRESS_BACKENDS: readonly EgressBackend[] = ['proxy', 'cilium', 'networkpolicy'];

export interface EgressAllowlistProps {
  /** Name of the allowlist: its objects are `egress-<name>` (and `egress-proxy-<name>`). @default - the construct id */
  readonly name?: string;
  /** @default - none: only DNS, plus what the pools that use it need */
  readonly rules?: EgressRule[];
  /** @default "proxy" */
  readonly backend?: EgressBackend;
  /** Settings of the egress proxy (backend "proxy" only). @default - one replica, port 3128 */
  readonly proxy?: EgressProxyOptions;
}

/** A host name in effect, merged over every rule that names it, with where each came from. */
export interface EffectiveHostRule {
  /** Lower case; suffix rules start with ".". */
  readonly host: string;
  readonly match: 'exact' | 'suffix';
  readonly ports: number[];
  readonly allowPlainHttp: boolean;
  /** e.g. "rule", "harness codex (pool codex)", "task fix-readme source repo (pool codex)". */
  readonly from: string[];
}

export interface EffectiveCidrRule {
  readonly cidr: string;
  /** Private ranges inside `cidr` that stay blocked. */
  readonly except: string[];
  readonly ports: number[];
  readonly protocol: 'TCP' | 'UDP';
  readonly from: string[];
}

/** What an allowlist lets its pods reach, resolved at synth time. */
export interface EffectiveEgress {
  /** Host names enforced by the backend (none for `networkpolicy`). */
  readonly hosts: EffectiveHostRule[];
  readonly cidrs: EffectiveCidrRule[];
  /** Host names the pools need that the `networkpolicy` backend cannot enforce: not allowed. */
  readonly unenforced: EffectiveHostRule[];
}

/** What an allowlist needs of the pools that use it (implemented by AgentPool). */
export interface IEgressPool extends IConstruct {
  readonly name: string;
  readonly harnesses: readonly Harness[];
  /** Hosts the pool's model calls reach through the model gateway: its agents need no egress to them. */
  readonly gatewayHosts?: readonly string[];
}

type UserRule =
  | { readonly kind: 'host'; readonly rule: HostRule; readonly from: string }
  | { readonly kind: 'cidr'; readonly cidr: string; readonly ports: number[]; readonly protocol: 'TCP' | 'UDP' };

interface Need {
  readonly rule: HostRule;
  readonly from: string;
}

/** A task as the allowlist sees it (AgentTask; duck-typed to avoid an import cycle). */
interface TaskRef {
  readonly name: string;
  readonly pool: unknown;
  readonly spec: { readonly kind: string; readonly sources?: ReadonlyArray<{ readonly name: string; readonly url: string }> };
}

const DEFAULT_PORT = 443;

/**
 * Where agent pods may connect. Pods are default-deny (Platform); the pods of
 * every pool that `allowEgressTo(allowlist)` carry the label
 * `egress.paddock.dev/<name>: allow` and get DNS to the cluster DNS pods plus
 * what the allowlist allows, and nothing else.
 *
 * What it allows is the union of
 * - its rules (`rules`, `addRule`, `allowHarness`),
 * - the hosts of the harnesses of the pools that use it (their presets' `hosts`), and
 * - the git hosts of those pools' tasks' sources,
 * so a pool reaches its model provider and its git host without listing them.
 * The pools' hosts are added only under a backend that can enforce names
 * (`proxy`, `cilium`); `egress explain` shows them either way. Pools that
 * share an allowlist share these additions: give a pool an allowlist of its
 * own to keep its reach exact.
 *
 * CIDR rules are plain NetworkPolicy rules (`egress-<name>`) under every
 * backend. Host rules are enforced by the backend: `proxy` (default) runs an
 * egress proxy `egress-proxy-<name>` (see EgressProxy) whose URL the pools'
 * pods get as HTTPS_PROXY / HTTP_PROXY; `cilium` writes a
 * CiliumNetworkPolicy `egress-<name>`; `networkpolicy` cannot see names, so a
 * host rule fails synthesis. With the proxy backend the allowlist always runs
 * its proxy and its pools always use it (they add at least their providers);
 * for CIDR rules alone, with no proxy, use backend `networkpolicy`.
 * The ConfigMap `egress-<name>` describes the
 * effective allowlist (`allowlist.json`, read by `paddock egress explain`) and
 * holds the proxy's `squid.conf`.
 */
export class EgressAllowlist extends Construct {
  /** An allowlist with the provider hosts of the given harnesses (their presets' `hosts`). */
  public static forHarnesses(scope: Construct, id: string, harnesses: Harness[], props: EgressAllowlistProps = {}): EgressAllowlist {
    const allowlist = new EgressAllowlist(scope, id, props);
    harnesses.forEach((h) => allowlist.allowHarness(h));
    return allowlist;
  }

  public readonly name: string;
  public readonly backend: EgressBackend;
  /** The egress proxy (backend "proxy"). */
  public readonly proxy?: EgressProxy;
  private readonly platform: Platform;
  private readonly rules: UserRule[] = [];
  private readonly pools: IEgressPool[] = [];

  constructor(scope: Construct, id: string, props: EgressAllowlistProps = {}) {
    super(scope, id);
    this.platform = Platform.of(this);
    // egress-proxy-<name> must stay a DNS label (63).
    this.name = checkDnsLabel(props.name ?? id, `EgressAllowlist "${props.name ?? id}": name`, 50);
    this.backend = props.backend ?? 'proxy';
    if (!EGRESS_BACKENDS.includes(this.backend)) {
      fail(`EgressAllowlist "${this.name}": backend "${this.backend}" is unknown; use ${EGRESS_BACKENDS.map((b) => `"${b}"`).join(', ')}`);
    }
    const twin = this.platform.node.findAll().find((c) => c instanceof EgressAllowlist && c !== this && c.name === this.name);
    if (twin) {
      fail(`EgressAllowlist "${this.name}": an allowlist with this name already exists in platform "${this.platform.namespace}" (${twin.node.path}); allowlist names must be unique`);
    }
    const owner = `EgressAllowlist "${this.name}" (${this.node.path})`;
    const fix = 'give this allowlist another name (allowlist "x" with the proxy backend names its proxy\'s objects "egress-proxy-x")';
    this.platform._claimName('NetworkPolicy', this.objectName, owner, fix);
    if (this.backend === 'proxy') this.platform._claimName('NetworkPolicy', `egress-proxy-${this.name}`, owner, fix);
    if (props.proxy && this.backend !== 'proxy') {
      fail(`EgressAllowlist "${this.name}": proxy options apply to backend "proxy" only, not "${this.backend}"`);
    }
    (props.rules ?? []).forEach((rule) => this.addRule(rule));

    const ns = this.platform.namespace;
    const labels = standardLabels(ns, 'egress', { 'paddock.dev/egress': this.name });
    if (this.backend === 'proxy') {
      this.proxy = new EgressProxy(this, 'proxy', {
        allowlistName: this.name,
        clientPodLabel: this.podLabel,
        configMapName: this.objectName,
        hostRules: () => this.effectiveRules().hosts.map(({ host, match, ports, allowPlainHttp }) => ({ host, match, ports, allowPlainHttp })),
        options: props.proxy,
      });
    }
    kubeObject(this, 'policy', {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: this.objectName, namespace: ns, labels },
      spec: {
        podSelector: { matchLabels: { [this.podLabel]: 'allow' } },
        policyTypes: ['Egress'],
        // Lazy: rules and pools added after construction still land in the policy.
        egress: Lazy.any({ produce: () => this.egressRules() }),
      },
    });
    if (this.backend === 'cilium') {
      kubeObject(this, 'cilium-policy', {
        apiVersion: 'cilium.io/v2',
        kind: 'CiliumNetworkPolicy',
        metadata: { name: this.objectName, namespace: ns, labels },
        spec: {
          endpointSelector: { matchLabels: { [this.podLabel]: 'allow' } },
          egress: Lazy.any({ produce: () => this.ciliumEgressRules() }),
          // toFQDNs allows whatever a name resolves to: deny the private, link-local, loopback and
          // IPv4-mapped ranges (and the metadata service) outright, except the CIDR rules that name them.
          egressDeny: Lazy.any({ produce: () => [{ toCIDRSet: blockedRangesExcept(this.effectiveRules().cidrs.map((c) => parseCidr(c.cidr, 'cidr'))) }] }),
        },
      });
    }
    kubeObject(this, 'config', {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: this.objectName, namespace: ns, labels },
      data: Lazy.any({
        produce: () => ({
          'allowlist.json': stableJson(this.description()),
          ...(this.proxy ? { 'squid.conf': this.proxy.conf() } : {}),
        }),
      }),
    });
    this.node.addValidation({ validate: () => this.problems() });
  }

  /** Name of the allowlist's NetworkPolicy, ConfigMap (and CiliumNetworkPolicy). */
  public get objectName(): string {
    return `egress-${this.name}`;
  }

  /** The pod label that puts a pod under this allowlist. */
  public get podLabel(): string {
    return `${EGRESS_LABEL_PREFIX}${this.name}`;
  }

  /** HTTPS_PROXY / HTTP_PROXY for the pods under this allowlist (backend "proxy"). */
  public get proxyUrl(): string | undefined {
    return this.proxy?.url;
  }

  /**
   * NO_PROXY for the pods under this allowlist: what they reach directly
   * (where a NetworkPolicy lets them), never the allowlisted hosts: loopback,
   * the controller and cluster-local names, the CIDR rules (clients that
   * understand CIDRs connect to those addresses directly) and
   * `proxy.noProxy`.
   */
  public get noProxy(): string[] {
    const ns = this.platform.namespace;
    const controller = this.platform.controllerServiceName;
    const cidrs = this.rules.filter((r): r is Extract<UserRule, { kind: 'cidr' }> => r.kind === 'cidr').map((r) => r.cidr);
    return [
      ...new Set(['localhost', '127.0.0.1', '::1', controller, `${controller}.${ns}`, `${controller}.${ns}.svc`, '.svc', '.cluster.local', ...cidrs, ...(this.proxy?.extraNoProxy ?? [])]),
    ];
  }

  /** Add a CIDR or host rule; a bad rule throws at once, naming what to write instead. */
  public addRule(rule: EgressRule): void {
    this.addUserRule(rule, 'rule');
  }

  /** Allow the hosts a harness needs to reach (its model provider). */
  public allowHarness(harness: Harness): void {
    harness.hosts.forEach((host) => this.addUserRule({ host }, `harness ${harness.name}`));
  }

  /** Host names of this allowlist's own rules (not those its pools add; see `effectiveRules`). */
  public get hosts(): string[] {
    return this.rules.filter((r): r is Extract<UserRule, { kind: 'host' }> => r.kind === 'host').map((r) => r.rule.host);
  }

  /** Names of the pools that use this allowlist. */
  public get poolNames(): string[] {
    return this.pools.map((p) => p.name).sort();
  }

  /**
   * @internal called by AgentPool.allowEgressTo: `current` are the pool's
   * allowlists so far. A pod has one HTTPS_PROXY, so a pool uses at most one
   * proxy allowlist, and does not mix the proxy with Cilium's FQDN rules.
   */
  public _attach(pool: IEgressPool, current: readonly EgressAllowlist[]): void {
    const where = `AgentPool "${pool.name}": allowEgressTo("${this.name}")`;
    const proxied = current.find((a) => a.backend === 'proxy');
    if (this.backend === 'proxy' && proxied) {
      fail(
        `${where}: the pool already uses allowlist "${proxied.name}" with backend "proxy", and a pod has one HTTPS_PROXY; ` +
          'put the rules of both into one allowlist, or use backend "networkpolicy" for CIDR-only rules',
      );
    }
    const other = current.find((a) => (a.backend === 'proxy' && this.backend === 'cilium') || (a.backend === 'cilium' && this.backend === 'proxy'));
    if (other) {
      fail(`${where}: the pool already uses allowlist "${other.name}" with backend "${other.backend}"; one pool's host names are enforced by one backend: give both allowlists the same backend`);
    }
    for (const harness of pool.harnesses) {
      harness.hosts.forEach((host, i) => {
        const errors = validateHostRule(inferHostRule({ host }));
        if (errors.length) fail(errors.map((e) => `Harness "${harness.name}": hosts[${i}]: ${e.replace(/^host: /, '')}`).join('\n'));
      });
    }
    if (!this.pools.includes(pool)) this.pools.push(pool);
  }

  /** Everything this allowlist lets its pods reach, with where each rule came from (resolved now; call at synth time). */
  public effectiveRules(): EffectiveEgress {
    return this.resolve().effective;
  }

  private addUserRule(rule: EgressRule, from: string): void {
    const where = `EgressAllowlist "${this.name}": rule ${JSON.stringify(rule)}`;
    if (!rule || typeof rule !== 'object' || (rule.cidr === undefined) === (rule.host === undefined)) {
      fail(`${where}: give exactly one of cidr or host, e.g. { cidr: "203.0.113.0/24" } or { host: "api.openai.com" }`);
    }
    if (rule.ports !== undefined && (!Array.isArray(rule.ports) || rule.ports.length === 0)) {
      fail(`${where}: ports must list at least one port, e.g. [443]`);
    }
    if (rule.cidr !== undefined) {
      for (const field of ['match', 'allowPlainHttp'] as const) {
        if (rule[field] !== undefined) fail(`${where}: ${field} applies to host rules only`);
      }
      const ports = (rule.ports ?? [DEFAULT_PORT]).map((p, i) => checkInteger(p, `${where}: ports[${i}]`, 1, 65535));
      const protocol = rule.protocol ?? 'TCP';
      if (protocol !== 'TCP' && protocol !== 'UDP') fail(`${where}: protocol must be "TCP" or "UDP"`);
      const metadata = metadataAddressOf(parseCidr(rule.cidr, `${where}: cidr`));
      if (metadata) fail(`${where}: cidr "${rule.cidr}" is the cloud metadata service (${metadata}), which no allowlist may reach (it hands out the node's credentials); remove the rule`);
      this.rules.push({ kind: 'cidr', cidr: rule.cidr, ports, protocol });
      return;
    }
    if (rule.protocol !== undefined && rule.protocol !== 'TCP') {
      fail(`${where}: host rules are TCP (HTTPS and HTTP); remove protocol, or allow UDP by CIDR`);
    }
    // One validator for host names, shared with the Squid renderer.
    const hostRule = inferHostRule(rule);
    const errors = validateHostRule(hostRule);
    if (errors.length) fail(errors.map((e) => `${where}: ${e}`).join('\n'));
    this.rules.push({ kind: 'host', rule: hostRule, from });
  }

  /** The hosts the pools that use this allowlist need: their harnesses' hosts and their tasks' git hosts. */
  private needs(problems: string[]): Need[] {
    const needs: Need[] = [];
    const pools = [...this.pools].sort((a, b) => compare(a.name, b.name));
    for (const pool of pools) {
      for (const harness of pool.harnesses) {
        for (const host of harness.hosts) {
          if (pool.gatewayHosts?.includes(host)) continue;
          needs.push({ rule: inferHostRule({ host }), from: `harness ${harness.name} (pool ${pool.name})` });
        }
      }
    }
    const attached = new Set<unknown>(this.pools);
    const tasks = this.platform.node
      .findAll()
      .filter((c): c is IConstruct & TaskRef => isTask(c) && attached.has(c.pool))
      .sort((a, b) => compare(a.name, b.name));
    for (const task of tasks) {
      const pool = task.pool as IEgressPool;
      for (const source of task.spec.sources ?? []) {
        const from = `task ${task.name} source ${source.name} (pool ${pool.name})`;
        let url: URL;
        try {
          url = new URL(source.url);
        } catch {
          continue; // AgentTask rejects such URLs itself
        }
        const rule: HostRule = { host: url.hostname, match: 'exact', ports: [url.port ? Number(url.port) : DEFAULT_PORT] };
        const errors = validateHostRule(rule);
        if (errors.length) {
          problems.push(...errors.map((e) => `EgressAllowlist "${this.name}": ${from}: ${e}`));
          continue;
        }
        needs.push({ rule, from });
      }
    }
    return needs;
  }

  private resolve(): { effective: EffectiveEgress; problems: string[] } {
    const problems: string[] = [];
    const enforced = new HostRules();
    const unenforced = new HostRules();
    for (const r of this.rules) {
      if (r.kind !== 'host') continue;
      if (this.backend === 'networkpolicy') {
        problems.push(
          `EgressAllowlist "${this.name}": host rule "${r.rule.host}" cannot be enforced by backend "networkpolicy", which sees only IP addresses; ` +
            'synthesis fails closed rather than allow nothing-or-everything. Use backend "proxy" (the default: an egress proxy that checks names) ' +
            'or "cilium" (CiliumNetworkPolicy toFQDNs), or allow the provider by CIDR, e.g. { cidr: "203.0.113.0/24", ports: [443] }',
        );
      } else {
        enforced.add(r.rule, r.from);
      }
    }
    for (const need of this.needs(problems)) {
      (this.backend === 'networkpolicy' ? unenforced : enforced).add(need.rule, need.from);
    }
    const cidrs = this.rules
      .filter((r): r is Extract<UserRule, { kind: 'cidr' }> => r.kind === 'cidr')
      .map((r) => ({ cidr: r.cidr, except: blockedRangesWithin(parseCidr(r.cidr, 'cidr')), ports: r.ports, protocol: r.protocol, from: ['rule'] }));
    return { effective: { hosts: enforced.list(), cidrs, unenforced: unenforced.list() }, problems };
  }

  private problems(): string[] {
    return this.resolve().problems;
  }

  /** The allowlist's NetworkPolicy: DNS (Cilium: in its own policy), the CIDR rules, and the way to the proxy. */
  private egressRules(): NetworkPolicyEgressRule[] {
    const rules: NetworkPolicyEgressRule[] = this.backend === 'cilium' ? [] : [this.platform.dnsEgressRule()];
    for (const r of this.effectiveRules().cidrs) {
      rules.push({
        to: [{ ipBlock: { cidr: r.cidr, ...(r.except.length ? { except: r.except } : {}) } }],
        ports: r.ports.map((port) => ({ protocol: r.protocol, port })),
      });
    }
    if (this.proxy) {
      rules.push({ to: [{ podSelector: { matchLabels: this.proxy.podSelector } }], ports: [{ protocol: 'TCP', port: this.proxy.port }] });
    }
    return rules;
  }

  /**
   * DNS to the cluster DNS pods through Cilium's DNS proxy (`rules.dns`, any
   * name: the proxy must see every lookup to learn the addresses of the
   * allowed names), then one `toFQDNs` rule per set of ports. A suffix rule
   * ".example.com" becomes matchName "example.com" plus matchPattern
   * "**.example.com" (every subdomain level on Cilium >= 1.19; one level on
   * older versions, which is narrower, never wider).
   */
  private ciliumEgressRules(): unknown[] {
    const dns = this.platform.dnsEgressRule().to![0];
    const dnsNamespace = dns.namespaceSelector!.matchLabels!['kubernetes.io/metadata.name'];
    const dnsLabels = Object.fromEntries(Object.entries(dns.podSelector!.matchLabels!).map(([k, v]) => [`k8s:${k}`, v]));
    const rules: unknown[] = [
      {
        toEndpoints: [{ matchLabels: { 'k8s:io.kubernetes.pod.namespace': dnsNamespace, ...dnsLabels } }],
        toPorts: [{ ports: [{ port: '53', protocol: 'ANY' }], rules: { dns: [{ matchPattern: '*' }] } }],
      },
    ];
    const byPorts = new Map<string, { ports: number[]; selectors: Map<string, Record<string, string>> }>();
    for (const h of this.effectiveRules().hosts) {
      const key = h.ports.join(',');
      const group = byPorts.get(key) ?? { ports: h.ports, selectors: new Map() };
      const bare = h.host.replace(/^\./, '');
      group.selectors.set(`name:${bare}`, { matchName: bare });
      if (h.match === 'suffix') group.selectors.set(`pattern:${bare}`, { matchPattern: `**.${bare}` });
      byPorts.set(key, group);
    }
    for (const key of [...byPorts.keys()].sort()) {
      const group = byPorts.get(key)!;
      rules.push({
        toFQDNs: [...group.selectors.keys()].sort().map((k) => group.selectors.get(k)!),
        toPorts: [{ ports: group.ports.map((port) => ({ port: String(port), protocol: 'TCP' })) }],
      });
    }
    return rules;
  }

  /** allowlist.json: the effective allowlist, for `paddock egress explain` and operators. */
  private description(): Record<string, unknown> {
    const effective = this.effectiveRules();
    const dns = this.platform.dnsEgressRule().to![0];
    return {
      apiVersion: SPEC_API_VERSION,
      kind: 'EgressAllowlist',
      name: this.name,
      namespace: this.platform.namespace,
      backend: this.backend,
      pools: this.poolNames,
      ...(this.proxy ? { proxy: { url: this.proxy.url, noProxy: this.noProxy } } : {}),
      dns: { namespace: dns.namespaceSelector!.matchLabels!['kubernetes.io/metadata.name'], podLabels: dns.podSelector!.matchLabels },
      hosts: effective.hosts,
      cidrs: effective.cidrs,
      ...(effective.unenforced.length ? { unenforced: effective.unenforced } : {}),
    };
  }
}

/** A host rule from an EgressRule: a leading "." means a suffix rule unless `match` says otherwise. */
function inferHostRule(rule: EgressRule): HostRule {
  const host = rule.host as string;
  return {
    host,
    match: rule.match ?? (typeof host === 'string' && host.startsWith('.') ? 'suffix' : 'exact'),
    ports: rule.ports ?? [DEFAULT_PORT],
    ...(rule.allowPlainHttp !== undefined ? { allowPlainHttp: rule.allowPlainHttp } : {}),
  };
}

/** Host rules merged by (name, plain HTTP): ports and origins united, sorted. */
class HostRules {
  private readonly byKey = new Map<string, { host: string; match: 'exact' | 'suffix'; allowPlainHttp: boolean; ports: Set<number>; from: Set<string> }>();

  add(rule: HostRule, from: string): void {
    const n = normalizeHostRule(rule);
    const key = `${n.host} ${n.allowPlainHttp}`;
    const entry = this.byKey.get(key) ?? { host: n.host, match: n.match, allowPlainHttp: n.allowPlainHttp, ports: new Set<number>(), from: new Set<string>() };
    n.ports.forEach((p) => entry.ports.add(p));
    entry.from.add(from);
    this.byKey.set(key, entry);
  }

  list(): EffectiveHostRule[] {
    return [...this.byKey.keys()].sort(compare).map((key) => {
      const e = this.byKey.get(key)!;
      return { host: e.host, match: e.match, ports: [...e.ports].sort((a, b) => a - b), allowPlainHttp: e.allowPlainHttp, from: [...e.from].sort(compare) };
    });
  }
}

/** An AgentTask (checked field by field, cheapest first: `spec` is a computed getter on other constructs). */
function isTask(c: IConstruct): c is IConstruct & TaskRef {
  const t = c as unknown as Partial<TaskRef> & { specHash?: unknown };
  return t.pool !== undefined && typeof t.specHash === 'string' && typeof t.name === 'string' && t.spec?.kind === 'Task';
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
