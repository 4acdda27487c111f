/**
 * The rules of a task's `delivery` that a JSON Schema cannot say, shared by the
 * AgentTask construct (synth), the controller's task API (submit) and the
 * publisher: the branch names git accepts, the push credential for the target
 * host, the forge's title limit. Each problem names its field.
 */
import type { DeliverySpec, Forge, PushCredentialSpec, TaskSpec } from '../policy/specs';
import { branchNameProblem, suggestBranchName } from './git-ref';

/** Longest pull request title each forge accepts. */
export const TITLE_LIMITS: Readonly<Record<Forge, number>> = { github: 256, gitlab: 255 };

/** What a delivery resolves to once the task's source and the pool's credentials are known. */
export interface ResolvedDelivery {
  readonly source: string;
  /** The repository the source was fetched from. */
  readonly sourceUrl: string;
  /** Where the branch is pushed (the source or a fork). */
  readonly repository: string;
  readonly branch: string;
  readonly commitMessage: string;
  readonly author: { readonly name: string; readonly email: string };
  readonly credential: PushCredentialSpec;
  readonly forge: Forge;
  readonly pullRequest?: { readonly title: string; readonly body: string; readonly base?: string; readonly draft: boolean; readonly api: string };
}

export const DEFAULT_AUTHOR = { name: 'Paddock', email: 'paddock@users.noreply.paddock.dev' } as const;

/** host[:port] of an http(s) URL. */
export function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '';
  }
}

/** The forge's REST API base URL for a credential. */
export function forgeApi(cred: PushCredentialSpec): string {
  if (cred.api) return cred.api.replace(/\/+$/, '');
  if ((cred.forge ?? 'github') === 'gitlab') return `https://${cred.host}/api/v4`;
  return cred.host === 'github.com' ? 'https://api.github.com' : `https://${cred.host}/api/v3`;
}

/**
 * Check a task's delivery against its sources and the pool's push credentials.
 * `field` prefixes every message (e.g. `AgentTask "fix": delivery` or `delivery`).
 */
export function deliveryProblems(task: Pick<TaskSpec, 'name' | 'sources' | 'delivery'>, push: readonly PushCredentialSpec[] | undefined, field = 'delivery'): string[] {
  const d = task.delivery;
  if (!d) return [];
  const problems: string[] = [];
  const sources = task.sources ?? [];
  const source = d.source !== undefined ? sources.find((s) => s.name === d.source) : sources.length === 1 ? sources[0] : undefined;
  if (!source) {
    problems.push(
      d.source !== undefined
        ? `${field}.source: "${d.source}" is not one of the task's sources (${sources.map((s) => s.name).join(', ') || 'none'})`
        : sources.length === 0
          ? `${field}: the task has no source to deliver a change of; add a git source`
          : `${field}.source: the task has ${sources.length} sources; name the one to deliver (${sources.map((s) => s.name).join(', ')})`,
    );
  }
  const branchProblem = branchNameProblem(d.branch);
  if (branchProblem) problems.push(`${field}.branch: "${d.branch}" is not a branch name git accepts: it ${branchProblem}; e.g. "${suggestBranchName(d.branch)}"`);
  const baseProblem = d.pullRequest?.base !== undefined ? branchNameProblem(d.pullRequest.base) : undefined;
  if (baseProblem) problems.push(`${field}.pullRequest.base: "${d.pullRequest!.base}" is not a branch name git accepts: it ${baseProblem}`);
  const repository = d.repository ?? source?.url;
  const host = repository ? hostOf(repository) : '';
  const creds = push ?? [];
  const cred = creds.find((c) => c.host === host);
  if (repository && !cred) {
    problems.push(
      creds.length === 0
        ? `${field}: the pool has no push credential, so nothing can push to ${host}; grant one with credential.grantPushTo(pool, { host: "${host}", key: "token" }) (no agent pod ever sees it)`
        : `${field}${d.repository ? '.repository' : ''}: "${repository}" is on ${host}, but the pool's push credentials are for ${creds.map((c) => c.host).join(', ')}; push to a repository on ${creds.length === 1 ? 'that host' : 'one of those hosts'} or grant a push credential for ${host}`,
    );
  }
  // The publish step clones the base from the source; its egress reaches only push-credential hosts.
  const sourceHost = source ? hostOf(source.url) : '';
  if (cred && sourceHost && sourceHost !== host && !creds.some((c) => c.host === sourceHost)) {
    problems.push(
      `${field}.repository: "${repository}" is on ${host}, but the publish step fetches the base commit from the source's host ${sourceHost}, which it reaches only with a push credential for it; deliver to a repository on ${sourceHost}, or grant a push credential for ${sourceHost} too`,
    );
  }
  if (d.pullRequest && cred) {
    const forge = cred.forge ?? 'github';
    const limit = TITLE_LIMITS[forge];
    const length = [...d.pullRequest.title].length;
    if (length > limit) problems.push(`${field}.pullRequest.title: is ${length} characters; ${forge === 'github' ? 'GitHub' : 'GitLab'} accepts at most ${limit}, shorten it (details go in pullRequest.body)`);
  }
  if (d.pullRequest?.base === undefined && d.pullRequest && source && !source.branch && source.ref) {
    problems.push(`${field}.pullRequest.base: the source is checked out at ref "${source.ref}", not a branch; name the branch the pull request targets`);
  }
  return problems;
}

/** The delivery with every default applied; throws when deliveryProblems finds any. */
export function resolveDelivery(task: Pick<TaskSpec, 'name' | 'sources' | 'delivery'>, push: readonly PushCredentialSpec[] | undefined): ResolvedDelivery | undefined {
  const d: DeliverySpec | undefined = task.delivery;
  if (!d) return undefined;
  const problems = deliveryProblems(task, push);
  if (problems.length) throw new Error(problems.join('; '));
  const sources = task.sources ?? [];
  const source = d.source !== undefined ? sources.find((s) => s.name === d.source)! : sources[0];
  const repository = d.repository ?? source.url;
  const credential = (push ?? []).find((c) => c.host === hostOf(repository))!;
  const forge = credential.forge ?? 'github';
  return {
    source: source.name,
    sourceUrl: source.url,
    repository,
    branch: d.branch,
    commitMessage: d.commitMessage ?? `paddock: ${task.name}`,
    author: d.author ?? DEFAULT_AUTHOR,
    credential,
    forge,
    ...(d.pullRequest
      ? {
          pullRequest: {
            title: d.pullRequest.title,
            body: d.pullRequest.body ?? '',
            ...(d.pullRequest.base ?? source.branch ? { base: d.pullRequest.base ?? source.branch } : {}),
            draft: d.pullRequest.draft ?? true,
            api: forgeApi(credential),
          },
        }
      : {}),
  };
}
