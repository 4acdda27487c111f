import { Lazy } from 'cdk8s';
import { Construct } from 'constructs';
import type { NetworkPolicyEgressRule } from 'kubernetes-types/networking/v1';
import type { Harness } from './harness';
import { kubeObject } from './kube-object';
import { EGRESS_LABEL_PREFIX, standardLabels } from './labels';
import { blockedRangesWithin, parseCidr } from './cidr';
import { Platform } from './platform';
import { checkDnsLabel, checkInteger, fail } from './validation';

/** One allowed destination: an address range (`cidr`) or a hostname (`host`). */
export interface EgressRule {
  /** e.g. "203.0.113.0/24"; private and link-local ranges inside it stay blocked unless named on their own. */
  readonly cidr?: string;
  /** e.g. "api.openai.com" (exact) or ".githubusercontent.com" (that domain's subdomains). */
  readonly host?: string;
  /** @default [443] */
  readonly ports?: number[];
  /** @default "TCP" */
  readonly protocol?: 'TCP' | 'UDP';
}

/** How hostname rules are enforced. */
export type EgressBackend = 'networkpolicy';

export interface EgressAllowlistProps {
  /** Name of the allowlist; its NetworkPolicy is `egress-<name>`. @default - the construct id */
  readonly name?: string;
  /** @default - none: only DNS */
  readonly rules?: EgressRule[];
  /**
   * `networkpolicy` enforces CIDR rules with a plain NetworkPolicy; it cannot see hostnames, so host rules fail synthesis.
   * @default "networkpolicy"
   */
  readonly backend?: EgressBackend;
}

interface NormalizedRule {
  readonly cidr?: string;
  readonly host?: string;
  readonly ports: number[];
  readonly protocol: 'TCP' | 'UDP';
}

/**
 * Where agent pods may connect. Pods are default-deny (Platform); a pool
 * that `allowEgressTo(allowlist)` gets DNS to the cluster DNS pods plus
 * these rules, and nothing else.
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
  private readonly platform: Platform;
  private readonly rules: NormalizedRule[] = [];

  constructor(scope: Construct, id: string, props: EgressAllowlistProps = {}) {
    super(scope, id);
    this.platform = Platform.of(this);
    this.name = checkDnsLabel(props.name ?? id, `EgressAllowlist "${props.name ?? id}": name`, 56);
    this.backend = props.backend ?? 'networkpolicy';
    if (this.backend !== 'networkpolicy') {
      fail(`EgressAllowlist "${this.name}": backend "${this.backend}" is unknown; use "networkpolicy"`);
    }
    (props.rules ?? []).forEach((rule) => this.addRule(rule));

    const ns = this.platform.namespace;
    kubeObject(this, 'policy', {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: `egress-${this.name}`, namespace: ns, labels: standardLabels(ns, 'egress', { 'paddock.dev/egress': this.name }) },
      spec: {
        podSelector: { matchLabels: { [this.podLabel]: 'allow' } },
        policyTypes: ['Egress'],
        // Lazy: rules added after construction still land in the policy.
        egress: Lazy.any({ produce: () => this.egressRules() }),
      },
    });
    this.node.addValidation({ validate: () => this.checkEnforceable() });
  }

  /** The pod label that puts a pod under this allowlist. */
  public get podLabel(): string {
    return `${EGRESS_LABEL_PREFIX}${this.name}`;
  }

  public addRule(rule: EgressRule): void {
    const where = `EgressAllowlist "${this.name}": rule ${JSON.stringify(rule)}`;
    if (!rule || (rule.cidr === undefined) === (rule.host === undefined)) {
      fail(`${where}: give exactly one of cidr or host, e.g. { cidr: "203.0.113.0/24" } or { host: "api.openai.com" }`);
    }
    const ports = (rule.ports ?? [443]).map((p, i) => checkInteger(p, `${where}: ports[${i}]`, 1, 65535));
    if (ports.length === 0) fail(`${where}: ports must list at least one port, e.g. [443]`);
    const protocol = rule.protocol ?? 'TCP';
    if (protocol !== 'TCP' && protocol !== 'UDP') fail(`${where}: protocol must be "TCP" or "UDP"`);
    if (rule.cidr !== undefined) {
      parseCidr(rule.cidr, `${where}: cidr`);
      this.rules.push({ cidr: rule.cidr, ports, protocol });
    } else {
      this.rules.push({ host: checkHost(rule.host as string, `${where}: host`), ports, protocol });
    }
  }

  /** Allow the hosts a harness needs to reach (its model provider). */
  public allowHarness(harness: Harness): void {
    harness.hosts.forEach((host) => this.addRule({ host }));
  }

  /** Hostnames in this allowlist. */
  public get hosts(): string[] {
    return this.rules.filter((r) => r.host).map((r) => r.host as string);
  }

  private egressRules(): NetworkPolicyEgressRule[] {
    const cidrRules = this.rules
      .filter((r) => r.cidr)
      .map((r) => {
        const except = blockedRangesWithin(parseCidr(r.cidr as string, 'cidr'));
        return {
          to: [{ ipBlock: { cidr: r.cidr as string, ...(except.length ? { except } : {}) } }],
          ports: r.ports.map((port) => ({ protocol: r.protocol, port })),
        };
      });
    return [this.platform.dnsEgressRule(), ...cidrRules];
  }

  private checkEnforceable(): string[] {
    return this.hosts.map(
      (host) =>
        `EgressAllowlist "${this.name}": host rule "${host}" cannot be enforced by a NetworkPolicy, which sees only IP addresses; ` +
        'synthesis fails closed rather than allow nothing-or-everything. Allow the provider by CIDR instead, e.g. { cidr: "203.0.113.0/24", ports: [443] }',
    );
  }
}

/** Hostname syntax: exact names or a leading-dot suffix; no scheme, path, port or wildcard. */
function checkHost(host: string, field: string): string {
  if (typeof host !== 'string' || !host.trim()) fail(`${field}: must be a hostname such as "api.openai.com"`);
  const scheme = host.match(/^[a-z][a-z0-9+.-]*:\/\//i);
  if (scheme) fail(`${field}: "${host}" has a scheme; write the bare hostname "${host.slice(scheme[0].length).split('/')[0]}"`);
  if (host.includes('*')) {
    const suffix = host.replace(/^\*/, '');
    if (/^\.[^*]+$/.test(suffix)) fail(`${field}: "${host}" uses a wildcard; write the suffix "${suffix}" to allow its subdomains`);
    fail(`${field}: "${host}" has a wildcard in the middle; list each hostname, or use a suffix such as ".example.com"`);
  }
  const name = host.startsWith('.') ? host.slice(1) : host;
  if (!/^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(name) || name.length > 253) {
    fail(`${field}: "${host}" is not a valid hostname; write lower-case labels separated by dots, e.g. "api.openai.com", without port or path`);
  }
  return host;
}
