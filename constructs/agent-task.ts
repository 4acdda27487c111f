import { Duration, Lazy } from 'cdk8s';
import { Construct } from 'constructs';
import type { ConfigFileSpec, DeliverySpec, GitSourceSpec, SessionRefSpec, TaskSpec } from '../policy/specs';
import { deliveryProblems } from '../core/delivery';
import { branchNameProblem, suggestBranchName } from '../core/git-ref';
import { assertValidSpec, SPEC_API_VERSION } from '../policy/specs';
import { argvPromptProblem } from '../core/command-template';
import { AgentPolicy, AgentPool } from './agent-pool';
import { checkPolicyShape, policyFor } from '../core/agent-policy';
import type { Harness } from '../core/harness';
import { fillJobTemplate } from '../core/job-template';
import { kubeObject } from './kube-object';
import { LABEL_HARNESS, LABEL_POOL, LABEL_SPEC_HASH, LABEL_TASK, standardLabels } from '../core/labels';
import { Platform } from './platform';
import { checkDnsLabel, checkEnvMap, checkInteger, checkNonEmpty, fail, suggestDnsLabel } from '../core/validation';
import { specHashOf, stableJson } from '../core/stable-json';

/** A git repository fetched into the workspace before the agent runs. */
export interface GitSource {
  /** https:// URL of the repository, without credentials (grant a git credential to the pool instead). */
  readonly url: string;
  /** Directory under /workspace. @default - the repository's name from the URL */
  readonly name?: string;
  /** Branch to check out. @default - the remote's default branch (unless `ref` is given) */
  readonly branch?: string;
  /** Commit SHA or tag to check out (instead of a branch). @default - none */
  readonly ref?: string;
  /** Check out only this directory (sparse); the agent works there. @default - the whole repository */
  readonly subPath?: string;
  /** History depth. @default 1 */
  readonly depth?: number;
}

export interface AgentTaskProps {
  /** Name of the task; at most 52 characters (the Job is <name>-<spec hash>). @default - the construct id */
  readonly name?: string;
  /** The pool that runs it: the pool or its name. */
  readonly pool: AgentPool | string;
  /** The harness that runs it: one of the pool's harnesses or its name. @default - the pool's only harness */
  readonly harness?: Harness | string;
  /** @default - the harness's defaultModel */
  readonly model?: string;
  readonly prompt: string;
  /** @default - none: an empty workspace */
  readonly sources?: GitSource[];
  /** The agent's working directory, relative to /workspace. @default - the only source's directory, else /workspace */
  readonly workdir?: string;
  /** Wall-clock limit of the agent. @default Duration.minutes(30) */
  readonly timeout?: Duration;
  /** Environment for the agent (task layer, above pool and harness). @default - none */
  readonly env?: Record<string, string>;
  /** Config files (task layer: harness < pool < task). @default - none */
  readonly config?: ConfigFileSpec[];
  /** Extra attempts after the agent failed or timed out; infrastructure failures are retried regardless. @default 0 */
  readonly retries?: number;
  /**
   * What the agent may do: tools allowed and denied, the shell, a turn limit, text appended
   * to the system prompt. Over the pool's and the harness's policy; a deny always wins. An
   * item the harness's CLI cannot enforce fails at once, naming the CLI and the item.
   * @default - the pool's and the harness's policy
   */
  readonly policy?: AgentPolicy;
  /**
   * The session this task continues: tasks of one session run one at a time in submission
   * order, each with the earlier turns as a transcript and the previous run's change applied
   * (unless `freshWorkspace`). `create` starts the session when it does not exist. In a job
   * pool the controller creates the task's Job once the session's task before it has ended
   * (no Job is synthesized; `createJob: true` is refused).
   * @default - no session
   */
  readonly session?: SessionRefSpec;
  /**
   * Queue order within the pool, 0 to 1000: a higher priority starts first, equal ones
   * oldest first. Retries keep it.
   * @default 500
   */
  readonly priority?: number;
  /**
   * Deliver the agent's change: push it to a branch of the source repository (or
   * a fork) and optionally open a draft pull/merge request, from a publish step
   * that holds the pool's push credential (`credential.grantPushTo(pool, ...)`).
   * @default - the change is recorded with the run (a patch), not pushed
   */
  readonly delivery?: DeliverySpec;
  /**
   * Synthesize the Job that runs the task. Set false to leave dispatch to the controller.
   * @default - true for a pool in "job" mode, unless the task has a session (the controller
   * creates its Job when the session's lock is free); false for a "warm" pool (its workers run the task)
   */
  readonly createJob?: boolean;
}

/**
 * A declared task: the ConfigMap the runner executes (`task-<name>`, key
 * `task.json`) and the Job that runs it, from its pool's template. The Job's
 * name carries a hash of the spec: a changed task runs again, an unchanged
 * one does not. Jobs carry no ttlSecondsAfterFinished on purpose: a GitOps
 * tool would re-create a deleted Job and run the task again.
 */
export class AgentTask extends Construct {
  public readonly name: string;
  public readonly pool: AgentPool;
  public readonly harness: Harness;
  public readonly spec: TaskSpec;
  /** sha256 of the task spec, shortened; part of the Job name. */
  public readonly specHash: string;

  constructor(scope: Construct, id: string, props: AgentTaskProps) {
    super(scope, id);
    const platform = Platform.of(this);
    const where = `AgentTask "${props?.name ?? id}"`;
    this.name = checkDnsLabel(props?.name ?? id, `${where}: name`, 52);
    this.pool = resolvePool(platform, props.pool, where);
    this.harness = resolveHarness(this.pool, props.harness, where);
    const prompt = checkNonEmpty(props.prompt, `${where}: prompt`, '"Fix the failing test in src/"');
    const model = props.model ?? this.harness.spec.defaultModel;
    if (props.model !== undefined) checkNonEmpty(props.model, `${where}: model`, '"gpt-5-codex"');
    if (model === undefined && this.harness.needsModel) {
      fail(`${where}: model is required: harness "${this.harness.name}" has no defaultModel`);
    }
    const tooLong = argvPromptProblem(this.harness.spec.command, prompt, `${where}: prompt`);
    if (tooLong) fail(`${tooLong} (harness "${this.harness.name}" passes it as an argument)`);
    const timeoutSeconds = props.timeout ? props.timeout.toSeconds() : 1800;
    checkInteger(timeoutSeconds, `${where}: timeout`, 1, 86400);
    const sources = (props.sources ?? []).map((s, i) => checkSource(s, `${where}: sources[${i}]`));
    const seen = new Set<string>();
    for (const s of sources) {
      if (seen.has(s.name)) fail(`${where}: two sources share the directory "${s.name}"; give each a distinct name`);
      seen.add(s.name);
    }
    if (props.workdir !== undefined && (props.workdir.startsWith('/') || props.workdir.split('/').includes('..'))) {
      fail(`${where}: workdir "${props.workdir}" must be relative to /workspace and stay inside it, e.g. "repo/docs"`);
    }
    const env = checkEnvMap(props.env, `${where}: env`);
    const policyProblems = checkPolicyShape(props.policy, `${where}: policy`);
    if (!policyProblems.length) policyProblems.push(...policyFor(this.harness.spec, this.pool, props).problems.map((p) => `${where}: policy: ${p}`));
    if (policyProblems.length) fail(policyProblems.join('\n'));

    this.spec = {
      apiVersion: SPEC_API_VERSION,
      kind: 'Task',
      name: this.name,
      pool: this.pool.name,
      harness: this.harness.name,
      ...(model !== undefined ? { model } : {}),
      prompt,
      ...(sources.length ? { sources } : {}),
      ...(props.workdir !== undefined ? { workdir: props.workdir } : {}),
      timeoutSeconds,
      ...(Object.keys(env).length ? { env } : {}),
      ...(props.config?.length ? { config: { files: props.config.map((f) => ({ base: 'home' as const, format: 'text' as const, ...f })) } } : {}),
      ...(props.policy && Object.keys(props.policy).length ? { policy: props.policy } : {}),
      ...(props.retries !== undefined ? { retries: checkInteger(props.retries, `${where}: retries`, 0, 10) } : {}),
      ...(props.session !== undefined ? { session: checkSession(props.session, `${where}: session`) } : {}),
      ...(props.priority !== undefined ? { priority: checkInteger(props.priority, `${where}: priority`, 0, 1000) } : {}),
      ...(props.delivery ? { delivery: checkDelivery(props.delivery, `${where}: delivery`) } : {}),
    };
    assertValidSpec('Task', this.spec, where);
    // Push credentials may be granted after the task: check against the finished pool.
    this.node.addValidation({ validate: () => deliveryProblems(this.spec, this.pool.pushCredentials, `${where}: delivery`) });
    const specJson = stableJson(this.spec);
    this.specHash = specHashOf(this.spec);

    platform._claimName('ConfigMap', this.configMapName, `AgentTask "${this.name}" (${this.node.path})`, 'task names must be unique in a platform: give one task another name');
    const ns = platform.namespace;
    const labels = standardLabels(ns, 'task', {
      [LABEL_POOL]: this.pool.name,
      [LABEL_TASK]: this.name,
      [LABEL_HARNESS]: this.harness.name,
      [LABEL_SPEC_HASH]: this.specHash,
    });
    kubeObject(this, 'spec', {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: this.configMapName, namespace: ns, labels },
      data: { 'task.json': specJson },
    });
    if (props.createJob === true && this.pool.mode === 'warm') {
      fail(`${where}: createJob: pool "${this.pool.name}" is a warm pool; its workers run the task, and a Job would run it a second time. Remove createJob or use a pool with mode: "job"`);
    }
    if (props.createJob === true && props.session !== undefined) {
      fail(
        `${where}: createJob: a task with a session cannot have its Job written at synth time: the Job must wait until the session's task before it has ended, and carry the state that run saved. Remove createJob (the controller creates the Job), or remove session`,
      );
    }
    if (props.createJob ?? (this.pool.mode === 'job' && props.session === undefined)) {
      // Lazy: credentials and allowlists granted to the pool after this task still reach its Job.
      const job = Lazy.any({
        produce: () =>
          fillJobTemplate(
            this.pool.jobTemplate(),
            {
              jobName: this.jobName,
              task: this.name,
              taskConfigMap: this.configMapName,
              harness: this.harness.name,
              harnessConfigMap: platform.harnessConfigMapName(this.harness),
              image: this.harness.image,
              specHash: this.specHash,
            },
            timeoutSeconds,
          ),
      });
      kubeObject(this, 'job', {
        apiVersion: 'batch/v1',
        kind: 'Job',
        metadata: { name: this.jobName, namespace: ns, labels },
        spec: Lazy.any({ produce: () => job.produce().spec }),
      });
    }
  }

  public get configMapName(): string {
    return `task-${this.name}`;
  }

  /** <name>-<spec hash>: at most 63 characters, a valid label value for the pods' job-name label. */
  public get jobName(): string {
    return `${this.name}-${this.specHash}`;
  }
}

/** What can be said at once (the rest needs the pool's push credentials: a validation). */
function checkDelivery(delivery: DeliverySpec, where: string): DeliverySpec {
  for (const [field, name] of [['branch', delivery.branch], ['pullRequest.base', delivery.pullRequest?.base]] as const) {
    if (name === undefined) continue;
    const problem = branchNameProblem(String(name));
    if (problem) fail(`${where}.${field}: "${name}" is not a branch name git accepts: it ${problem}; e.g. "${suggestBranchName(String(name))}"`);
  }
  if (delivery.repository !== undefined) {
    const url = (() => {
      try {
        return new URL(delivery.repository!);
      } catch {
        return undefined;
      }
    })();
    if (!url || url.protocol !== 'https:' || url.username || url.password) fail(`${where}.repository: "${delivery.repository}" must be an https:// URL without credentials, e.g. "https://github.com/me/fork.git"`);
  }
  return delivery;
}

function resolvePool(platform: Platform, pool: AgentPool | string, where: string): AgentPool {
  if (pool instanceof AgentPool) {
    if (pool.platform !== platform) fail(`${where}: pool "${pool.name}" belongs to another platform`);
    return pool;
  }
  if (typeof pool !== 'string' || !pool) fail(`${where}: pool is required: an AgentPool or the name of one`);
  const found = platform._findPool(pool);
  if (!(found instanceof AgentPool)) {
    const known = platform.poolNames;
    fail(
      `${where}: pool "${pool}" does not exist in platform "${platform.namespace}"; ` +
        (known.length ? `declared pools: ${known.join(', ')}. ` : 'no pools are declared yet. ') +
        'Declare the AgentPool before the task, or pass the pool object',
    );
  }
  return found;
}

function resolveHarness(pool: AgentPool, harness: Harness | string | undefined, where: string): Harness {
  const names = pool.harnesses.map((h) => h.name).join(', ');
  if (harness === undefined) {
    if (pool.harnesses.length > 1) fail(`${where}: pool "${pool.name}" runs several harnesses (${names}); name one with harness: "..."`);
    return pool.harnesses[0];
  }
  const name = typeof harness === 'string' ? harness : harness.name;
  const found = pool.harness(name);
  if (!found || (typeof harness !== 'string' && found !== harness && stableJson(found.spec) !== stableJson(harness.spec))) {
    fail(`${where}: harness "${name}" is not one of pool "${pool.name}"'s harnesses (${names}); add it to the pool or pick one of those`);
  }
  return found;
}

function checkSource(source: GitSource, where: string): GitSourceSpec {
  if (!source || typeof source.url !== 'string') fail(`${where}: url is required, e.g. "https://github.com/org/repo.git"`);
  let url: URL;
  try {
    url = new URL(source.url);
  } catch {
    fail(`${where}: url "${source.url}" is not a URL; write e.g. "https://github.com/org/repo.git"`);
  }
  if (url.protocol !== 'https:') {
    fail(`${where}: url "${source.url}" must use https:// (git_https sources); e.g. "https://${url.host}${url.pathname}"`);
  }
  if (url.username || url.password) {
    fail(`${where}: url must not carry credentials; grant a git credential to the pool instead: credential.grantTo(pool, { git: { host: "${url.hostname}", key: "token" } })`);
  }
  if (source.branch !== undefined && source.ref !== undefined) {
    fail(`${where}: give either branch or ref, not both`);
  }
  const repoName = url.pathname.replace(/\/+$/, '').split('/').pop()?.replace(/\.git$/, '') ?? '';
  const name = checkDnsLabel(source.name ?? (suggestDnsLabel(repoName) || 'source'), `${where}: name`);
  const depth = checkInteger(source.depth ?? 1, `${where}: depth`, 1);
  if (source.subPath !== undefined && (!source.subPath || source.subPath.startsWith('/') || source.subPath.split('/').includes('..'))) {
    fail(`${where}: subPath "${source.subPath}" must be a directory inside the repository, e.g. "docs"`);
  }
  return {
    name,
    type: 'git_https',
    url: source.url,
    ...(source.branch !== undefined ? { branch: checkNonEmpty(source.branch, `${where}: branch`, '"main"') } : {}),
    ...(source.ref !== undefined ? { ref: checkNonEmpty(source.ref, `${where}: ref`, '"v1.2.0" or a commit SHA') } : {}),
    depth,
    ...(source.subPath !== undefined ? { subPath: source.subPath } : {}),
  };
}

function checkSession(session: SessionRefSpec, where: string): SessionRefSpec {
  const name = checkDnsLabel(session?.name, `${where}.name`);
  return { name, ...(session.create ? { create: true } : {}), ...(session.freshWorkspace ? { freshWorkspace: true } : {}) };
}
