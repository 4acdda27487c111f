/**
 * Per-task agent policy: which tools the model is offered, whether it has a shell, how
 * many turns it gets and what is appended to its system prompt. Layers harness < pool <
 * task merge here (the task wins, a deny always wins), and the harness's policyMapping
 * turns the result into argv elements and a config layer its CLI obeys. An item the CLI
 * cannot enforce is a problem, never silently dropped: the construct, the controller's
 * task API and the runner refuse it with the same message.
 */
import * as TOML from 'smol-toml';
import type { AgentPolicySpec, ConfigFileSpec, HarnessSpec, PolicyItem, PolicyStepSpec } from '../policy/specs';

export const POLICY_ITEMS: readonly PolicyItem[] = ['allowedTools', 'deniedTools', 'shell', 'maxTurns', 'appendSystemPrompt'];

const nearest = <T>(layers: readonly (AgentPolicySpec | undefined)[], pick: (p: AgentPolicySpec) => T | undefined): T | undefined =>
  layers.reduce<T | undefined>((acc, p) => (p && pick(p) !== undefined ? pick(p) : acc), undefined);

/** Merge policies, lowest layer first (harness, pool, task). */
export function mergePolicies(layers: readonly (AgentPolicySpec | undefined)[]): AgentPolicySpec {
  const denied = [...new Set(layers.flatMap((p) => p?.deniedTools ?? []))];
  const allowed = nearest(layers, (p) => p.allowedTools);
  const shell = layers.some((p) => p?.shell === false) ? false : nearest(layers, (p) => p.shell);
  const maxTurns = nearest(layers, (p) => p.maxTurns);
  const appendSystemPrompt = nearest(layers, (p) => p.appendSystemPrompt);
  return {
    ...(allowed !== undefined ? { allowedTools: allowed.filter((t) => !denied.includes(t)) } : {}),
    ...(denied.length ? { deniedTools: denied } : {}),
    ...(shell !== undefined ? { shell } : {}),
    ...(maxTurns !== undefined ? { maxTurns } : {}),
    ...(appendSystemPrompt !== undefined ? { appendSystemPrompt } : {}),
  };
}

export interface PolicyPlan {
  /** Inserted into the argv before the prompt's elements (see insertPolicyArgs). */
  readonly argv: string[];
  /** The policy config layer, written over the harness, pool and task layers. */
  readonly files: ConfigFileSpec[];
  /** Keys of those files the policy sets whole (lower layers' values there are dropped). */
  readonly replaceKeys: Array<{ readonly base: 'home' | 'workdir'; readonly path: string; readonly key: string[] }>;
  /** Items the CLI cannot enforce, each naming the CLI and the item. */
  readonly problems: string[];
}

type ItemValue = string | number | boolean | string[];

/** What a merged policy means for this harness's CLI. */
export function planPolicy(harness: HarnessSpec, policy: AgentPolicySpec): PolicyPlan {
  const mapping = harness.policyMapping ?? {};
  const cli = harness.command[0];
  const problems: string[] = [];
  const argv: string[] = [];
  const configs = new Map<string, { spec: NonNullable<PolicyStepSpec['config']>; value: Record<string, unknown> }>();
  const texts: ConfigFileSpec[] = [];
  const replaceKeys: PolicyPlan['replaceKeys'] = [];
  const stepsOf = (item: PolicyItem, shown: string): PolicyStepSpec[] => {
    const enforcement = mapping[item];
    const refuse = (why: string) =>
      problems.push(`harness "${harness.name}" (${cli}) cannot enforce policy ${shown}: ${why}; leave ${item} out of the task's, pool's and harness's policy, or run the task with a harness whose CLI can`);
    if (enforcement === undefined) refuse('its policyMapping has no entry for it');
    else if ('unsupported' in enforcement) refuse(enforcement.unsupported);
    else return enforcement;
    return [];
  };
  const apply = (step: PolicyStepSpec, value: ItemValue): void => {
    if (step.argv) argv.push(...renderArgs(step.argv, value));
    if (step.file) texts.push({ path: step.file.path, base: step.file.base ?? 'home', format: 'text', content: String(value) });
    if (step.config) {
      const c = step.config;
      const key = `${c.base ?? 'home'}\0${c.path}`;
      const entry = configs.get(key) ?? { spec: c, value: {} };
      const v = c.value !== undefined ? c.value : c.each !== undefined ? { ...c.over, ...Object.fromEntries((value as string[]).map((t) => [t, c.each])) } : value;
      setKey(entry.value, c.key, v);
      configs.set(key, entry);
      if (c.replace) replaceKeys.push({ base: c.base ?? 'home', path: c.path, key: [...c.key] });
    }
  };

  let denied = [...(policy.deniedTools ?? [])];
  const shellSteps = policy.shell === false ? stepsOf('shell', 'shell: false') : [];
  for (const step of shellSteps) if (step.denyTools) denied = [...new Set([...denied, ...step.denyTools])];
  const allowed = policy.allowedTools?.filter((t) => !denied.includes(t));
  if (allowed !== undefined) stepsOf('allowedTools', `allowedTools ${JSON.stringify(allowed)}`).forEach((s) => apply(s, allowed));
  if (denied.length) stepsOf('deniedTools', `deniedTools ${JSON.stringify(policy.deniedTools ?? denied)}`).forEach((s) => apply(s, denied));
  shellSteps.filter((s) => !s.denyTools).forEach((s) => apply(s, false));
  if (policy.maxTurns !== undefined) stepsOf('maxTurns', `maxTurns ${policy.maxTurns}`).forEach((s) => apply(s, policy.maxTurns!));
  if (policy.appendSystemPrompt !== undefined) stepsOf('appendSystemPrompt', 'appendSystemPrompt').forEach((s) => apply(s, policy.appendSystemPrompt!));

  const files: ConfigFileSpec[] = [...configs.values()].map(({ spec, value }) => ({
    path: spec.path,
    base: spec.base ?? 'home',
    format: spec.format,
    content: spec.format === 'toml' ? TOML.stringify(value).replace(/\n*$/, '\n') : `${JSON.stringify(value, null, 2)}\n`,
  }));
  return { argv, files: [...files, ...texts], replaceKeys, problems };
}

/** The merged policy of harness, pool and task, and what it means for the harness's CLI. */
export function policyFor(harness: HarnessSpec, pool: { readonly policy?: AgentPolicySpec } | undefined, task: { readonly policy?: AgentPolicySpec }): PolicyPlan & { readonly policy: AgentPolicySpec } {
  const policy = mergePolicies([harness.policy, pool?.policy, task.policy]);
  return { policy, ...planPolicy(harness, policy) };
}

/**
 * Insert the policy's argv elements into a rendered command, before the prompt's
 * elements (an element holding {prompt} or {prompt_file}, or the `--` right before it),
 * else at the end. `template` is the unrendered command (one element per rendered one).
 */
export function insertPolicyArgs(template: readonly string[], rendered: readonly string[], args: readonly string[]): string[] {
  if (!args.length) return [...rendered];
  let at = template.findIndex((a) => a.includes('{prompt}') || a.includes('{prompt_file}'));
  if (at < 0) at = template.length;
  else if (at > 0 && template[at - 1] === '--') at -= 1;
  return [...rendered.slice(0, at), ...args, ...rendered.slice(at)];
}

function renderArgs(template: readonly string[], value: ItemValue): string[] {
  const list = Array.isArray(value) ? value : [String(value)];
  return template.flatMap((a) => (a === '{items}' ? list : [a.replace(/\{(list|value)\}/g, (_m, name: string) => (name === 'list' ? list.join(',') : String(value)))]));
}

function setKey(target: Record<string, unknown>, key: readonly string[], value: unknown): void {
  let at = target;
  for (const k of key.slice(0, -1)) {
    if (typeof at[k] !== 'object' || at[k] === null) at[k] = {};
    at = at[k] as Record<string, unknown>;
  }
  const last = key[key.length - 1];
  const old = at[last];
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  at[last] = isObj(old) && isObj(value) ? { ...old, ...value } : value;
}

/** Shape problems of a policy given to a construct, each saying what to write instead. */
export function checkPolicyShape(policy: AgentPolicySpec | undefined, field: string): string[] {
  if (policy === undefined) return [];
  if (typeof policy !== 'object' || policy === null || Array.isArray(policy)) return [`${field}: must be an object such as { deniedTools: ["WebFetch"], shell: false, maxTurns: 20 }`];
  const problems: string[] = [];
  const unknown = Object.keys(policy).filter((k) => !POLICY_ITEMS.includes(k as PolicyItem));
  if (unknown.length) problems.push(`${field}: unknown item${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}; the items are ${POLICY_ITEMS.join(', ')}`);
  for (const item of ['allowedTools', 'deniedTools'] as const) {
    const list = policy[item];
    if (list === undefined) continue;
    if (!Array.isArray(list)) {
      problems.push(`${field}.${item}: must be a list of tool names, e.g. ["Read", "Edit"]`);
      continue;
    }
    list.forEach((t, i) => {
      if (typeof t !== 'string' || !/^[^-,\n][^,\n]*$/.test(t) || t.length > 200) {
        problems.push(`${field}.${item}[${i}]: ${JSON.stringify(t)} is not a tool name; write the name as the CLI spells it (e.g. "Bash", "run_shell_command"), without commas and not starting with "-"`);
      }
    });
  }
  if (policy.shell !== undefined && typeof policy.shell !== 'boolean') problems.push(`${field}.shell: must be true or false, got ${JSON.stringify(policy.shell)}`);
  if (policy.maxTurns !== undefined && (!Number.isInteger(policy.maxTurns) || policy.maxTurns < 1 || policy.maxTurns > 1000)) {
    problems.push(`${field}.maxTurns: must be an integer from 1 to 1000, got ${JSON.stringify(policy.maxTurns)}`);
  }
  if (policy.appendSystemPrompt !== undefined && (typeof policy.appendSystemPrompt !== 'string' || !policy.appendSystemPrompt.trim() || policy.appendSystemPrompt.length > 65536)) {
    problems.push(`${field}.appendSystemPrompt: must be non-empty text of at most 65536 characters; leave it out for the CLI's own system prompt`);
  }
  return problems;
}
