/**
 * The publish Job: the template the Publisher construct synthesizes (ConfigMap
 * `paddock-publisher`, key job-template.yaml) and the controller fills per run,
 * with the same slot mechanism as the pools' Job templates.
 */
import type { Job } from 'kubernetes-types/batch/v1';

export const PUBLISH_TEMPLATE_SLOTS = {
  jobName: '${JOB_NAME}',
  task: '${TASK_NAME}',
  taskConfigMap: '${TASK_CONFIGMAP}',
  poolConfigMap: '${POOL_CONFIGMAP}',
  runConfigMap: '${RUN_CONFIGMAP}',
  pushSecret: '${PUSH_SECRET}',
  pushKey: '${PUSH_KEY}',
} as const;

export type PublishTemplateValues = { readonly [K in keyof typeof PUBLISH_TEMPLATE_SLOTS]: string };

export const PUBLISHER_NAME = 'paddock-publisher';
/** A publish Job may take this long (clone, push, API calls). */
export const PUBLISH_DEADLINE_SECONDS = 900;

/** `publish-<run>`, shortened to fit a label value. */
export function publishJobName(run: string): string {
  return `publish-${run}`.slice(0, 63).replace(/-+$/, '');
}

export function fillPublishTemplate(template: Job, values: PublishTemplateValues): Job {
  const fill = (v: unknown): unknown => {
    if (typeof v === 'string') return Object.entries(PUBLISH_TEMPLATE_SLOTS).reduce((s, [k, token]) => s.split(token).join(values[k as keyof PublishTemplateValues]), v);
    if (Array.isArray(v)) return v.map(fill);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [fill(k), fill(x)]));
    return v;
  };
  return fill(template) as Job;
}
