import { ApiObject, Chart, JsonPatch } from 'cdk8s';
import { Construct } from 'constructs';
import type { KubeObject } from '../policy/rules';

/** Kinds without a namespace: a Chart's `namespace` must not land on them (the API server refuses it). */
export const CLUSTER_SCOPED_KINDS: ReadonlySet<string> = new Set([
  'Namespace',
  'RuntimeClass',
  'ClusterRole',
  'ClusterRoleBinding',
  'PriorityClass',
  'StorageClass',
  'CustomResourceDefinition',
  'PersistentVolume',
  'ValidatingWebhookConfiguration',
  'MutatingWebhookConfiguration',
]);

/**
 * Raw Kubernetes objects, exactly as written: typed with kubernetes-types
 * (generated from the 1.30 OpenAPI spec) and emitted through cdk8s's
 * ApiObject, which sorts keys and resolves Lazy values. cdk8s-plus L1
 * classes are not used: they re-convert resolved JSON and drop quantities.
 */
export function kubeObject<T extends { apiVersion?: string; kind?: string }>(scope: Construct, id: string, object: T & KubeObject): ApiObject {
  const obj = new ApiObject(scope, id, object as any);
  // ApiObject gives every object the Chart's namespace; cluster-scoped ones must have none.
  if (CLUSTER_SCOPED_KINDS.has(object.kind) && Chart.of(scope).namespace !== undefined) {
    obj.addJsonPatch(JsonPatch.remove('/metadata/namespace'));
  }
  return obj;
}
