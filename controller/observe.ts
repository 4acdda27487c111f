/**
 * Between Kubernetes objects and the reconcile function's observed state:
 * read task, pool, harness and run ConfigMaps, Jobs and Pods into plain
 * records; write run records (ConfigMaps with results.jsonl + status.json,
 * size-capped) and task status (labels/annotations). Pure functions.
 */
import { parse as parseYaml } from 'yaml';
import type { Job } from 'kubernetes-types/batch/v1';
import { LABEL_HARNESS, LABEL_PHASE, LABEL_POOL, LABEL_RUN, LABEL_SPEC_HASH, LABEL_TASK, standardLabels } from '../core/labels';
import { HarnessSpec, PoolSpec, TaskSpec, validateSpec } from '../policy/specs';
import type { ObservedHarness, ObservedJob, ObservedPod, ObservedPool, ObservedRun, ObservedTask, PoolMode, RunPatch, RunPhase } from './reconcile';
import { runConfigMapName } from './reconcile';
import type { KubeObject } from './store';
import { specHashOf, stableJson } from '../core/stable-json';
import { type AttemptResult, MAX_RESULT_BYTES, shortenStatus, type SourceChange } from '../core/protocol';
import type { DeliveryStatus } from './publisher';
import { gunzipSync } from 'zlib';

export const ANNOTATION = {
  run: 'paddock.dev/run',
  message: 'paddock.dev/message',
  attempt: 'paddock.dev/attempt',
  agentFailures: 'paddock.dev/agent-failures',
  notBefore: 'paddock.dev/not-before',
  queuedAt: 'paddock.dev/queued-at',
  mode: 'paddock.dev/mode',
  adopted: 'paddock.dev/adopted',
  outcome: 'paddock.dev/outcome',
  startedAt: 'paddock.dev/started-at',
  finishedAt: 'paddock.dev/finished-at',
  truncated: 'paddock.dev/results-truncated',
  /** The run's delivery: pending, pushed, conflict, denied, failed or skipped (delivery.json says more). */
  delivery: 'paddock.dev/delivery',
} as const;

/** binaryData key of a source's patch (gzip) in the run ConfigMap. */
export function patchKey(source: string): string {
  return `patch-${source}.gz`;
}

/** Selectors of what the controller watches (label `app.kubernetes.io/component`). */
export function selectors(namespace: string): Record<'task' | 'pool' | 'harness' | 'run' | 'session' | 'jobs', string> {
  const base = `app.kubernetes.io/name=paddock,app.kubernetes.io/instance=${namespace}`;
  return {
    task: `${base},app.kubernetes.io/component=task`,
    pool: `${base},app.kubernetes.io/component=pool`,
    harness: `${base},app.kubernetes.io/component=harness`,
    run: `${base},app.kubernetes.io/component=run`,
    session: `${base},app.kubernetes.io/component=session`,
    jobs: `${base},app.kubernetes.io/component=task`,
  };
}

export const TRUNCATION_MARKER = 'paddock.truncated';

const ms = (iso: string | undefined): number => (iso ? Date.parse(iso) || 0 : 0);
const num = (v: string | undefined, d: number): number => (v !== undefined && v !== '' && Number.isFinite(Number(v)) ? Number(v) : d);

export function taskFromConfigMap(cm: KubeObject): ObservedTask | undefined {
  const name = cm.metadata.labels?.[LABEL_TASK];
  if (!name || !cm.metadata.name.startsWith('task-')) return undefined;
  const data = (cm.data ?? {}) as Record<string, string>;
  const base = {
    name,
    configMap: cm.metadata.name,
    ...(cm.metadata.uid ? { uid: cm.metadata.uid } : {}),
    createdAt: ms(cm.metadata.annotations?.[ANNOTATION.queuedAt]) || ms(cm.metadata.creationTimestamp),
    shownPhase: cm.metadata.labels?.[LABEL_PHASE],
    shownRun: cm.metadata.annotations?.[ANNOTATION.run],
    shownMessage: cm.metadata.annotations?.[ANNOTATION.message],
  };
  let spec: unknown;
  try {
    spec = JSON.parse(data['task.json'] ?? '');
  } catch (e) {
    return { ...base, problems: [`task.json: not valid JSON (${(e as Error).message})`] };
  }
  const problems = validateSpec('Task', spec);
  if (problems.length) return { ...base, problems };
  const t = spec as TaskSpec;
  if (t.name !== name) return { ...base, problems: [`task.json name "${t.name}" differs from the ConfigMap's ${LABEL_TASK} label "${name}"`] };
  return { ...base, spec: t, specHash: specHashOf(t) };
}

export function poolFromConfigMap(cm: KubeObject): ObservedPool | undefined {
  const data = (cm.data ?? {}) as Record<string, string>;
  if (!data['pool.json']) return undefined;
  let spec: PoolSpec;
  try {
    spec = JSON.parse(data['pool.json']);
  } catch {
    return undefined;
  }
  if (validateSpec('Pool', spec).length) return undefined;
  let jobTemplate: Job | undefined;
  try {
    jobTemplate = data['job-template.yaml'] ? (parseYaml(data['job-template.yaml']) as Job) : undefined;
  } catch {
    jobTemplate = undefined;
  }
  return {
    name: spec.name,
    mode: spec.mode ?? 'job',
    concurrency: spec.concurrency ?? 10,
    capabilities: spec.capabilities,
    harnesses: spec.harnesses,
    ...(jobTemplate ? { jobTemplate } : {}),
  };
}

export function poolSpecOf(cm: KubeObject): PoolSpec | undefined {
  try {
    return JSON.parse(((cm.data ?? {}) as Record<string, string>)['pool.json']) as PoolSpec;
  } catch {
    return undefined;
  }
}

export function harnessSpecOf(cm: KubeObject): HarnessSpec | undefined {
  try {
    const spec = JSON.parse(((cm.data ?? {}) as Record<string, string>)['harness.json']);
    return validateSpec('Harness', spec).length ? undefined : (spec as HarnessSpec);
  } catch {
    return undefined;
  }
}

export function harnessFromConfigMap(cm: KubeObject): ObservedHarness | undefined {
  const spec = harnessSpecOf(cm);
  if (!spec) return undefined;
  return { name: spec.name, configMap: cm.metadata.name, ...(spec.image ? { image: spec.image } : {}) };
}

export function jobFromObject(job: KubeObject): ObservedJob {
  const status = (job.status ?? {}) as { active?: number; succeeded?: number; failed?: number; conditions?: ObservedJob['conditions'] };
  return {
    name: job.metadata.name,
    active: status.active ?? 0,
    succeeded: status.succeeded ?? 0,
    failed: status.failed ?? 0,
    conditions: (status.conditions ?? []).map((c) => ({ type: c.type, status: c.status, ...(c.reason ? { reason: c.reason } : {}), ...(c.message ? { message: c.message } : {}) })),
    deleting: Boolean(job.metadata.deletionTimestamp),
  };
}

export function podFromObject(pod: KubeObject): ObservedPod | undefined {
  const labels = pod.metadata.labels ?? {};
  const job = labels['batch.kubernetes.io/job-name'] ?? labels['job-name'];
  if (!job) return undefined;
  const status = (pod.status ?? {}) as any;
  const cs = (status.containerStatuses ?? []).find((c: any) => c.name === 'runner') ?? (status.containerStatuses ?? [])[0];
  const waiting = cs?.state?.waiting;
  const terminated = cs?.state?.terminated;
  return {
    name: pod.metadata.name,
    job,
    phase: status.phase ?? 'Pending',
    ...(status.reason ? { reason: status.reason } : {}),
    ...((status.conditions ?? []).some((c: any) => c.type === 'DisruptionTarget' && c.status === 'True') ? { disrupted: true } : {}),
    ...(waiting?.reason ? { waiting: { reason: waiting.reason, ...(waiting.message ? { message: waiting.message } : {}) } } : {}),
    ...(terminated
      ? { terminated: { exitCode: terminated.exitCode, ...(terminated.reason ? { reason: terminated.reason } : {}), ...(terminated.message ? { message: terminated.message } : {}) } }
      : {}),
    createdAt: ms(pod.metadata.creationTimestamp),
  };
}

export function runFromConfigMap(cm: KubeObject): ObservedRun | undefined {
  const l = cm.metadata.labels ?? {};
  const a = cm.metadata.annotations ?? {};
  if (!l[LABEL_RUN] || !l[LABEL_TASK]) return undefined;
  const notBefore = ms(a[ANNOTATION.notBefore]);
  return {
    name: l[LABEL_RUN],
    task: l[LABEL_TASK],
    specHash: l[LABEL_SPEC_HASH] ?? '',
    pool: l[LABEL_POOL] ?? '',
    mode: (a[ANNOTATION.mode] as PoolMode) ?? 'job',
    phase: (l[LABEL_PHASE] as RunPhase) ?? 'Queued',
    attempt: num(a[ANNOTATION.attempt], 1),
    agentFailures: num(a[ANNOTATION.agentFailures], 0),
    ...(notBefore ? { notBefore } : {}),
    createdAt: ms(a[ANNOTATION.queuedAt]) || ms(cm.metadata.creationTimestamp),
    ...(a[ANNOTATION.adopted] === 'true' ? { adopted: true } : {}),
  };
}

/** A new run's ConfigMap, owned by the task's ConfigMap (deleting the task removes its runs). */
export function newRunConfigMap(namespace: string, run: ObservedRun, task: { configMap: string; uid?: string; harness?: string }, message?: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: runConfigMapName(run.name),
      namespace,
      labels: standardLabels(namespace, 'run', {
        [LABEL_POOL]: run.pool,
        [LABEL_TASK]: run.task,
        [LABEL_SPEC_HASH]: run.specHash,
        [LABEL_RUN]: run.name,
        [LABEL_PHASE]: run.phase,
        ...(task.harness ? { [LABEL_HARNESS]: task.harness } : {}),
      }),
      annotations: {
        [ANNOTATION.mode]: run.mode,
        [ANNOTATION.attempt]: String(run.attempt),
        [ANNOTATION.agentFailures]: String(run.agentFailures),
        [ANNOTATION.queuedAt]: new Date(run.createdAt).toISOString(),
        ...(run.adopted ? { [ANNOTATION.adopted]: 'true' } : {}),
        ...(message ? { [ANNOTATION.message]: message } : {}),
      },
      ...(task.uid ? { ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: task.configMap, uid: task.uid, blockOwnerDeletion: true }] } : {}),
    },
    data: {},
  };
}

/** The run ConfigMap with a patch applied (labels, annotations, results). */
export function applyRunPatch(cm: KubeObject, patch: RunPatch): KubeObject {
  const next: KubeObject = JSON.parse(JSON.stringify(cm));
  const labels = (next.metadata.labels = { ...(next.metadata.labels ?? {}) });
  const ann = (next.metadata.annotations = { ...(next.metadata.annotations ?? {}) });
  const iso = (t: number) => new Date(t).toISOString();
  if (patch.phase) labels[LABEL_PHASE] = patch.phase;
  if (patch.attempt !== undefined) ann[ANNOTATION.attempt] = String(patch.attempt);
  if (patch.agentFailures !== undefined) ann[ANNOTATION.agentFailures] = String(patch.agentFailures);
  if (patch.notBefore === null) delete ann[ANNOTATION.notBefore];
  else if (patch.notBefore !== undefined) ann[ANNOTATION.notBefore] = iso(patch.notBefore);
  if (patch.mode) ann[ANNOTATION.mode] = patch.mode;
  if (patch.adopted) ann[ANNOTATION.adopted] = 'true';
  if (patch.message !== undefined) ann[ANNOTATION.message] = patch.message.slice(0, 2000);
  if (patch.outcome !== undefined) ann[ANNOTATION.outcome] = patch.outcome;
  if (patch.startedAt !== undefined) ann[ANNOTATION.startedAt] = iso(patch.startedAt);
  if (patch.finishedAt !== undefined) ann[ANNOTATION.finishedAt] = iso(patch.finishedAt);
  if (patch.result) {
    const capped = capResult(patch.result);
    next.data = { 'status.json': capped.statusJson, 'results.jsonl': capped.resultsJsonl };
    if (capped.truncated) ann[ANNOTATION.truncated] = 'true';
    else delete ann[ANNOTATION.truncated];
    // The patches, still gzipped (ConfigMap binaryData is base64 already).
    const patches = patch.result.patches ?? {};
    if (Object.keys(patches).length) next.binaryData = Object.fromEntries(Object.entries(patches).map(([source, b64]) => [patchKey(source), b64]));
    else delete next.binaryData;
  }
  if (patch.delivery) {
    next.data = { ...((next.data ?? {}) as Record<string, string>), 'delivery.json': stableJson(patch.delivery) };
    ann[ANNOTATION.delivery] = patch.delivery.state;
  }
  return next;
}

/**
 * Fit a report into MAX_RESULT_BYTES: whole lines of results.jsonl are kept
 * while they fit, then one marker line `{"paddock.truncated": true, ...}`
 * says how much was cut; status.json gets `"resultsTruncated": true`.
 */
export function capResult(result: AttemptResult, max = MAX_RESULT_BYTES): { statusJson: string; resultsJsonl: string; truncated: boolean } {
  const lines = result.resultsJsonl.split('\n').filter((l) => l.trim() !== '');
  let statusJson = stableJson(shortenStatus(result.status));
  let kept: string[] = [];
  let size = Buffer.byteLength(statusJson);
  let cut = 0;
  for (const line of lines) {
    const n = Buffer.byteLength(line) + 1;
    if (cut === 0 && size + n + 200 <= max) {
      kept.push(line);
      size += n;
    } else {
      cut++;
    }
  }
  const truncated = cut > 0 || Boolean(result.truncated);
  if (truncated) {
    const marker = JSON.stringify({ [TRUNCATION_MARKER]: true, keptResults: kept.length, omittedResults: cut, reason: cut > 0 ? `results over ${max} bytes` : 'the report was cut before it reached the controller' });
    kept = [...kept, marker];
    statusJson = stableJson({ ...shortenStatus(result.status), resultsTruncated: true });
  }
  return { statusJson, resultsJsonl: kept.length ? kept.join('\n') + '\n' : '', truncated };
}

/** The task ConfigMap's status, as label/annotation merge patches. */
export function taskStatusPatch(phase: string, run: string | undefined, message: string | undefined): { labels: Record<string, string>; annotations: Record<string, string | null> } {
  return {
    labels: { [LABEL_PHASE]: phase },
    annotations: { [ANNOTATION.run]: run ?? null, [ANNOTATION.message]: message ? message.slice(0, 2000) : null },
  };
}

/** A task ConfigMap as `POST /v1/tasks` creates it (the same shape AgentTask synthesizes). */
export function taskConfigMap(namespace: string, spec: TaskSpec): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: `task-${spec.name}`,
      namespace,
      labels: standardLabels(namespace, 'task', { [LABEL_POOL]: spec.pool, [LABEL_TASK]: spec.name, [LABEL_HARNESS]: spec.harness, [LABEL_SPEC_HASH]: specHashOf(spec) }),
      annotations: { [ANNOTATION.queuedAt]: new Date().toISOString() },
    },
    data: { 'task.json': stableJson(spec) },
  };
}

/** What a run ConfigMap says about the change and its delivery (for the API's run view). */
export function changesOfRunConfigMap(cm: KubeObject): { changes?: SourceChange[]; delivery?: DeliveryStatus } {
  const data = (cm.data ?? {}) as Record<string, string>;
  const parse = (text: string | undefined): any => {
    try {
      return text ? JSON.parse(text) : undefined;
    } catch {
      return undefined;
    }
  };
  const changes = parse(data['status.json'])?.changes;
  const delivery = parse(data['delivery.json']) ?? (cm.metadata.annotations?.[ANNOTATION.delivery] === 'pending' ? { state: 'pending' } : undefined);
  return { ...(Array.isArray(changes) ? { changes } : {}), ...(delivery ? { delivery } : {}) };
}

/** A source's patch from the run ConfigMap (undefined when none is stored). */
export function patchOfRunConfigMap(cm: KubeObject, source: string): Buffer | undefined {
  const b64 = ((cm.binaryData ?? {}) as Record<string, string>)[patchKey(source)];
  return b64 ? gunzipSync(Buffer.from(b64, 'base64')) : undefined;
}

/** The report stored in a run ConfigMap. */
export function resultOfRunConfigMap(cm: KubeObject): { status?: unknown; results: unknown[]; truncated: boolean } {
  const data = (cm.data ?? {}) as Record<string, string>;
  const results = (data['results.jsonl'] ?? '')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      try {
        return JSON.parse(l);
      } catch {
        return { [TRUNCATION_MARKER]: true, unparsable: l.slice(0, 200) };
      }
    });
  let status: unknown;
  try {
    status = data['status.json'] ? JSON.parse(data['status.json']) : undefined;
  } catch {
    status = undefined;
  }
  return { ...(status !== undefined ? { status } : {}), results, truncated: cm.metadata.annotations?.[ANNOTATION.truncated] === 'true' };
}
