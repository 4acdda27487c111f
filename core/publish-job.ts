/**
 * The publish Job: the template the Publisher construct synthesizes (ConfigMap
 * `paddock-publisher`, key job-template.yaml) and the controller fills per run,
 * with the same slot mechanism as the pools' Job templates.
 */
import type { Job } from 'kubernetes-types/batch/v1';
import { fillSlots } from './job-template';

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
  return fillSlots(template, PUBLISH_TEMPLATE_SLOTS, values) as Job;
}
