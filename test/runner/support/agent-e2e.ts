/**
 * Shared by the real-agent e2e suites: run a harness preset from the construct library
 * through run() against the loopback mock model server, with a real git source, and
 * return what a test checks (the file the tool call wrote, results.jsonl, status.json).
 */
import * as fs from 'fs';
import * as path from 'path';
import type { AgentPolicySpec, ConfigFileSpec, HarnessSpec, PoolSpec, SessionRefSpec } from '../../../policy/specs';
import type { SessionState } from '../../../core/session';
import { Capture, listFiles, makeRunDirs, readJson, readJsonl, RunDirs } from '../../support/runner-fixtures';
import { run } from '../../../runner/run';
import { MockModelServer, MockModelServerOptions, startMockModelServer } from '../../support/mock-model-server';
import { MOCK_PROVIDER, MockPreset } from '../../support/mock-provider';

export const AGENTS_BIN = path.resolve(__dirname, '..', '..', 'agents', 'node_modules', '.bin');
export const OPENCODE_BIN = path.resolve(__dirname, '..', '..', 'agents', 'node_modules', 'opencode-linux-x64', 'bin');

/** The CLI is installed (npm ci --prefix test/agents). */
export function agentInstalled(program: string): boolean {
  return [AGENTS_BIN, OPENCODE_BIN].some((dir) => fs.existsSync(path.join(dir, program)));
}

/**
 * `describe` when the CLI is installed; otherwise a failing test saying how to install it
 * (`npm test` installs them itself through test/ensure-agents.js).
 */
export function describeIfInstalled(program: string): (name: string, body: () => void) => void {
  if (agentInstalled(program)) return describe;
  return (name) =>
    describe(name, () => {
      test(`${program} is installed`, () => {
        throw new Error(`${program} is not installed in test/agents; run: npm ci --prefix test/agents`);
      });
    });
}

export const PROOF_FILE = 'proof.txt';
export const PROOF_TEXT = 'written by the agent tool call';
/** The tool call also dumps its environment here (to prove the allowlist held). */
export const ENV_FILE = 'agent-env.txt';
export const FINAL_TEXT = 'Done: wrote proof.txt.\n\n```result\n{"status": "ok", "file": "proof.txt"}\n```\n';

export interface AgentE2eInput {
  /** The preset's spec (Harness.codex().spec etc.). */
  readonly harness: HarnessSpec;
  /** Model name for the task. */
  readonly model: string;
  /** The task's env layer (e.g. base URLs pointing at the mock server); `{mock}` is replaced by its URL. */
  readonly taskEnv?: Record<string, string>;
  /** The task's config layer; `{mock}` in contents is replaced by the mock server's URL. */
  readonly taskConfig?: ConfigFileSpec[];
  /** Credentials in the runner's env: granted through the harness's credentialEnv (local mode). */
  readonly credentials: Record<string, string>;
  readonly timeoutSeconds?: number;
  /** The git server's CA certificate (GIT_SSL_CAINFO for the runner's git only). */
  readonly gitCaFile?: string;
  /** Git source URL the agent works in (optional). */
  readonly sourceUrl?: string;
  /** A pool for the run, made once the mock server is up (e.g. a model gateway in front of it). @default - no pool (local mode) */
  readonly pool?: (mockUrl: string) => Promise<{ readonly spec: PoolSpec; close(): Promise<void> }>;
  /** @default - create PROOF_FILE, then report with a result block */
  readonly prompt?: string;
  /** The command the model's tool call runs (given the run's dirs). @default - writes PROOF_FILE and ENV_FILE */
  readonly shellCommand?: (dirs: RunDirs) => string;
  /** Answer requests yourself, e.g. a 500 to every one (a dead provider). */
  readonly onRequest?: MockModelServerOptions['onRequest'];
  /** A mock model server of the caller's (left running), reached at `mockUrl`. @default - a new one on 127.0.0.1 */
  readonly mock?: { readonly server: MockModelServer; readonly url: string };
  /** More of the runner's environment (e.g. the proxy variables, which the runner passes on). */
  readonly runnerEnv?: Record<string, string>;
  /** Directories put first on PATH. */
  readonly pathPrefix?: string[];
  /** The task's agent policy. */
  readonly policy?: AgentPolicySpec;
  /** @default 'e2e' */
  readonly taskName?: string;
  /** The task's session, and the state the runner continues (as the worker passes it). */
  readonly session?: { readonly ref: SessionRefSpec; readonly state?: SessionState };
}

export interface AgentE2eResult {
  readonly code: number;
  readonly status: any;
  readonly results: unknown[];
  readonly stdout: string;
  readonly stderr: string;
  readonly dirs: RunDirs;
  readonly workdir: string;
  readonly mock: MockModelServer;
  /** Content of PROOF_FILE in the workdir, if the tool call wrote it. */
  readonly proof?: string;
  /** The environment the agent's tool call saw (ENV_FILE), if written. */
  readonly toolEnv?: string;
  /** Wall time of run(). */
  readonly durationMs: number;
}

export async function runAgentE2e(input: AgentE2eInput): Promise<AgentE2eResult> {
  const dirs = makeRunDirs();
  const mock =
    input.mock?.server ??
    (await startMockModelServer({
      shellCommand: input.shellCommand?.(dirs) ?? `echo '${PROOF_TEXT}' > ${PROOF_FILE} && env > ${ENV_FILE}`,
      finalText: FINAL_TEXT,
      onRequest: input.onRequest,
    }));
  const mockUrl = input.mock?.url ?? mock.url;
  const pool = await input.pool?.(mockUrl);
  try {
    const fill = (s: string) => s.split('{mock}').join(mockUrl);
    const task = {
      apiVersion: 'paddock.dev/v1alpha1',
      kind: 'Task',
      name: input.taskName ?? 'e2e',
      pool: pool?.spec.name ?? 'local',
      harness: input.harness.name,
      model: input.model,
      prompt: input.prompt ?? `Create ${PROOF_FILE}, then report with a result block.`,
      timeoutSeconds: input.timeoutSeconds ?? 120,
      ...(input.sourceUrl ? { sources: [{ name: 'repo', type: 'git_https', url: input.sourceUrl, branch: 'main' }] } : {}),
      ...(input.taskEnv ? { env: Object.fromEntries(Object.entries(input.taskEnv).map(([k, v]) => [k, fill(v)])) } : {}),
      ...(input.policy ? { policy: input.policy } : {}),
      ...(input.session ? { session: input.session.ref } : {}),
      ...(input.taskConfig ? { config: { files: input.taskConfig.map((f) => ({ ...f, content: fill(f.content) })) } } : {}),
    };
    fs.mkdirSync(path.join(dirs.specs, 'task'), { recursive: true });
    fs.writeFileSync(path.join(dirs.specs, 'task', 'task.json'), JSON.stringify(task, null, 2));
    fs.mkdirSync(path.join(dirs.specs, 'harness'), { recursive: true });
    fs.writeFileSync(path.join(dirs.specs, 'harness', 'harness.json'), JSON.stringify(input.harness, null, 2));
    if (pool) {
      fs.mkdirSync(path.join(dirs.specs, 'pool'), { recursive: true });
      fs.writeFileSync(path.join(dirs.specs, 'pool', 'pool.json'), JSON.stringify(pool.spec, null, 2));
    }
    const stdout = new Capture();
    const stderr = new Capture();
    const started = Date.now();
    const code = await run({
      task: path.join(dirs.specs, 'task'),
      harness: path.join(dirs.specs, 'harness'),
      pool: pool ? path.join(dirs.specs, 'pool') : null,
      workspace: dirs.workspace,
      home: dirs.home,
      artifacts: dirs.artifacts,
      tmp: dirs.tmp,
      env: {
        PATH: [...(input.pathPrefix ?? []), AGENTS_BIN, OPENCODE_BIN, process.env.PATH].join(path.delimiter),
        ...input.runnerEnv,
        ...input.credentials,
        ...(input.gitCaFile ? { GIT_SSL_CAINFO: input.gitCaFile } : {}),
        // Must not reach the agent.
        PADDOCK_E2E_RUNNER_ONLY: 'runner-only-value',
      },
      stdout,
      stderr,
      killGraceMs: 2000,
      ...(input.session?.state ? { session: input.session.state } : {}),
    });
    const durationMs = Date.now() - started;
    const status = readJson(path.join(dirs.artifacts, 'status.json'));
    const workdir = input.sourceUrl ? path.join(dirs.workspace, 'repo') : dirs.workspace;
    const proofPath = path.join(workdir, PROOF_FILE);
    const resultsFile = path.join(dirs.artifacts, 'results.jsonl');
    return {
      code,
      status,
      results: fs.existsSync(resultsFile) ? readJsonl(resultsFile) : [],
      stdout: stdout.text,
      stderr: stderr.text,
      dirs,
      workdir,
      mock,
      durationMs,
      ...(fs.existsSync(proofPath) ? { proof: fs.readFileSync(proofPath, 'utf8') } : {}),
      ...(fs.existsSync(path.join(workdir, ENV_FILE)) ? { toolEnv: fs.readFileSync(path.join(workdir, ENV_FILE), 'utf8') } : {}),
    };
  } finally {
    await pool?.close();
    if (!input.mock) await mock.close();
  }
}

/** What every agent run must show. */
export function expectAgentRun(r: AgentE2eResult, secret: string): void {
  if (r.code !== 0) {
    throw new Error(`agent run failed (${r.status.outcome}: ${r.status.message})\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  }
  expect(r.status).toMatchObject({ outcome: 'succeeded', exitCode: 0, counts: { results: 1, parseErrors: 0 } });
  expect(r.proof).toBe(`${PROOF_TEXT}\n`);
  // A variable set on the runner only never reached the agent (nor its tool's shell).
  expect(r.toolEnv).toMatch(/^HOME=/m);
  expect(r.toolEnv).not.toContain('PADDOCK_E2E_RUNNER_ONLY');
  expect(r.results).toEqual([{ status: 'ok', file: 'proof.txt' }]);
  // The CLI really talked to the mock, and the tool result went back to it.
  expect(r.mock.requests.some((q) => q.kind === 'tool_call')).toBe(true);
  expect(r.mock.requests.some((q) => q.kind === 'final')).toBe(true);
  // The credential reached the CLI (it sent it to the mock) but no log or artifact.
  expect(r.mock.requests.some((q) => JSON.stringify(q.headers).includes(secret))).toBe(true);
  // A tool that dumped its environment into the checkout put the key in the change: that patch is withheld.
  if (r.toolEnv?.includes(secret)) expect(r.status.changes).toEqual([expect.objectContaining({ patchWithheld: true })]);
  // Every artifact, patches/ included.
  const artifacts = listFiles(r.dirs.artifacts).map((f) => fs.readFileSync(path.join(r.dirs.artifacts, f), 'utf8'));
  expect([r.stdout, r.stderr, ...artifacts].join('\n')).not.toContain(secret);
}


/** A preset against the mock with its recipe from test/support/mock-provider.ts ({mock} = the server's URL). */
export function runPresetE2e(preset: MockPreset, harness: HarnessSpec, secret: string, sourceUrl?: string, more: Partial<AgentE2eInput> = {}) {
  const recipe = MOCK_PROVIDER[preset];
  return runAgentE2e({
    harness,
    model: recipe.model,
    sourceUrl,
    credentials: { [recipe.secretEnv]: secret },
    taskEnv: recipe.env('{mock}'),
    taskConfig: recipe.config('{mock}'),
    ...more,
  });
}
