/**
 * In the cluster, the publish step is a Job per delivery (core/publish-job.ts,
 * synthesized by the Publisher construct): the controller fills the template,
 * creates the Job, and waits for its pod's termination message, which holds
 * the delivery status `paddock publish` wrote. The controller never mounts or
 * reads the push Secret; the Job does, and no agent code runs in it.
 */
import { parse as parseYaml } from 'yaml';
import type { Job } from 'kubernetes-types/batch/v1';
import { fillPublishTemplate, PUBLISH_DEADLINE_SECONDS, PUBLISHER_NAME, publishJobName } from '../core/publish-job';
import type { Deliverer } from './controller';
import type { DeliveryStatus } from './publisher';
import { podFromObject } from './observe';
import { runConfigMapName } from './reconcile';
import { ClusterStore, KubeObject, StoreError } from './store';

export function jobDeliverer(store: ClusterStore, opts: { readonly timeoutMs?: number; readonly log?: (line: string) => void } = {}): Deliverer {
  return async (req) => {
    const where = { repository: req.delivery.repository, branch: req.delivery.branch, base: req.base };
    const fail = (reason: string): DeliveryStatus => ({ ...where, state: 'failed', reason, finishedAt: new Date().toISOString() });
    const cm = await store.get('ConfigMap', PUBLISHER_NAME);
    const text = ((cm?.data ?? {}) as Record<string, string>)['job-template.yaml'];
    if (!text) return fail(`no ConfigMap ${PUBLISHER_NAME} with job-template.yaml: grant a push credential (credential.grantPushTo(pool, ...)) and deploy the synthesized platform again`);
    const name = publishJobName(req.run);
    const job = fillPublishTemplate(parseYaml(text) as Job, {
      jobName: name,
      task: req.task.name,
      taskConfigMap: `task-${req.task.name}`,
      poolConfigMap: `pool-${req.task.pool}`,
      runConfigMap: runConfigMapName(req.run),
      pushSecret: req.delivery.credential.secret,
      pushKey: req.delivery.credential.key,
    });
    const runCm = await store.get('ConfigMap', runConfigMapName(req.run));
    const obj = JSON.parse(JSON.stringify(job)) as KubeObject;
    // Removing the run removes its publish Job.
    if (runCm?.metadata.uid) obj.metadata.ownerReferences = [{ apiVersion: 'v1', kind: 'ConfigMap', name: runCm.metadata.name, uid: runCm.metadata.uid, blockOwnerDeletion: true }];
    try {
      await store.create(obj);
      opts.log?.(`run ${req.run}: publish Job ${name} created`);
    } catch (err) {
      // Created before (a controller restart): wait for it.
      if (!(err instanceof StoreError && err.code === 409)) throw err;
    }
    const timeoutMs = opts.timeoutMs ?? (PUBLISH_DEADLINE_SECONDS + 120) * 1000;
    return new Promise<DeliveryStatus>((resolve) => {
      let stop: (() => void) | undefined;
      let done = false;
      const finish = (s: DeliveryStatus) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        stop?.();
        resolve(s);
      };
      const timer = setTimeout(() => finish(fail(`publish Job ${name} did not finish within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
      void store
        .watch('Pod', `batch.kubernetes.io/job-name=${name}`, (_event, pod) => {
          const term = podFromObject(pod)?.terminated;
          if (!term) return;
          try {
            const status = JSON.parse(term.message ?? '') as DeliveryStatus;
            if (typeof status.state === 'string') return finish(status);
          } catch {
            // no status: the publish step crashed
          }
          finish(fail(`publish Job ${name} ended with exit code ${term.exitCode}${term.reason ? ` (${term.reason})` : ''} and no delivery status`));
        })
        .then((s) => (done ? s() : (stop = s)));
    });
  };
}
