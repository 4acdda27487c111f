import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import type { KubeObject } from '../policy/rules';

/**
 * Raw Kubernetes objects, exactly as written: typed with kubernetes-types
 * (generated from the 1.30 OpenAPI spec) and emitted through cdk8s's
 * ApiObject, which sorts keys and resolves Lazy values. cdk8s-plus L1
 * classes are not used: they re-convert resolved JSON and drop quantities.
 */
export function kubeObject<T extends { apiVersion?: string; kind?: string }>(scope: Construct, id: string, object: T & KubeObject): ApiObject {
  return new ApiObject(scope, id, object as any);
}

