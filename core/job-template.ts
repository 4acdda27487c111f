/**
 * A pool's Job template: the Job that runs one task in the pool's sandbox,
 * with slots for what differs per task. AgentTask fills it at synth time and
 * the controller fills the very same template (from the pool's ConfigMap) at
 * run time, so both paths produce the same Job.
 */
import type { Job } from 'kubernetes-types/batch/v1';

export const JOB_TEMPLATE_SLOTS = {
  jobName: '${JOB_NAME}',
  task: '${TASK_NAME}',
  taskConfigMap: '${TASK_CONFIGMAP}',
  harness: '${HARNESS_NAME}',
  harnessConfigMap: '${HARNESS_CONFIGMAP}',
  image: '${IMAGE}',
  specHash: '${SPEC_HASH}',
} as const;

export type JobTemplateValues = { readonly [K in keyof typeof JOB_TEMPLATE_SLOTS]: string };

/** Seconds the runner gets past the task timeout to stop the agent and write its artifacts. */
export const JOB_DEADLINE_GRACE_SECONDS = 120;

/** Fill every slot; `timeoutSeconds` bounds the Job as a whole. */
export function fillJobTemplate(template: Job, values: JobTemplateValues, timeoutSeconds: number): Job {
  const filled = fillSlots(template, JOB_TEMPLATE_SLOTS, values) as Job;
  return { ...filled, spec: { ...filled.spec!, activeDeadlineSeconds: timeoutSeconds + JOB_DEADLINE_GRACE_SECONDS } };
}

/** Replace every slot token (e.g. `${JOB_NAME}`) in keys and values, deeply. */
export function fillSlots<S extends Readonly<Record<string, string>>>(value: unknown, slots: S, values: { readonly [K in keyof S]: string }): unknown {
  if (typeof value === 'string') {
    let out = value;
    for (const [slot, token] of Object.entries(slots)) out = out.split(token).join(values[slot as keyof S]);
    return out;
  }
  if (Array.isArray(value)) return value.map((v) => fillSlots(v, slots, values));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [fillSlots(k, slots, values), fillSlots(v, slots, values)]));
  }
  return value;
}
