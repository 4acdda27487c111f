import { Construct } from 'constructs';
import type { Job } from 'kubernetes-types/batch/v1';
import { stringify as toYaml } from 'yaml';
import { BLOCKED_RANGES } from '../policy/blocked-ranges';
import { imageRef } from '../core/images';
import { LABEL_TASK, selectorLabels, standardLabels } from '../core/labels';
import { PUBLISH_DEADLINE_SECONDS, PUBLISH_TEMPLATE_SLOTS, PUBLISHER_NAME } from '../core/publish-job';
import { kubeObject } from './kube-object';
import type { Platform } from './platform';
import { hardenedContainerSecurityContext, hardenedPodSecurityContext, scratchVolumes } from './pod-hardening';

const UID = 10001;
/** The mount paths `paddock publish` reads by default (cli/publish.ts PUBLISH_PATHS). */
const PATHS = { task: '/etc/paddock/task', pool: '/etc/paddock/pool', run: '/etc/paddock/run', secrets: '/var/run/paddock/push', work: '/workspace' } as const;

/**
 * The publish step of deliveries, outside every agent's reach: a ServiceAccount
 * with no token, the Job template the controller fills per run (`paddock
 * publish` over the task, pool and run ConfigMaps and just the one push
 * Secret key), and a NetworkPolicy: the publish pods reach DNS and HTTPS
 * (443) on public addresses only, never the cluster's private ranges or the
 * metadata service. Created by the platform on the first `grantPushTo`.
 */
export class Publisher extends Construct {
  constructor(scope: Platform, id: string) {
    super(scope, id);
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
      data: { 'job-template.yaml': toYaml(publishJobTemplate(scope), { sortMapEntries: true }) },
    });
    kubeObject(this, 'egress', {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: PUBLISHER_NAME, namespace: ns, labels },
      spec: {
        podSelector: { matchLabels: selectorLabels(ns, 'publish') },
        policyTypes: ['Ingress', 'Egress'],
        ingress: [],
        egress: [
          scope.dnsEgressRule(),
          { to: [{ ipBlock: { cidr: '0.0.0.0/0', except: BLOCKED_RANGES.filter((r) => !r.includes(':')) } }, { ipBlock: { cidr: '::/0', except: BLOCKED_RANGES.filter((r) => r.includes(':')) } }], ports: [{ protocol: 'TCP', port: 443 }] },
        ],
      },
    });
  }
}

function publishJobTemplate(platform: Platform): Job {
  const ns = platform.namespace;
  const labels = standardLabels(ns, 'publish', { [LABEL_TASK]: PUBLISH_TEMPLATE_SLOTS.task });
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
        metadata: { labels },
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
              env: [{ name: 'HOME', value: '/tmp' }],
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
