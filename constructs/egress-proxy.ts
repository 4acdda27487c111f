/**
 * The egress proxy of an EgressAllowlist with the `proxy` backend: Squid
 * (worker-images/egress-proxy) checking every CONNECT / plain-HTTP request
 * against the allowlist's host names, ports and the private ranges.
 *
 * One proxy per allowlist: its squid.conf is exactly that allowlist, and its
 * NetworkPolicy admits only the pods carrying that allowlist's label, so a
 * pool can never use another allowlist's proxy to reach names it was not
 * given. Objects (all named `egress-proxy-<allowlist>`): ServiceAccount (no
 * token), Deployment, Service, NetworkPolicy, and a PodDisruptionBudget when
 * it runs more than one replica. The squid.conf itself lives in the
 * allowlist's ConfigMap `egress-<allowlist>` (key `squid.conf`).
 */
import { createHash } from 'crypto';
import { Lazy } from 'cdk8s';
import { Construct } from 'constructs';
import type { NetworkPolicyEgressRule, NetworkPolicyPort } from 'kubernetes-types/networking/v1';
import { HostRule, renderSquidConf } from '../policy/squid-conf';
import { blockedRangesWithin, parseCidr } from './cidr';
import { imageRef } from '../core/images';
import { kubeObject } from './kube-object';
import { selectorLabels, standardLabels } from '../core/labels';
import { Platform } from './platform';
import { hardenedContainerSecurityContext, hardenedPodSecurityContext } from './pod-hardening';
import { checkPodResources, PodResources } from './sandbox-profile';
import { checkImageRef, checkInteger, fail } from '../core/validation';

export interface EgressProxyOptions {
  /** Proxy pods. More than one adds a PodDisruptionBudget (minAvailable 1) and spreads them over nodes. @default 1 */
  readonly replicas?: number;
  /** @default - Paddock's egress-proxy image (worker-images/egress-proxy, Debian's squid) */
  readonly image?: string;
  /** @default - requests 50m CPU / 64Mi memory, limits 500m CPU / 256Mi memory */
  readonly resources?: PodResources;
  /** Port the proxy listens on and its Service exposes (HTTPS_PROXY / HTTP_PROXY). @default 3128 */
  readonly port?: number;
  /**
   * DNS servers (IP addresses) Squid asks instead of those in the pod's
   * /etc/resolv.conf; the proxy's NetworkPolicy then also allows port 53 to them.
   * @default - the cluster DNS of the pod's resolv.conf
   */
  readonly dnsNameservers?: string[];
  /** Squid's static hosts file (names mapped before DNS). @default - /etc/hosts (the pod's, incl. hostAliases) */
  readonly hostsFile?: string;
  /** The one directory Squid writes (pid file, core dumps): an emptyDir mounted there. @default "/run/squid" */
  readonly stateDir?: string;
  /**
   * More NO_PROXY entries for the pods: names they reach directly, not through
   * the proxy, e.g. an internal git server (allow its addresses with a CIDR
   * rule: the proxy refuses private addresses).
   * @default - none (loopback, the controller, cluster-local names and the CIDR rules are always there)
   */
  readonly noProxy?: string[];
}

/** Debian's `proxy` user and group, which the image runs as. */
export const EGRESS_PROXY_UID = 13;
/** Where the proxy reads its squid.conf (the allowlist ConfigMap's key `squid.conf`). */
export const EGRESS_PROXY_CONF_DIR = '/etc/paddock/egress';
const DEFAULT_RESOURCES: PodResources = { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '500m', memory: '256Mi' } };
const ANNOTATION_CONF_HASH = 'paddock.dev/squid-conf-sha256';

export interface EgressProxyProps {
  /** Name of the allowlist; the proxy's objects are `egress-proxy-<name>`. */
  readonly allowlistName: string;
  /** Pod label (value `allow`) of the pods allowed to use the proxy. */
  readonly clientPodLabel: string;
  /** ConfigMap holding `squid.conf`. */
  readonly configMapName: string;
  /** The host rules in effect (resolved at synth time). */
  readonly hostRules: () => HostRule[];
  readonly options?: EgressProxyOptions;
}

/** Squid for one allowlist. Created by `EgressAllowlist` with `backend: "proxy"`; not meant to be used alone. */
export class EgressProxy extends Construct {
  /** Name of the proxy's Deployment, Service, NetworkPolicy, ServiceAccount (and PDB). */
  public readonly name: string;
  public readonly port: number;
  /** Labels of the proxy pods (their NetworkPolicy selector). */
  public readonly podSelector: Record<string, string>;
  private readonly platform: Platform;
  private readonly props: EgressProxyProps;
  /** NO_PROXY entries from the options. */
  public readonly extraNoProxy: readonly string[];
  private readonly stateDir: string;
  private readonly dnsNameservers: string[];

  constructor(scope: Construct, id: string, props: EgressProxyProps) {
    super(scope, id);
    this.platform = Platform.of(this);
    this.props = props;
    const where = `EgressAllowlist "${props.allowlistName}": proxy`;
    const options = props.options ?? {};
    this.name = `egress-proxy-${props.allowlistName}`;
    const replicas = checkInteger(options.replicas ?? 1, `${where}.replicas`, 1, 10);
    this.port = checkInteger(options.port ?? 3128, `${where}.port`, 1024, 65535);
    const resources = checkPodResources(options.resources ?? DEFAULT_RESOURCES, `${where}.resources`);
    this.stateDir = options.stateDir ?? '/run/squid';
    this.dnsNameservers = [...(options.dnsNameservers ?? [])];
    this.extraNoProxy = (options.noProxy ?? []).map((entry, i) => {
      if (typeof entry !== 'string' || !/^[^\s,]+$/.test(entry)) {
        fail(`${where}.noProxy[${i}]: ${JSON.stringify(entry)} must be a host name, ".suffix", IP address or CIDR without spaces or commas, e.g. "git.corp.example"`);
      }
      return entry;
    });
    // renderSquidConf checks paths and addresses; run it once now so bad options throw at once.
    try {
      this.renderConf([]);
    } catch (e) {
      const problems = (e as Error).message.split('\n').slice(1).map((line) => `${where}.${line.trim()}`);
      fail(problems.join('\n'));
    }
    if (this.stateDir === EGRESS_PROXY_CONF_DIR || this.stateDir === '/dev/shm') {
      fail(`${where}.stateDir: "${this.stateDir}" is taken; use a directory of its own, e.g. "/run/squid"`);
    }

    const platform = this.platform;
    const ns = platform.namespace;
    const extra = { 'paddock.dev/egress': props.allowlistName };
    const labels = standardLabels(ns, 'egress', extra);
    this.podSelector = selectorLabels(ns, 'egress', extra);

    kubeObject(this, 'service-account', {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: this.name, namespace: ns, labels },
      automountServiceAccountToken: false,
    });
    kubeObject(this, 'deployment', {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: this.name, namespace: ns, labels },
      spec: {
        replicas,
        // Start the new proxy before stopping the old one: a changed allowlist never drops traffic.
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
        selector: { matchLabels: this.podSelector },
        template: {
          metadata: {
            labels,
            // Squid reads squid.conf once: a changed allowlist rolls the pods.
            annotations: { [ANNOTATION_CONF_HASH]: Lazy.any({ produce: () => createHash('sha256').update(this.conf()).digest('hex') }) },
          },
          spec: {
            serviceAccountName: this.name,
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            securityContext: hardenedPodSecurityContext(EGRESS_PROXY_UID),
            ...(replicas > 1
              ? {
                  topologySpreadConstraints: [
                    { maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: this.podSelector } },
                  ],
                }
              : {}),
            containers: [
              {
                name: 'squid',
                image: checkImageRef(options.image ?? imageRef('egress-proxy', platform.imageOptions), `${where}.image`),
                args: ['-N', '-f', `${EGRESS_PROXY_CONF_DIR}/squid.conf`],
                ports: [{ name: 'proxy', containerPort: this.port, protocol: 'TCP' }],
                readinessProbe: { tcpSocket: { port: 'proxy' }, periodSeconds: 5 },
                livenessProbe: { tcpSocket: { port: 'proxy' }, periodSeconds: 20, failureThreshold: 3 },
                resources: resources as any,
                securityContext: hardenedContainerSecurityContext(EGRESS_PROXY_UID),
                volumeMounts: [
                  { name: 'config', mountPath: EGRESS_PROXY_CONF_DIR, readOnly: true },
                  { name: 'state', mountPath: this.stateDir },
                  { name: 'shm', mountPath: '/dev/shm' },
                ],
              },
            ],
            volumes: [
              { name: 'config', configMap: { name: props.configMapName, items: [{ key: 'squid.conf', path: 'squid.conf' }] } },
              { name: 'state', emptyDir: { sizeLimit: '16Mi' } },
              // Squid keeps its shared-memory segments here; a memory emptyDir, whatever the runtime mounts.
              { name: 'shm', emptyDir: { medium: 'Memory', sizeLimit: '32Mi' } },
            ],
          },
        },
      },
    });
    kubeObject(this, 'service', {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: this.name, namespace: ns, labels },
      spec: { selector: this.podSelector, ports: [{ name: 'proxy', port: this.port, targetPort: 'proxy', protocol: 'TCP' }] },
    });
    if (replicas > 1) {
      kubeObject(this, 'pdb', {
        apiVersion: 'policy/v1',
        kind: 'PodDisruptionBudget',
        metadata: { name: this.name, namespace: ns, labels },
        spec: { minAvailable: 1, selector: { matchLabels: this.podSelector } },
      });
    }
    kubeObject(this, 'network-policy', {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: this.name, namespace: ns, labels },
      spec: {
        podSelector: { matchLabels: this.podSelector },
        policyTypes: ['Ingress', 'Egress'],
        // Only the pods under this allowlist may use this proxy.
        ingress: [{ from: [{ podSelector: { matchLabels: { [props.clientPodLabel]: 'allow' } } }], ports: [{ protocol: 'TCP', port: this.port }] }],
        egress: Lazy.any({ produce: () => this.egressRules() }),
      },
    });
  }

  /** URL agents use as HTTPS_PROXY / HTTP_PROXY. */
  public get url(): string {
    return `http://${this.name}.${this.platform.namespace}.svc:${this.port}`;
  }

  /** The squid.conf for the host rules in effect. */
  public conf(): string {
    return this.renderConf(this.props.hostRules());
  }

  private renderConf(rules: HostRule[]): string {
    const options = this.props.options ?? {};
    return renderSquidConf({
      rules,
      httpPort: this.port,
      stateDir: this.stateDir,
      ...(options.hostsFile !== undefined ? { dnsHostsFile: options.hostsFile } : {}),
      ...(this.dnsNameservers.length ? { dnsNameservers: this.dnsNameservers } : {}),
    });
  }

  /**
   * DNS, then the public internet (private, loopback and link-local ranges
   * excepted) on the ports the host rules name, and nothing else: Squid
   * refuses names and ports it was not given, this stops anything that gets
   * past it.
   */
  private egressRules(): NetworkPolicyEgressRule[] {
    const rules: NetworkPolicyEgressRule[] = [this.platform.dnsEgressRule()];
    if (this.dnsNameservers.length) {
      rules.push({
        to: this.dnsNameservers.map((ip) => ({ ipBlock: { cidr: ip.includes(':') ? `${ip}/128` : `${ip}/32` } })),
        ports: [
          { protocol: 'UDP', port: 53 },
          { protocol: 'TCP', port: 53 },
        ],
      });
    }
    const ports = [...new Set(this.props.hostRules().flatMap((r) => r.ports))].sort((a, b) => a - b);
    // An egress rule without ports would allow every port: no host rule, no internet rule.
    if (ports.length) {
      rules.push({
        to: ['0.0.0.0/0', '::/0'].map((cidr) => ({ ipBlock: { cidr, except: blockedRangesWithin(parseCidr(cidr, 'internet')) } })),
        ports: ports.map((port): NetworkPolicyPort => ({ protocol: 'TCP', port })),
      });
    }
    return rules;
  }
}
