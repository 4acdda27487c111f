/**
 * The runner: execute one task, in order
 *   load     read + validate task, harness, pool specs; check credentials, config layers,
 *            command template, sandbox (no side effect before this phase passes)
 *   sources  fetch the git sources into the workspace
 *   config   copy credential files into HOME, write the merged config layers, the prompt file
 *   agent    exec the agent CLI (argv, no shell) with an explicit env, timeout, redacted logs
 *   results  extract ```result blocks into results.jsonl
 *   changes  the agent's change of every source as a git patch (patch.ts)
 * and always write artifacts/status.json. Returns the exit code (table in status.ts).
 */
import { randomUUID } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { insertPolicyArgs, policyFor } from '../core/agent-policy';
import { lintCommandTemplate, promptViaOf, renderCommand, usesPlaceholder } from '../core/command-template';
import { ImageName, imageName } from '../core/images';
import type { HarnessSpec, PoolSpec, TaskSpec } from '../policy/specs';
import { presetOfProgram } from '../templates';
import { baseEnv, buildAgentEnv } from './agent-env';
import { AgentRunResult, runAgent } from './agent-exec';
import { planConfigFiles, PlannedConfigFile, resolveInside, writeConfigFiles } from './config-layers';
import { Credentials, resolveCredentials, withCredentialDir, writeCredentialFiles } from './credentials';
import { crossCheck, readSpec, specFilePath, SpecSource } from './load-specs';
import { Redactor } from './redaction';
import { extractResultBlocks, finalOutput, writeResultsJsonl } from './results';
import { locateBwrap, SandboxKind, wrapWithBwrap } from './sandbox-bwrap';
import { FetchContext, fetchSources, gitCaEnv } from './sources';
import { gatewayWiring } from './gateway-wiring';
import { PROVIDER_FAILING_PATTERN } from '../core/model-providers';
import { poolForPhase, readFetchRecord, RunPhaseKind, writeFetchRecord } from './fetch-record';
import { promptWithTranscript, SessionCliState, sessionPatchesOf, SessionState, SessionTurn } from '../core/session';
import { checkResumeShape, insertResumeArgs, nativeResume, resumeArgs, resumeStatePaths } from '../core/resume';
import { collectCliState, restoreCliState } from './cli-state';
import { readSessionFile, restoreWorkspace, writeSessionState } from './session';
import { readPatches, recordChanges } from './patch';
import type { SourceChange } from '../core/protocol';
import { exitCodeOf, Outcome, ParseErrorRecord, Phase, RunFailure, RunStatus, SourceRecord, writeStatus } from './status';

/** Where a pod mounts things (ConfigMaps) and its writable emptyDirs. */
export const POD_PATHS = {
  task: '/etc/paddock/task',
  harness: '/etc/paddock/harness',
  pool: '/etc/paddock/pool',
  workspace: '/workspace',
  home: '/home/agent',
  artifacts: '/artifacts',
  tmp: '/tmp',
} as const;

export interface RunOptions {
  /**
   * The task spec: a JSON file, or a folder holding task.json (a mounted ConfigMap).
   * @default - $PADDOCK_TASK_SPEC, else /etc/paddock/task
   */
  readonly task?: SpecSource;
  /**
   * The harness spec: a JSON file, a folder holding harness.json, or an inline spec.
   * @default - $PADDOCK_HARNESS_SPEC, else /etc/paddock/harness
   */
  readonly harness?: SpecSource;
  /**
   * The pool spec (credentials, egress, pool config layer). `null`: no pool (local mode).
   * @default - $PADDOCK_POOL_SPEC, else /etc/paddock/pool if it exists, else no pool
   */
  readonly pool?: SpecSource | null;
  /** @default - $PADDOCK_WORKSPACE, else /workspace */
  readonly workspace?: string;
  /** The agent's HOME. @default - $PADDOCK_HOME, else /home/agent */
  readonly home?: string;
  /** @default - $PADDOCK_ARTIFACTS, else /artifacts */
  readonly artifacts?: string;
  /** Scratch space for the prompt file and git helpers. @default - $PADDOCK_TMP, else /tmp */
  readonly tmp?: string;
  /** @default 'none' */
  readonly sandbox?: SandboxKind;
  /** Under --sandbox bwrap: paths the agent must not see (a warm worker's token and its other runs). */
  readonly sandboxHide?: readonly string[];
  /** The runner's environment. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** Where the agent's stdout lines go. @default process.stdout */
  readonly stdout?: NodeJS.WritableStream;
  /** Where the agent's stderr lines and the runner's own log go. @default process.stderr */
  readonly stderr?: NodeJS.WritableStream;
  /** Aborting (the CLI does on SIGTERM/SIGINT) stops the run: outcome `terminated`. */
  readonly signal?: AbortSignal;
  /** Between SIGTERM and SIGKILL to the agent's process group. @default 10000 */
  readonly killGraceMs?: number;
  /** Limit per git command. @default 600000 */
  readonly gitTimeoutMs?: number;
  /** @default 'git' */
  readonly git?: string;
  /** @default - bwrap found on PATH */
  readonly bwrap?: string;
  /** Agent stdout kept in memory for result extraction: its last this many bytes. @default 64 MiB */
  readonly maxCaptureBytes?: number;
  /**
   * Size of each of agent.stdout.log and agent.stderr.log (their first and last halves are kept),
   * so the logs fit the artifacts emptyDir (64 MiB).
   * @default 16 MiB
   */
  readonly maxLogBytes?: number;
  /**
   * `fetch`: load the specs and fetch the sources only, recording the outcome in
   * artifacts/fetch.json (the Job's init container, the only one that mounts git Secrets);
   * `agent`: everything but the fetch, whose record it reads; `all`: both.
   * @default 'all'
   */
  readonly phase?: RunPhaseKind;
  /**
   * A folder holding the pool's Secrets as files, `<secret>/<key>`, in place of the pod's
   * mounts under /var/run/paddock/secrets (local runs of a pool with file or git grants).
   * @default - the pod's mounts
   */
  readonly credentialDir?: string;
  /**
   * The state of the task's session (the warm worker gets it with its lease): the CLI's own
   * conversation files are restored and its resume argv added (a harness whose resume is
   * native), else the earlier turns reach the CLI as a transcript; the last run's change is
   * applied to the sources.
   * @default - none: a task with a session starts it
   */
  readonly session?: SessionState;
  /**
   * A file holding that state (a Job's runner: the session's ConfigMap, mounted by the
   * controller); read as the run loads, a missing or unreadable one fails it (invalid_spec).
   * @default - none
   */
  readonly sessionFile?: string;
}

const ARG_LOG_LIMIT = 500;

interface State {
  task?: TaskSpec;
  harness?: HarnessSpec;
  pool?: PoolSpec;
  sources: SourceRecord[];
  exitCode: number | null;
  signal: string | null;
  command?: string[];
  results: number;
  parseErrors: ParseErrorRecord[];
  parseErrorCount: number;
  outputTruncated?: boolean;
  outputDroppedBytes?: number;
  logDroppedBytes?: { stdout: number; stderr: number };
  changes?: SourceChange[];
  changesError?: string;
}

export async function run(opts: RunOptions = {}): Promise<number> {
  const env = opts.env ?? process.env;
  const stdout = opts.stdout ?? process.stdout;
  const stderr = opts.stderr ?? process.stderr;
  const redactor = new Redactor();
  const log = (line: string): void => {
    stderr.write(`[paddock] ${redactor.redact(line)}\n`);
  };
  const dirs = {
    workspace: path.resolve(opts.workspace ?? env.PADDOCK_WORKSPACE ?? POD_PATHS.workspace),
    home: path.resolve(opts.home ?? env.PADDOCK_HOME ?? POD_PATHS.home),
    artifacts: path.resolve(opts.artifacts ?? env.PADDOCK_ARTIFACTS ?? POD_PATHS.artifacts),
    tmp: path.resolve(opts.tmp ?? env.PADDOCK_TMP ?? POD_PATHS.tmp),
  };
  const killGraceMs = opts.killGraceMs ?? 10_000;
  const runPhase = opts.phase ?? 'all';
  const startedAt = new Date();
  const t0 = performance.now();
  const timings: Partial<Record<Phase | 'total', number>> = {};
  const state: State = { sources: [], exitCode: null, signal: null, results: 0, parseErrors: [], parseErrorCount: 0 };
  let outcome: Outcome = 'internal_error';
  let message: string | undefined;
  let problems: string[] | undefined;
  let scratch: string | undefined;

  const phase = async <T>(name: Phase, body: () => T | Promise<T>): Promise<T> => {
    if (opts.signal?.aborted && name !== 'results' && name !== 'changes') {
      throw new RunFailure('terminated', `the runner was asked to stop before the ${name} phase`);
    }
    const start = performance.now();
    try {
      return await body();
    } finally {
      timings[name] = Math.round(performance.now() - start);
    }
  };

  try {
    fs.mkdirSync(dirs.artifacts, { recursive: true });
  } catch (err) {
    log(`internal_error: cannot create the artifacts directory ${dirs.artifacts}: ${(err as Error).message}`);
    return exitCodeOf('internal_error');
  }

  try {
    // ---- load: everything checked, nothing touched ----
    const loaded = await phase('load', () => {
      const task = (state.task = readSpec<TaskSpec>('Task', opts.task ?? env.PADDOCK_TASK_SPEC ?? POD_PATHS.task));
      // A Job's runner gets the session's state as a file; from here on the run is as a warm worker's.
      if (opts.sessionFile !== undefined && runPhase !== 'fetch') opts = { ...opts, session: readSessionFile(opts.sessionFile, task) };
      const harness = (state.harness = readSpec<HarnessSpec>('Harness', opts.harness ?? env.PADDOCK_HARNESS_SPEC ?? POD_PATHS.harness));
      const poolSource = resolvePoolSource(opts.pool, env);
      const pool = (state.pool = poolSource === undefined ? undefined : withCredentialDir(readSpec<PoolSpec>('Pool', poolSource), opts.credentialDir && path.resolve(opts.credentialDir)));
      const issues = [
        ...crossCheck({ task, harness, pool }),
        ...lintCommandTemplate(harness.command, `harness "${harness.name}" command`),
        ...checkResumeShape(harness.resume, `harness "${harness.name}" resume`, (harness.config?.files ?? []).filter((f) => (f.base ?? 'home') === 'home').map((f) => f.path)),
      ];
      const model = task.model ?? harness.defaultModel;
      if (usesPlaceholder(harness.command, 'model') && model === undefined) {
        issues.push(`task.model: is not set and harness "${harness.name}" has no defaultModel, but its command uses {model}`);
      }
      // The same rule the Harness construct applies: the command implies how the prompt travels.
      const implied = promptViaOf(harness.command);
      if (harness.promptVia !== implied) {
        issues.push(`harness "${harness.name}" promptVia: is "${harness.promptVia}" but its command implies "${implied}" ({prompt} → argv, {prompt_file} → file, neither → stdin)`);
      }
      // The merged policy, enforced by the harness's mapping; an item its CLI cannot enforce stops the run.
      const policy = policyFor(harness, pool, task);
      issues.push(...policy.problems);
      if (issues.length > 0) {
        throw new RunFailure('invalid_spec', `the specs do not fit together:\n  - ${issues.join('\n  - ')}`, issues);
      }
      const credentials = resolveCredentials(poolForPhase(pool, runPhase), harness, env, redactor);
      if (credentials.missingOptional.length > 0) {
        log(`local mode (no pool): ${credentials.missingOptional.join(', ')} not set; the agent runs without ${credentials.missingOptional.length > 1 ? 'them' : 'it'}`);
      }
      // The gateway's layer (base URLs, the placeholder key) sits above the pool's and below the task's.
      const gateway = runPhase === 'fetch' ? { env: {}, config: [] } : gatewayWiring(pool, harness, model ?? '', redactor);
      const retriesCapped = (harness.credentialEnv ?? []).some((e) => e in gateway.env);
      if (runPhase !== 'fetch' && harness.gatewayMaxRetries !== undefined && !retriesCapped) {
        log(`harness "${harness.name}": its retry cap (gatewayMaxRetries ${harness.gatewayMaxRetries}) is kept by the model gateway, which this run's provider is not reached through; the CLI's own retries apply`);
      }
      const configFiles = planConfigFiles([
        { label: `harness "${harness.name}"`, layer: harness.config },
        { label: `pool "${pool?.name ?? '-'}"`, layer: pool?.config },
        { label: 'model gateway', layer: { files: gateway.config } },
        { label: `task "${task.name}"`, layer: task.config },
        // Last, so no other layer can loosen it.
        { label: 'agent policy', layer: { files: policy.files }, replaceKeys: policy.replaceKeys },
      ]);
      if (Object.keys(policy.policy).length) log(`agent policy: ${JSON.stringify(policy.policy)}`);
      const bwrap = opts.sandbox === 'bwrap' ? locateBwrap(env.PATH, opts.bwrap) : undefined;
      log(`task "${task.name}": harness "${harness.name}", ${pool ? `pool "${pool.name}"` : 'no pool (local mode)'}, workspace ${dirs.workspace}`);
      return { task, harness, pool, model: model ?? '', credentials: { ...credentials, env: { ...gateway.env, ...credentials.env } }, configFiles, bwrap, policyArgs: policy.argv, retriesCapped };
    });
    const { task, harness, pool, credentials } = loaded;

    // ---- sources ----
    let gitCtx: FetchContext | undefined;
    await phase('sources', async () => {
      fs.mkdirSync(dirs.workspace, { recursive: true });
      fs.mkdirSync(dirs.home, { recursive: true });
      fs.mkdirSync(dirs.tmp, { recursive: true });
      scratch = fs.mkdtempSync(path.join(dirs.tmp, 'paddock-'));
      gitCtx = {
        workspace: dirs.workspace,
        scratchDir: scratch,
        git: opts.git ?? 'git',
        baseEnv: baseEnv(env, dirs.home, pool),
        caEnv: gitCaEnv(env),
        credentials: credentials.git,
        timeoutMs: opts.gitTimeoutMs ?? 600_000,
        killGraceMs: Math.min(killGraceMs, 2000),
        signal: opts.signal,
        redactor,
        log,
      };
      if (runPhase === 'agent') {
        state.sources = readFetchRecord(dirs.artifacts).sources;
      } else {
        state.sources = await fetchSources(task.sources ?? [], gitCtx);
        removeHelpers(scratch);
      }
      // The sources the controller fetched (clean room) continue the session just as our own would.
      if (runPhase !== 'fetch' && task.session && opts.session && !task.session.freshWorkspace) await restoreWorkspace(opts.session, state.sources, gitCtx);
    });

    if (runPhase === 'fetch') {
      writeFetchRecord(dirs.artifacts, { ok: true, sources: state.sources, ms: timings.sources ?? 0 });
      log(`fetched ${state.sources.length} source(s) for the agent's runner`);
      return 0;
    }

    // ---- config ----
    // In a session the CLI continues its own conversation (its state of the last run, when
    // the same harness left one), else it gets the earlier turns as a transcript before the prompt.
    const native = task.session ? nativeResume(harness) : undefined;
    const previous = native && opts.session?.cli?.state && opts.session.harness === harness.name ? opts.session.cli : undefined;
    const conversationId = native ? (previous?.id ?? randomUUID()) : undefined;
    const prompt = task.session && !previous ? promptWithTranscript(opts.session, task.prompt) : task.prompt;
    const prepared = await phase('config', () => {
      if (native && previous?.state) {
        try {
          const n = restoreCliState(dirs.home, previous.state, resumeStatePaths(native, previous.id));
          log(`session "${task.session!.name}": the CLI continues its conversation ${previous.id} (${n} file(s) restored)`);
        } catch (err) {
          throw new RunFailure('invalid_spec', `session "${task.session!.name}": the previous run's CLI state cannot be restored: ${(err as Error).message}; delete the session and start it again`);
        }
      }
      return prepareConfig(prompt, task, harness, loaded.configFiles, credentials, dirs, scratch!, state.sources);
    });

    // ---- agent ----
    const agent = await phase('agent', async () => {
      const rendered = renderCommand(harness.command, {
        model: loaded.model,
        prompt,
        promptFile: prepared.promptFile,
        workdir: prepared.workdir,
      });
      // After rendering: policy values (a system prompt) are never read as placeholders.
      const withPolicy = insertPolicyArgs(harness.command, rendered, loaded.policyArgs);
      const argv = native && conversationId ? insertResumeArgs(harness.command, withPolicy, resumeArgs(native, conversationId, Boolean(previous))) : withPolicy;
      const agentEnv = buildAgentEnv({ runnerEnv: env, home: dirs.home, harness, pool, task, credentialEnv: credentials.env });
      let finalArgv = argv;
      if (loaded.bwrap) {
        const tmpdir = fs.mkdtempSync(path.join(scratch!, 'agent-tmp-'));
        agentEnv.TMPDIR = tmpdir;
        finalArgv = wrapWithBwrap(loaded.bwrap, argv, {
          workspace: dirs.workspace,
          home: dirs.home,
          workdir: prepared.workdir,
          tmpdir,
          readOnly: prepared.promptFile ? [prepared.promptFile] : [],
          hidden: opts.sandboxHide ?? [],
        });
      }
      state.command = argv.map((a) => shorten(redactor.redact(a)));
      const timeoutSeconds = task.timeoutSeconds ?? 1800;
      log(`running ${state.command.map((a) => JSON.stringify(a)).join(' ')} in ${prepared.workdir} (timeout ${timeoutSeconds} s${loaded.bwrap ? ', bwrap sandbox' : ''})`);
      const r = await runAgent({
        argv: finalArgv,
        cwd: prepared.workdir,
        env: agentEnv,
        stdinText: harness.promptVia === 'stdin' ? prompt : undefined,
        timeoutMs: timeoutSeconds * 1000,
        killGraceMs,
        signal: opts.signal,
        redactor,
        artifactsDir: dirs.artifacts,
        stdout,
        stderr,
        prefix: '[agent] ',
        maxCaptureBytes: opts.maxCaptureBytes ?? 64 * 1024 * 1024,
        maxLogBytes: opts.maxLogBytes ?? 16 * 1024 * 1024,
        ...(loaded.retriesCapped && harness.gatewayMaxRetries !== undefined ? { watch: PROVIDER_FAILING_PATTERN } : {}),
      });
      state.exitCode = r.exitCode;
      state.signal = r.signal;
      state.outputTruncated = r.truncated || undefined;
      if (r.truncated) {
        state.outputDroppedBytes = r.droppedBytes;
        log(`the agent's stdout was over the capture limit: its first ${r.droppedBytes} bytes were dropped, results come from the rest`);
      }
      if (r.logDroppedBytes.stdout || r.logDroppedBytes.stderr) state.logDroppedBytes = r.logDroppedBytes;
      return r;
    });

    // ---- results (also after a failure, timeout or termination: keep what there is) ----
    let turn: SessionTurn | undefined;
    await phase('results', async () => {
      const out = finalOutput(harness.results, agent.stdout, dirs.home);
      const extracted = 'text' in out ? extractResultBlocks(out.text, redactor) : { results: [], parseErrors: [{ block: 0, message: out.error, excerpt: '' }], parseErrorCount: 1 };
      writeResultsJsonl(dirs.artifacts, extracted.results, redactor);
      state.results = extracted.results.length;
      state.parseErrors = extracted.parseErrors;
      state.parseErrorCount = extracted.parseErrorCount;
      for (const e of extracted.parseErrors) log(`result block ${e.block}: ${e.message}`);
      const omitted = extracted.parseErrorCount - extracted.parseErrors.length;
      if (omitted > 0) log(`${omitted} more parse error(s) counted, not listed`);
      if (task.session) turn = { task: task.name, prompt: redactor.redact(task.prompt), output: 'text' in out ? redactor.redact(out.text) : '' };
    });

    // ---- changes (also after a failure: whether to deliver them is the task's call) ----
    await phase('changes', async () => {
      const ownFiles = loaded.configFiles.filter((f) => f.base === 'workdir').map((f) => path.join(prepared.workdir, f.path));
      const checkouts = state.sources.map((s) => {
        const root = path.join(dirs.workspace, s.name);
        return {
          name: s.name,
          root,
          commit: s.commit,
          subPath: path.relative(root, path.join(dirs.workspace, s.dir)),
          ownFiles: ownFiles.map((f) => path.relative(root, f)).filter((f) => f && !f.startsWith('..')),
        };
      });
      try {
        state.changes = await recordChanges(checkouts, dirs.artifacts, {
          git: opts.git ?? 'git',
          baseEnv: baseEnv(env, dirs.home, pool),
          scratchDir: scratch!,
          timeoutMs: opts.gitTimeoutMs ?? 600_000,
          log,
          holdsSecret: (text) => redactor.matches(text).length > 0,
        });
        for (const c of state.changes) log(`source "${c.source}": ${c.files} file(s) changed, +${c.insertions} -${c.deletions} against ${c.base.slice(0, 12)}`);
      } catch (err) {
        // The change could not be read (e.g. the agent broke the checkout): say so; the outcome stays the agent's.
        log(`cannot record the change: ${(err as Error).message}`);
        state.changesError = (err as Error).message;
      }
    });

    /** The CLI's conversation files, for the session's next run (never the runner's own files, never a credential). */
    function collectConversation(resume: NonNullable<typeof native>, id: string): SessionCliState {
      const label = `session "${task.session!.name}"`;
      const own = [...loaded.configFiles.filter((f) => f.base === 'home').map((f) => f.path), ...credentials.files.map((f) => f.path)];
      let cli: SessionCliState;
      try {
        cli = collectCliState(dirs.home, id, { patterns: resumeStatePaths(resume, id), exclude: own, holdsSecret: (text) => redactor.matches(text).length > 0, log });
      } catch (err) {
        cli = { id, bytes: 0, files: 0, withheld: `the CLI's conversation files cannot be read (${(err as Error).message})` };
      }
      if (cli.withheld) log(`${label}: ${cli.withheld}`);
      else if (cli.files === 0) log(`${label}: the CLI wrote none of its conversation files (${resume.state.join(', ')}); the next run gets the transcript`);
      else log(`${label}: kept the CLI's conversation ${id} (${cli.files} file(s), ${cli.bytes} bytes)`);
      return cli.files === 0 && !cli.withheld ? { id, bytes: 0, files: 0 } : cli;
    }

    // ---- session: this turn, and the change just recorded (never a withheld one: it is not stored) ----
    if (task.session && turn) {
      const carried = sessionPatchesOf(state.changes, readPatches(dirs.artifacts, state.changes), state.changesError);
      if (carried.problem) log(`session "${task.session.name}": ${carried.problem}`);
      const cli = native && conversationId ? collectConversation(native, conversationId) : undefined;
      writeSessionState(dirs.artifacts, {
        name: task.session.name,
        harness: harness.name,
        turns: [...(opts.session?.turns ?? []), turn],
        patches: carried.patches,
        ...(cli ? { cli } : {}),
        resume: cli?.state ? 'native' : 'transcript',
      });
    }

    ({ outcome, message } = agentOutcome(agent, task.timeoutSeconds ?? 1800, state.command?.[0], harness.gatewayMaxRetries));
  } catch (err) {
    if (err instanceof RunFailure) {
      outcome = err.outcome;
      message = err.message;
      problems = err.problems;
    } else {
      outcome = 'internal_error';
      message = `internal error: ${(err as Error)?.stack ?? String(err)}`;
    }
  } finally {
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  }
  if (runPhase === 'fetch') {
    // The init container succeeds either way: the agent's runner reports the failure.
    writeFetchRecord(dirs.artifacts, { ok: false, outcome, message: redactor.redact(message ?? outcome), ...(problems ? { problems: problems.map((p) => redactor.redact(p)) } : {}) });
    log(`the fetch step failed (${outcome}); the agent's runner reports it`);
    return 0;
  }

  timings.total = Math.round(performance.now() - t0);
  const runnerExitCode = exitCodeOf(outcome);
  const status: RunStatus = {
    task: state.task?.name ?? null,
    harness: state.harness?.name ?? null,
    pool: state.pool?.name ?? null,
    outcome,
    runnerExitCode,
    exitCode: state.exitCode,
    signal: state.signal,
    ...(message !== undefined ? { message: redactor.redact(message) } : {}),
    ...(problems ? { problems: problems.map((p) => redactor.redact(p)) } : {}),
    timings,
    counts: { results: state.results, parseErrors: state.parseErrorCount },
    parseErrors: state.parseErrors,
    ...(state.parseErrorCount > state.parseErrors.length ? { parseErrorsOmitted: state.parseErrorCount - state.parseErrors.length } : {}),
    sources: state.sources,
    ...(state.command ? { command: state.command } : {}),
    ...(state.outputTruncated ? { outputTruncated: true, outputDroppedBytes: state.outputDroppedBytes } : {}),
    ...(state.logDroppedBytes ? { logDroppedBytes: state.logDroppedBytes } : {}),
    ...(state.changes ? { changes: state.changes } : {}),
    ...(state.changesError ? { changesError: redactor.redact(state.changesError) } : {}),
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
  };
  try {
    writeStatus(dirs.artifacts, status);
  } catch (err) {
    log(`internal_error: cannot write status.json to ${dirs.artifacts}: ${(err as Error).message}`);
    return exitCodeOf('internal_error');
  }
  if (message) log(message);
  log(
    `outcome ${outcome} (runner exit ${runnerExitCode}${state.exitCode !== null ? `, agent exit ${state.exitCode}` : ''}${state.signal ? `, agent signal ${state.signal}` : ''}) ` +
      `in ${timings.total} ms; ${state.results} result(s), ${state.parseErrorCount} parse error(s)`,
  );
  return runnerExitCode;
}

/** What the agent's end means for the run. */
function agentOutcome(agent: AgentRunResult, timeoutSeconds: number, program: string | undefined, gatewayMaxRetries: number | undefined): { outcome: Outcome; message?: string } {
  const how = agent.signal ?? `exit ${agent.exitCode}`;
  if (agent.spawnError) return { outcome: 'failed', message: cannotStart(program, agent.spawnError as NodeJS.ErrnoException) };
  if (agent.timedOut) return { outcome: 'timed_out', message: `the agent ran past the timeout of ${timeoutSeconds} s and was stopped (${how})` };
  if (agent.aborted) return { outcome: 'terminated', message: `the runner was asked to stop; the agent was stopped (${how})` };
  if (agent.exitCode === 0) return { outcome: 'succeeded' };
  const exited = `the agent exited with ${agent.exitCode !== null ? `code ${agent.exitCode}` : `signal ${agent.signal}`}`;
  if (agent.watched) {
    const [, provider, failures] = agent.watched;
    return {
      outcome: 'failed',
      message:
        `${exited}: the model provider "${provider}" failed ${failures} request${failures === '1' ? '' : 's'} in a row (HTTP 5xx, 429 or no answer), ` +
        `and the model gateway answered the last one as final (the harness allows ${gatewayMaxRetries} retr${gatewayMaxRetries === 1 ? 'y' : 'ies'}, maxRetries)`,
    };
  }
  return { outcome: 'failed', message: exited };
}

/** Why the agent did not start, and for a missing CLI where it comes from. */
function cannotStart(program: string | undefined, err: NodeJS.ErrnoException): string {
  if (err.code === 'E2BIG') {
    return `cannot start the agent ${JSON.stringify(program)}: E2BIG (an argv element or environment variable is over the kernel's limit of 128 KiB; pass long text on stdin or in a file)`;
  }
  if (err.code !== 'ENOENT' || program === undefined || program.includes('/')) return `cannot start the agent ${JSON.stringify(program)}: ${err.code ?? err.message}`;
  const preset = presetOfProgram(program);
  const fix = preset ? `install ${preset.package} or use the ${imageName(preset.image as ImageName)} image` : 'install it, or use an image that has it';
  return `cannot start ${JSON.stringify(program)}: not on PATH; ${fix}`;
}

function resolvePoolSource(pool: SpecSource | null | undefined, env: NodeJS.ProcessEnv): SpecSource | undefined {
  if (pool === null) return undefined;
  if (pool !== undefined) return pool;
  if (env.PADDOCK_POOL_SPEC) return env.PADDOCK_POOL_SPEC;
  // The pool ConfigMap is optional: a pod without one (or a local run) has no pool.
  return fs.existsSync(specFilePath('Pool', POD_PATHS.pool)) ? POD_PATHS.pool : undefined;
}

interface PreparedConfig {
  readonly workdir: string;
  readonly promptFile?: string;
}

function prepareConfig(
  prompt: string,
  task: TaskSpec,
  harness: HarnessSpec,
  configFiles: readonly PlannedConfigFile[],
  credentials: Credentials,
  dirs: { workspace: string; home: string },
  scratch: string,
  sources: readonly SourceRecord[],
): PreparedConfig {
  const relative = task.workdir ?? (sources.length === 1 ? sources[0].dir : '.');
  // The agent's cwd and the config files written there stay in the workspace, whatever symlinks a repository holds.
  const workdir = resolveInside(dirs.workspace, relative);
  if (!workdir) {
    const field = task.workdir !== undefined ? `task.workdir "${task.workdir}"` : `source directory "${relative}"`;
    throw new RunFailure('source_failed', `${field} leads outside the workspace through a symlink in a fetched repository; name a real directory`);
  }
  fs.mkdirSync(workdir, { recursive: true });
  writeCredentialFiles(credentials.files, dirs.home);
  writeConfigFiles(configFiles, { home: dirs.home, workdir });
  let promptFile: string | undefined;
  if (usesPlaceholder(harness.command, 'prompt_file')) {
    promptFile = path.join(scratch, 'prompt.md');
    fs.writeFileSync(promptFile, prompt, { mode: 0o644 });
  }
  return { workdir, promptFile };
}

/** The git credential helpers are only needed while fetching. */
function removeHelpers(scratch: string): void {
  for (const f of fs.readdirSync(scratch)) {
    if (f.startsWith('git-credential-')) fs.rmSync(path.join(scratch, f), { force: true });
  }
}

function shorten(arg: string): string {
  return arg.length > ARG_LOG_LIMIT ? `${arg.slice(0, ARG_LOG_LIMIT)}…(${arg.length} chars)` : arg;
}
