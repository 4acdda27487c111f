/**
 * Every object carries the recommended app.kubernetes.io labels plus
 * Paddock's own, so `kubectl get -l paddock.dev/pool=codex` works as
 * operators expect. Selectors use only the stable subset (no version).
 */

export const LABEL_POOL = 'paddock.dev/pool';
export const LABEL_TASK = 'paddock.dev/task';
export const LABEL_HARNESS = 'paddock.dev/harness';
export const LABEL_SPEC_HASH = 'paddock.dev/spec-hash';
/** Marks pods that run agent code; policy requires a default-deny NetworkPolicy over every one. */
export const LABEL_AGENT = 'paddock.dev/agent';
export const CAPABILITY_LABEL_PREFIX = 'capability.paddock.dev/';
export const EGRESS_LABEL_PREFIX = 'egress.paddock.dev/';

/** `run`: a run's result ConfigMap, written by the controller. */
export type Component = 'platform' | 'controller' | 'worker' | 'task' | 'run' | 'session' | 'harness' | 'pool' | 'egress' | 'sandbox' | 'credentials' | 'model-gateway' | 'publish';

/** On session ConfigMaps (`session-<name>`, written by the controller): the session's name. */
export const LABEL_SESSION = 'paddock.dev/session';

/** On run and task ConfigMaps: the run's phase (Queued, Running, Succeeded, Failed, Superseded), set by the controller. */
export const LABEL_PHASE = 'paddock.dev/phase';
/** On run ConfigMaps: the run's name (<task>-<spec hash>, the Job's name in job mode). */
export const LABEL_RUN = 'paddock.dev/run';

/** The labels of everything of one platform (instance: its namespace). */
export function instanceLabels(instance: string): Record<string, string> {
  return { 'app.kubernetes.io/name': 'paddock', 'app.kubernetes.io/instance': instance };
}

/** Labels that select a component's pods; keep them stable across upgrades. */
export function selectorLabels(instance: string, component: Component, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...instanceLabels(instance),
    'app.kubernetes.io/component': component,
    ...extra,
  };
}

export function standardLabels(instance: string, component: Component, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...selectorLabels(instance, component, extra),
    'app.kubernetes.io/part-of': 'paddock',
    'app.kubernetes.io/managed-by': 'paddock',
  };
}

export function capabilityLabel(capability: string): string {
  return `${CAPABILITY_LABEL_PREFIX}${capability}`;
}

/** Where pods mount granted Secrets: <SECRETS_MOUNT>/<secret>/<key> (the controller too, for warm pools' git credentials). */
export const SECRETS_MOUNT = '/var/run/paddock/secrets';

/** On agent pod templates: the Secrets granted with exposeToAgent (comma-separated), the only ones its agent container may reference. */
export const ANNOTATION_AGENT_SECRETS = 'paddock.dev/agent-secrets';
/** Paddock's API group and the resource RBAC rules name for the task API (`tasks`, `tasks/results`, `tasks/sessions`). */
export const PADDOCK_API_GROUP = 'paddock.dev';
export const TASKS_RESOURCE = 'tasks';
/**
 * The ClusterRole (bound per namespace) that reaching the controller through a kubeconfig
 * needs, as `paddock tasks` does: list pods, port-forward (get and create pods/portforward).
 */
export const PORT_FORWARD_ROLE = 'paddock-controller-port-forward';
