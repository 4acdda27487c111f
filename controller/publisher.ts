/**
 * The publish step: deliver a run's change. It holds the push credential and
 * runs where no agent code runs (its own Job, or the controller in `paddock
 * local`), fed the task's delivery, the base commit and the patch:
 *
 *   fetch the base commit, apply the patch (`git apply --index`), commit with the
 *   spec's message and author, push to the branch with a lease (the branch must
 *   be absent or still at the base commit, else `conflict`), verify that the
 *   pushed commit is the base plus the patch, then open the pull/merge request
 *   (title and body from the spec, draft by default) if asked.
 *
 * Git runs as the runner's fetch does (runner/sources.ts): no system or global
 * config, the token answered by a one-off credential helper from a file,
 * never on a command line, in the environment or in a log.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { hostOf, type ResolvedDelivery } from '../core/delivery';
import { Redactor } from '../runner/redaction';
import { gitEnv, runGit, type FetchContext } from '../runner/sources';
import { RunFailure } from '../runner/status';

export type DeliveryState = 'pushed' | 'conflict' | 'denied' | 'failed' | 'skipped';

/** A run's delivery, as the run ConfigMap (delivery.json) and the API show it. */
export interface DeliveryStatus {
  readonly state: DeliveryState;
  /** Why, in one sentence (every state but a plain `pushed`). */
  readonly reason?: string;
  readonly repository: string;
  readonly branch: string;
  /** The pushed commit. */
  readonly commit?: string;
  readonly base?: string;
  readonly pullRequest?: { readonly url: string; readonly number: number };
  readonly finishedAt?: string;
}

export interface PublishOptions {
  readonly delivery: ResolvedDelivery;
  /** The commit the agent's patch applies to. */
  readonly base: string;
  readonly patch: Buffer;
  /** A file holding the push token. */
  readonly tokenFile: string;
  /** @default 'git' */
  readonly git?: string;
  /** CA settings for git (GIT_SSL_CAINFO, ...). */
  readonly caEnv?: Readonly<Record<string, string>>;
  /** The egress proxy for git (HTTPS_PROXY, NO_PROXY, ...: the publish Job's allowlist). @default - none, direct */
  readonly proxyEnv?: Readonly<Record<string, string>>;
  /** Scratch space. @default - a new temporary directory */
  readonly workDir?: string;
  /** For the forge's REST API. @default globalThis.fetch */
  readonly fetch?: typeof fetch;
  /** @default 300000 per git command */
  readonly timeoutMs?: number;
  readonly log?: (line: string) => void;
}

class DeliveryFailure extends Error {
  constructor(
    public readonly state: Exclude<DeliveryState, 'pushed'>,
    message: string,
  ) {
    super(message);
  }
}

export async function publish(opts: PublishOptions): Promise<DeliveryStatus> {
  const d = opts.delivery;
  const log = opts.log ?? (() => undefined);
  const where = { repository: d.repository, branch: d.branch, base: opts.base };
  const done = (s: Omit<DeliveryStatus, 'repository' | 'branch' | 'base' | 'finishedAt'>): DeliveryStatus => ({ ...where, ...s, finishedAt: new Date().toISOString() });
  if (opts.patch.length === 0) return done({ state: 'skipped', reason: 'the agent changed nothing; nothing to deliver' });
  const redactor = new Redactor();
  let token: string;
  try {
    token = fs.readFileSync(opts.tokenFile, 'utf8').trim();
  } catch (err) {
    return done({ state: 'failed', reason: `cannot read the push credential (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` });
  }
  redactor.add(token);
  const own = opts.workDir === undefined;
  const root = opts.workDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-publish-'));
  fs.mkdirSync(root, { recursive: true });
  const scratch = fs.mkdtempSync(path.join(root, 'scratch-'));
  fs.chmodSync(scratch, 0o700);
  const repo = path.join(root, 'repo');
  try {
    const ctx: FetchContext = {
      workspace: root,
      scratchDir: scratch,
      git: opts.git ?? 'git',
      baseEnv: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: scratch, ...opts.proxyEnv },
      caEnv: opts.caEnv ?? {},
      credentials: [{ host: d.credential.host, username: d.credential.username ?? 'x-access-token', passwordFile: opts.tokenFile }],
      timeoutMs: opts.timeoutMs ?? 300_000,
      killGraceMs: 2000,
      redactor,
      log: (line) => log(redactor.redact(line)),
    };
    const author = d.author;
    const env: Record<string, string> = {
      ...gitEnv({ name: 'push', url: d.repository }, ctx),
      GIT_AUTHOR_NAME: author.name,
      GIT_AUTHOR_EMAIL: author.email,
      GIT_COMMITTER_NAME: author.name,
      GIT_COMMITTER_EMAIL: author.email,
    };
    // The token goes only to its own host: a source on another host is fetched without it.
    const sourceEnv = hostOf(d.sourceUrl) === hostOf(d.repository) ? env : gitEnv({ name: 'source', url: d.sourceUrl }, { ...ctx, credentials: [] });
    const git = (args: string[], cwd = repo, e = env) => runGit(ctx, e, `delivery to ${d.repository}`, args, cwd).catch((err: unknown) => {
      throw classify(err);
    });
    const ref = `refs/heads/${d.branch}`;
    await git(['init', '--quiet', '--', repo], root);
    await git(['remote', 'add', 'origin', d.repository]);
    if (d.sourceUrl !== d.repository) await git(['remote', 'add', 'source', d.sourceUrl]);
    const current = (await git(['ls-remote', '--', 'origin', ref])).split('\t')[0].trim() || undefined;
    // The base lives in the source repository (a fork may not have it yet).
    await git(['fetch', '--quiet', '--no-tags', '--depth', '1', d.sourceUrl !== d.repository ? 'source' : 'origin', opts.base], repo, sourceEnv);
    await git(['checkout', '--quiet', '--detach', opts.base]);
    const patchFile = path.join(scratch, 'change.patch');
    fs.writeFileSync(patchFile, opts.patch);
    await git(['apply', '--index', '--binary', '--whitespace=nowarn', patchFile]).catch((err: DeliveryFailure) => {
      throw new DeliveryFailure('failed', `the patch does not apply to the base commit ${opts.base}: ${err.message}`);
    });
    const messageFile = path.join(scratch, 'message');
    fs.writeFileSync(messageFile, d.commitMessage);
    await git(['-c', 'commit.gpgSign=false', 'commit', '--quiet', '--no-verify', '--allow-empty-message', '-F', messageFile]);
    const commit = (await git(['rev-parse', 'HEAD'])).trim();
    const tree = (await git(['rev-parse', 'HEAD^{tree}'])).trim();
    if (current && current !== opts.base) {
      // Delivered before (a retry)? Then the branch holds our tree on our base.
      await git(['fetch', '--quiet', '--no-tags', '--depth', '2', 'origin', ref]).catch(() => undefined);
      const same = await git(['rev-parse', 'FETCH_HEAD^{tree}', 'FETCH_HEAD^']).then((o) => o.split('\n').map((l) => l.trim()), () => []);
      if (same[0] === tree && same[1] === opts.base) {
        log(`branch ${d.branch} already holds this change (${current})`);
        return done({ state: 'pushed', commit: current, ...(await openRequest(d, token, current, opts, log)) });
      }
      return done({ state: 'conflict', reason: `branch ${d.branch} moved: it points at ${current}, not at the base commit ${opts.base}; nothing was pushed` });
    }
    // The lease: the branch must still be where we saw it (absent, or at the base).
    await git(['push', '--quiet', '--porcelain', `--force-with-lease=${ref}:${current ?? ''}`, 'origin', `${commit}:${ref}`]);
    const pushed = (await git(['ls-remote', '--', 'origin', ref])).split('\t')[0].trim();
    await git(['fetch', '--quiet', '--no-tags', '--depth', '2', 'origin', ref]);
    const [pushedTree, pushedParent] = (await git(['rev-parse', 'FETCH_HEAD^{tree}', 'FETCH_HEAD^'])).split('\n').map((l) => l.trim());
    if (pushed !== commit || pushedTree !== tree || pushedParent !== opts.base) {
      return done({ state: 'failed', commit: pushed, reason: `verification failed: ${ref} is ${pushed} (tree ${pushedTree}, parent ${pushedParent}), expected ${commit} = ${opts.base} + the patch` });
    }
    log(`pushed ${commit} to ${d.branch} of ${d.repository}`);
    return done({ state: 'pushed', commit, ...(await openRequest(d, token, commit, opts, log)) });
  } catch (err) {
    if (err instanceof DeliveryFailure) return done({ state: err.state, reason: redactor.redact(err.message) });
    return done({ state: 'failed', reason: redactor.redact(`internal error: ${(err as Error).message}`) });
  } finally {
    fs.rmSync(own ? root : scratch, { recursive: true, force: true });
    if (!own) fs.rmSync(repo, { recursive: true, force: true });
  }
}

/** git's refusal, by what it says: a moved branch, a refused credential, or anything else. */
function classify(err: unknown): DeliveryFailure {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof RunFailure || err instanceof Error) {
    if (/stale info|fetch first|non-fast-forward|\[rejected\]/i.test(message)) return new DeliveryFailure('conflict', `the branch moved while pushing: ${message}`);
    if (/\b(401|403)\b|denied|Authentication failed|could not read Username|permission/i.test(message)) return new DeliveryFailure('denied', `the git host refused the push credential: ${message}`);
  }
  return new DeliveryFailure('failed', message);
}

/** The pull (GitHub) or merge (GitLab) request, if the delivery asks for one; a failure keeps `pushed` and says why. */
async function openRequest(d: ResolvedDelivery, token: string, commit: string, opts: PublishOptions, log: (l: string) => void): Promise<Partial<DeliveryStatus>> {
  const pr = d.pullRequest;
  if (!pr) return {};
  const doFetch = opts.fetch ?? fetch;
  const call = async (method: string, url: string, body?: unknown): Promise<{ status: number; json: any }> => {
    const headers: Record<string, string> =
      d.forge === 'github'
        ? { Accept: 'application/vnd.github+json', Authorization: `Bearer ${token}`, 'X-GitHub-Api-Version': '2022-11-28', 'User-Agent': 'paddock' }
        : { 'PRIVATE-TOKEN': token, Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await doFetch(url, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    const text = await res.text();
    let json: any;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = { message: text.slice(0, 200) };
    }
    return { status: res.status, json };
  };
  const upstream = repoPath(d.sourceUrl);
  const fork = repoPath(d.repository);
  try {
    if (d.forge === 'github') {
      const repoUrl = `${pr.api}/repos/${upstream}`;
      const base = pr.base ?? (await call('GET', repoUrl)).json?.default_branch;
      const head = fork === upstream ? d.branch : `${fork.split('/')[0]}:${d.branch}`;
      const r = await call('POST', `${repoUrl}/pulls`, { title: pr.title, body: pr.body, head, base, draft: pr.draft });
      if (r.status === 201) return { pullRequest: { url: r.json.html_url, number: r.json.number } };
      if (r.status === 422) {
        const open = await call('GET', `${repoUrl}/pulls?state=open&head=${encodeURIComponent(`${fork.split('/')[0]}:${d.branch}`)}`);
        if (Array.isArray(open.json) && open.json[0]) return { pullRequest: { url: open.json[0].html_url, number: open.json[0].number } };
      }
      return { reason: `pushed, but GitHub did not open the pull request: HTTP ${r.status} ${r.json?.message ?? ''}`.trim() };
    }
    const project = `${pr.api}/projects/${encodeURIComponent(fork)}`;
    const target = fork === upstream ? undefined : (await call('GET', `${pr.api}/projects/${encodeURIComponent(upstream)}`)).json;
    const base = pr.base ?? (target ?? (await call('GET', project)).json)?.default_branch;
    const title = pr.draft && !/^draft:/i.test(pr.title) ? `Draft: ${pr.title}` : pr.title;
    const r = await call('POST', `${project}/merge_requests`, { source_branch: d.branch, target_branch: base, title, description: pr.body, ...(target ? { target_project_id: target.id } : {}) });
    if (r.status === 201) return { pullRequest: { url: r.json.web_url, number: r.json.iid } };
    if (r.status === 409) {
      const open = await call('GET', `${project}/merge_requests?state=opened&source_branch=${encodeURIComponent(d.branch)}`);
      if (Array.isArray(open.json) && open.json[0]) return { pullRequest: { url: open.json[0].web_url, number: open.json[0].iid } };
    }
    return { reason: `pushed, but GitLab did not open the merge request: HTTP ${r.status} ${typeof r.json?.message === 'string' ? r.json.message : JSON.stringify(r.json?.message ?? '')}`.trim() };
  } catch (err) {
    log(`pull request for ${commit}: ${(err as Error).message}`);
    return { reason: `pushed, but the forge's API could not be reached: ${(err as Error).message}` };
  }
}

/** owner/name (GitLab: group/sub/name) of a repository URL. */
export function repoPath(url: string): string {
  return new URL(url).pathname.replace(/^\/+/, '').replace(/\/+$/, '').replace(/\.git$/, '');
}
