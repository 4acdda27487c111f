/**
 * NetworkPolicy semantics over synthesized objects (one namespace), enough to ask
 * "may this pod open a TCP connection to that pod's port?". Conservative where
 * it simplifies: an ipBlock peer and a named port count as matching, so a
 * "not reachable" answer is never too optimistic.
 */
import type { KubeObject } from '../../policy/rules';
import { selects } from '../../policy/rules';

export interface PodRef {
  readonly namespace: string;
  readonly labels: Record<string, string>;
}

type Direction = 'Ingress' | 'Egress';

function policiesOver(objects: KubeObject[], pod: PodRef, direction: Direction): any[] {
  return objects.filter((o) => {
    if (o.kind !== 'NetworkPolicy' || (o.metadata?.namespace ?? 'default') !== pod.namespace) return false;
    const spec = o.spec as any;
    const types: string[] = spec.policyTypes ?? (spec.egress ? ['Ingress', 'Egress'] : ['Ingress']);
    return types.includes(direction) && selects(spec.podSelector, pod.labels);
  });
}

function peerMatches(peer: any, policyNamespace: string, other: PodRef): boolean {
  if (peer.ipBlock) return true;
  const nsLabels = { 'kubernetes.io/metadata.name': other.namespace };
  if (peer.namespaceSelector) {
    if (!selects(peer.namespaceSelector, nsLabels)) return false;
  } else if (other.namespace !== policyNamespace) {
    return false;
  }
  return peer.podSelector ? selects(peer.podSelector, other.labels) : true;
}

function portMatches(ports: any[] | undefined, port: number): boolean {
  if (!ports || ports.length === 0) return true;
  return ports.some((p) => (p.protocol ?? 'TCP') === 'TCP' && (typeof p.port !== 'number' || p.port === port || (p.endPort !== undefined && port >= p.port && port <= p.endPort)));
}

function allowed(objects: KubeObject[], subject: PodRef, other: PodRef, port: number, direction: Direction): boolean {
  const policies = policiesOver(objects, subject, direction);
  if (policies.length === 0) return true; // not isolated in this direction
  const key = direction === 'Ingress' ? 'ingress' : 'egress';
  const peers = direction === 'Ingress' ? 'from' : 'to';
  return policies.some((np) =>
    ((np.spec as any)[key] ?? []).some((rule: any) => portMatches(rule.ports, port) && (!rule[peers] || rule[peers].length === 0 || rule[peers].some((peer: any) => peerMatches(peer, np.metadata.namespace, other)))),
  );
}

/** Whether `from` may connect to `to` on TCP `port`: egress from `from` and ingress to `to` both allow it. */
export function canConnect(objects: KubeObject[], from: PodRef, to: PodRef, port: number): boolean {
  return allowed(objects, from, to, port, 'Egress') && allowed(objects, to, from, port, 'Ingress');
}

/** Whether the policies selecting `to` admit `from` on `port` (ingress only). */
export function admits(objects: KubeObject[], to: PodRef, from: PodRef, port: number): boolean {
  return allowed(objects, to, from, port, 'Ingress');
}

/** Whether the policies selecting `from` let it reach `to` on `port` (egress only). */
export function mayReach(objects: KubeObject[], from: PodRef, to: PodRef, port: number): boolean {
  return allowed(objects, from, to, port, 'Egress');
}

/** A workload's pod (Deployment or Job template). */
export function podOf(o: any): PodRef {
  return { namespace: o.metadata.namespace, labels: o.spec.template.metadata.labels };
}
