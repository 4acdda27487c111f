import { Construct } from 'constructs';
import type { Job } from 'kubernetes-types/batch/v1';
import { stringify as toYaml } from 'yaml';
import { forgeApi } from '../core/delivery';
import type { PushCredentialSpec } from '../policy/specs';
import { EgressAllowlist } from './egress-allowlist';
import { imageRef } from '../core/images';
import { LABEL_TASK, selectorLabels, standardLabels } from '../core/labels';
import { PUBLISH_DEADLINE_SECONDS, PUBLISH_TEMPLATE_SLOTS, PUBLISHER_NAME } from '../core/publish-job';
import { kubeObject } from './kube-object';
import type { Platform } from './platform';
import { hardenedContainerSecurityContext, hardenedPodSecurityContext, scratchVolumes } from './pod-hardening';

const UID = 10001;
/** The mount paths `paddock publish` reads by default (cli/publish.ts PUBLISH_PATHS). */
const PATHS = { task: '/etc/paddock/task', pool: '/etc/paddock/pool', run: '/etc/paddock/run', secrets: '/var/run/paddock/push', work: '/workspace' } as const;

/** How the publish pods' allowlist checks names: Paddock's egress proxy, or Cilium's toFQDNs. */
export type PublishEgressBackend = 'proxy' | 'cilium';

/**
 * The publish step of deliveries, outside every agent's reach: a ServiceAccount
 * with no token, the Job template the controller fills per run (`paddock
 * publish` over the task, pool and run ConfigMaps and just the one push
 * Secret key), and an egress allowlist of its own, `publish`: DNS plus the
 * push credentials' git hosts and their forges' API hosts, nothing else (no
 * other host, no cluster address; under `proxy` the Job's git and API calls go
 * through the allowlist's proxy). Created by the platform on the first
 * `grantPushTo`; each push grant adds its hosts.
 */
export class Publisher extends Construct {
  /** What the publish pods may reach. */
  public readonly allowlist: EgressAllowlist;
  private readonly allowed = new Set<string>();

  constructor(scope: Platform, id: string, props: { readonly backend?: PublishEgressBackend } = {}) {
    super(scope, id);
    // Platform checked the backend.
    this.allowlist = new EgressAllowlist(this, 'egress', { name: PUBLISH_ALLOWLIST, backend: props.backend ?? 'proxy' });
    const ns = scope.namespace;
    const labels = standardLabels(ns, 'publish');
    kubeObject(this, 'service-account', {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: PUBLISHER_NAME, namespace: ns, labels },
      automountServiceAccountToken: false,
    });
    kubeObject(this, 'template', {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: PUBLISHER_NAME, namespace: ns, labels },
      data: { 'job-template.yaml': toYaml(publishJobTemplate(scope, this.allowlist), { sortMapEntries: true }) },
    });
    // No ingress; egress only what the allowlist's own policies add (policies are a union: none here).
    kubeObject(this, 'isolation', {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: PUBLISHER_NAME, namespace: ns, labels },
      spec: { podSelector: { matchLabels: selectorLabels(ns, 'publish') }, policyTypes: ['Ingress', 'Egress'], ingress: [], egress: [] },
    });
  }

  /** @internal a push grant's git host and its forge's API host (on their ports) become reachable */
  public _allowPush(grant: PushCredentialSpec): void {
    for (const origin of [`https://${grant.host}`, forgeApi(grant)]) {
      const url = new URL(origin);
      const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
      const key = `${url.hostname}:${port}`;
      if (this.allowed.has(key)) continue;
      this.allowed.add(key);
      this.allowlist.addRule({ host: url.hostname, match: 'exact', ports: [port] });
    }
  }
}

/** The publish pods' allowlist: objects egress-publish (and egress-proxy-publish). */
export const PUBLISH_ALLOWLIST = 'publish';

function publishJobTemplate(platform: Platform, allowlist: EgressAllowlist): Job {
  const ns = platform.namespace;
  const labels = standardLabels(ns, 'publish', { [LABEL_TASK]: PUBLISH_TEMPLATE_SLOTS.task });
  const podLabels = { ...labels, [allowlist.podLabel]: 'allow' };
  const proxy = allowlist.proxyUrl;
  const proxyEnv = proxy
    ? [
        ...['HTTPS_PROXY', 'HTTP_PROXY', 'https_proxy', 'http_proxy'].map((name) => ({ name, value: proxy })),
        ...['NO_PROXY', 'no_proxy'].map((name) => ({ name, value: allowlist.noProxy.join(',') })),
      ]
    : [];
  const scratch = scratchVolumes([
    { name: 'tmp', mountPath: '/tmp', sizeLimit: '256Mi' },
    { name: 'work', mountPath: PATHS.work, sizeLimit: '4Gi' },
  ]);
  const cm = (name: string, configMap: string, mountPath: string) => ({ volume: { name, configMap: { name: configMap } }, mount: { name, mountPath, readOnly: true } });
  const volumes = [
    cm('task', PUBLISH_TEMPLATE_SLOTS.taskConfigMap, PATHS.task),
    cm('pool', PUBLISH_TEMPLATE_SLOTS.poolConfigMap, PATHS.pool),
    cm('run', PUBLISH_TEMPLATE_SLOTS.runConfigMap, PATHS.run),
    {
      volume: { name: 'push', secret: { secretName: PUBLISH_TEMPLATE_SLOTS.pushSecret, items: [{ key: PUBLISH_TEMPLATE_SLOTS.pushKey, path: PUBLISH_TEMPLATE_SLOTS.pushKey }], defaultMode: 0o440 } },
      mount: { name: 'push', mountPath: `${PATHS.secrets}/${PUBLISH_TEMPLATE_SLOTS.pushSecret}`, readOnly: true },
    },
  ];
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: PUBLISH_TEMPLATE_SLOTS.jobName, namespace: ns, labels },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: PUBLISH_DEADLINE_SECONDS,
      template: {
        metadata: { labels: podLabels },
        spec: {
          serviceAccountName: PUBLISHER_NAME,
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          restartPolicy: 'Never',
          securityContext: hardenedPodSecurityContext(UID),
          containers: [
            {
              name: 'publish',
              image: imageRef('runner', platform.imageOptions),
              args: ['publish'],
              env: [{ name: 'HOME', value: '/tmp' }, ...proxyEnv],
              resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '512Mi' } },
              securityContext: hardenedContainerSecurityContext(UID),
              volumeMounts: [...scratch.mounts, ...volumes.map((v) => v.mount)],
            },
          ],
          volumes: [...scratch.volumes, ...volumes.map((v) => v.volume)],
        },
      },
    },
  };
}
