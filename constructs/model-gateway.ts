import { Lazy } from 'cdk8s';
import { Construct } from 'constructs';
import type { NetworkPolicyEgressRule } from 'kubernetes-types/networking/v1';
import { imageRef } from '../core/images';
import { LABEL_AGENT, SECRETS_MOUNT, selectorLabels, standardLabels } from '../core/labels';
import { GATEWAY_AUDIENCE, MODEL_PROVIDERS } from '../core/model-providers';
import { stableJson } from '../core/stable-json';
import { BLOCKED_RANGES } from '../policy/blocked-ranges';
import { kubeObject } from './kube-object';
import { addSecretKeys, hardenedContainerSecurityContext, hardenedPodSecurityContext, scratchVolumes, secretVolumes } from './pod-hardening';
import type { Platform } from './platform';

const NAME = 'paddock-model-gateway';
const PORT = 8080;
const UID = 10001;

/** A pool's model keys held by the gateway: env name → Secret key. */
export interface GatewayGrant {
  readonly pool: string;
  /** The pool's ServiceAccount, which its agent pods' projected tokens authenticate as. */
  readonly serviceAccount: string;
  readonly secretName: string;
  readonly env: ReadonlyArray<{ readonly name: string; readonly key: string }>;
}

/**
 * The model gateway (`paddock gateway`): holds the pools' model keys in the platform
 * namespace and puts them on agent pods' provider calls, so no agent pod holds one.
 * Callers authenticate with their pod's projected ServiceAccount token (audience
 * "paddock-model-gateway"), checked by TokenReview; each pool reaches only its own
 * providers. Created by the Platform when a pool is granted a model key.
 */
export class ModelGateway extends Construct {
  public readonly serviceName = NAME;
  public readonly port = PORT;
  private readonly grants: GatewayGrant[] = [];

  constructor(scope: Platform, id: string, opts: { apiServer: NetworkPolicyEgressRule }) {
    super(scope, id);
    const ns = scope.namespace;
    const labels = standardLabels(ns, 'model-gateway');
    const selector = selectorLabels(ns, 'model-gateway');
    kubeObject(this, 'service-account', {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: NAME, namespace: ns, labels },
      automountServiceAccountToken: false,
    });
    // TokenReview (and SubjectAccessReview) only: the built-in delegated-authentication role.
    kubeObject(this, 'auth-delegator', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: `${NAME}-${ns}`, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' },
      subjects: [{ kind: 'ServiceAccount', name: NAME, namespace: ns }],
    });
    kubeObject(this, 'config', {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: NAME, namespace: ns, labels },
      data: Lazy.any({ produce: () => ({ 'gateway.json': stableJson(this.config()) }) }),
    });
    const scratch = scratchVolumes([{ name: 'tmp', mountPath: '/tmp', sizeLimit: '16Mi' }]);
    kubeObject(this, 'deployment', {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: NAME, namespace: ns, labels },
      spec: {
        replicas: 2,
        selector: { matchLabels: selector },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: NAME,
            // Its token is for the TokenReviews only; no agent code runs here.
            automountServiceAccountToken: true,
            enableServiceLinks: false,
            securityContext: hardenedPodSecurityContext(UID),
            // Two replicas on two nodes where there are two: every model call goes through here.
            affinity: {
              podAntiAffinity: {
                preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: selector } } }],
              },
            },
            containers: [
              {
                name: 'gateway',
                image: imageRef('runner', scope.imageOptions),
                args: ['gateway', '--config', '/etc/paddock/gateway/gateway.json', '--port', String(PORT)],
                ports: [{ name: 'http', containerPort: PORT, protocol: 'TCP' }],
                readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 10 },
                livenessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 20, failureThreshold: 3 },
                resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '256Mi' } },
                securityContext: hardenedContainerSecurityContext(UID),
                volumeMounts: Lazy.any({
                  produce: () => [...scratch.mounts, { name: 'config', mountPath: '/etc/paddock/gateway', readOnly: true }, ...this.keyVolumes().map((v) => v.mount)],
                }),
              },
            ],
            volumes: Lazy.any({ produce: () => [...scratch.volumes, { name: 'config', configMap: { name: NAME } }, ...this.keyVolumes().map((v) => v.volume)] }),
          },
        },
      },
    });
    kubeObject(this, 'service', {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: NAME, namespace: ns, labels },
      spec: { selector, ports: [{ name: 'http', port: PORT, targetPort: 'http', protocol: 'TCP' }] },
    });
    kubeObject(this, 'pdb', {
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: { name: NAME, namespace: ns, labels },
      spec: { minAvailable: 1, selector: { matchLabels: selector } },
    });
    kubeObject(this, 'network-policy', {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: NAME, namespace: ns, labels },
      spec: {
        podSelector: { matchLabels: selector },
        policyTypes: ['Ingress', 'Egress'],
        ingress: [{ from: [{ podSelector: { matchLabels: { [LABEL_AGENT]: 'true' } } }], ports: [{ protocol: 'TCP', port: PORT }] }],
        // The providers (public addresses on 443), the API server (TokenReview) and DNS.
        egress: [
          scope.dnsEgressRule(),
          opts.apiServer,
          { to: [{ ipBlock: { cidr: '0.0.0.0/0', except: BLOCKED_RANGES.filter((r) => !r.includes(':')) } }], ports: [{ protocol: 'TCP', port: 443 }] },
        ],
      },
    });
    // Agent pods reach the gateway (and nothing else through this policy).
    kubeObject(this, 'clients', {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: `${NAME}-clients`, namespace: ns, labels },
      spec: {
        podSelector: { matchLabels: { [LABEL_AGENT]: 'true' } },
        policyTypes: ['Egress'],
        egress: [{ to: [{ podSelector: { matchLabels: selector } }], ports: [{ protocol: 'TCP', port: PORT }] }],
      },
    });
  }

  /** In-cluster base URL; a pool's routes are <url>/<pool>/<provider>/... */
  public get url(): string {
    return `http://${NAME}.${(this.node.scope as Platform).namespace}.svc:${PORT}`;
  }

  /** @internal called by AgentPool for each model key it is granted */
  public _addGrant(grant: GatewayGrant): void {
    this.grants.push(grant);
  }

  private keyVolumes() {
    const keys = new Map<string, Set<string>>();
    for (const g of this.grants) addSecretKeys(keys, g.secretName, g.env.map((e) => e.key));
    return secretVolumes(keys, SECRETS_MOUNT);
  }

  /** gateway.json: per pool, its callers and its providers (controller/model-gateway.ts reads it). */
  private config(): unknown {
    const pools: Record<string, { serviceAccount: string; providers: Record<string, unknown> }> = {};
    for (const g of [...this.grants].sort((a, b) => a.pool.localeCompare(b.pool))) {
      const routes = (pools[g.pool] ??= { serviceAccount: g.serviceAccount, providers: {} });
      for (const e of g.env) {
        const p = MODEL_PROVIDERS[e.name];
        routes.providers[p.name] = { upstream: p.upstream, header: p.header, value: p.value, keyFile: `${SECRETS_MOUNT}/${g.secretName}/${e.key}` };
      }
    }
    return { audience: GATEWAY_AUDIENCE, pools };
  }
}
