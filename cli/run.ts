/**
 * `paddock run ...`: parse the arguments (everything after the word `run`) and call
 * run(). Nothing else lives here.
 *
 * In a pod, `paddock run` with no arguments reads the mounted ConfigMaps under
 * /etc/paddock and works in /workspace, /home/agent, /artifacts. Locally,
 * `paddock run --task task.json --harness harness.json` runs the same code path in a
 * fresh temporary directory (unless --workspace/--home/--artifacts say otherwise).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Harness } from '../core/harness';
import { POD_PATHS, run, RunOptions } from '../runner/run';
import { SpecSource } from '../runner/load-specs';
import { EXIT_CODES } from '../runner/status';
import { TERMINATION_LOG, writeTerminationMessage } from '../runner/termination-message';
import { existingDir, OptionValues, parseCommandLine, sandboxOption, UsageError } from './args';
import type { Command } from './main';

export const RUN_USAGE = `Usage: paddock run [options]

Runs one agent task: fetch sources, write config layers, exec the agent CLI,
extract \`\`\`result blocks into <artifacts>/results.jsonl, write <artifacts>/status.json.

Options:
  --task FILE          the task spec (task.json)              [env PADDOCK_TASK_SPEC]
  --task-dir DIR       a folder holding task.json (a mounted ConfigMap)
                                                   [default /etc/paddock/task]
  --harness FILE|DIR|PRESET
                       the harness spec (harness.json), or a preset name:
                       ${Harness.presets().join(', ')}   [env PADDOCK_HARNESS_SPEC]
                                                   [default /etc/paddock/harness]
  --pool FILE|DIR      the pool spec (credentials, egress, config layer; optional)
                                          [env PADDOCK_POOL_SPEC; default /etc/paddock/pool if present]
  --no-pool            ignore any pool spec (local mode)
  --workspace DIR      where sources are fetched              [env PADDOCK_WORKSPACE]
  --home DIR           the agent's HOME                       [env PADDOCK_HOME]
  --artifacts DIR      status.json, results.jsonl, logs       [env PADDOCK_ARTIFACTS]
  --tmp DIR            scratch space                          [env PADDOCK_TMP]
  --sandbox bwrap      run the agent under bubblewrap: only the workspace, HOME and /tmp writable
  --kill-grace SECONDS time between SIGTERM and SIGKILL       [default 10]
  --credential-dir DIR the pool's Secrets as files DIR/<secret>/<key>, in place of
                       the pod's mounts (/var/run/paddock/secrets)
  --phase fetch|agent  only fetch the sources (the Job's init container, which alone
                       mounts the git Secrets), or everything but the fetch  [default: both]
  --session-state FILE the state of the task's session to continue (a Job's pod: the
                       session's ConfigMap, mounted by the controller)
  -h, --help           this text

With the default task location the directories default to the pod's
(/workspace, /home/agent, /artifacts, /tmp); with --task/--task-dir (local mode)
they default to a new temporary directory, printed at the start.

Exit codes: ${Object.entries(EXIT_CODES)
  .map(([k, v]) => `${v} ${k}`)
  .join(', ')}.
`;

export interface ParsedRunArgs {
  readonly options: RunOptions;
  /** Local mode: the spec came from --task/--task-dir, so unset directories go to a temp dir. */
  readonly local: boolean;
  readonly help: boolean;
}

const RUN_OPTIONS = {
  task: { type: 'string', example: 'task.json' },
  'task-dir': { type: 'string', example: '/etc/paddock/task' },
  harness: { type: 'string', example: 'codex' },
  pool: { type: 'string', example: 'pool.json' },
  'no-pool': { type: 'boolean' },
  workspace: { type: 'string', example: 'PATH' },
  home: { type: 'string', example: 'PATH' },
  artifacts: { type: 'string', example: 'PATH' },
  tmp: { type: 'string', example: 'PATH' },
  sandbox: { type: 'string', example: 'bwrap' },
  'kill-grace': { type: 'string', example: '10' },
  phase: { type: 'string', example: 'fetch' },
  'credential-dir': { type: 'string', example: './secrets' },
  'session-state': { type: 'string', example: '/etc/paddock/session/state.json' },
} as const;

export function parseRunArgs(argv: readonly string[]): ParsedRunArgs {
  const line = parseCommandLine(argv, RUN_OPTIONS);
  return line.help ? { options: {}, local: false, help: true } : runArgsOf(line.values);
}

function runArgsOf(v: OptionValues<typeof RUN_OPTIONS>): ParsedRunArgs {
  if (v.task !== undefined && v['task-dir'] !== undefined) {
    throw new UsageError('give either --task FILE or --task-dir DIR, not both');
  }
  if (v['no-pool'] && v.pool !== undefined) throw new UsageError('give either --pool or --no-pool, not both');
  const sandbox = sandboxOption(v.sandbox);
  const phase = v.phase;
  if (phase !== undefined && phase !== 'fetch' && phase !== 'agent' && phase !== 'all') {
    throw new UsageError(`--phase "${phase}" is unknown; write --phase fetch (sources only) or --phase agent (all but the sources)`);
  }
  const grace = v['kill-grace'];
  let killGraceMs: number | undefined;
  if (grace !== undefined) {
    const n = Number(grace);
    if (!Number.isFinite(n) || n < 0) throw new UsageError(`--kill-grace "${grace}" must be a number of seconds, e.g. --kill-grace 10`);
    killGraceMs = Math.round(n * 1000);
  }
  const task: SpecSource | undefined = v.task ?? v['task-dir'];
  const options: RunOptions = {
    ...(task !== undefined ? { task } : {}),
    ...(v.harness !== undefined ? { harness: harnessSource(v.harness) } : {}),
    ...(v['no-pool'] ? { pool: null } : v.pool !== undefined ? { pool: v.pool } : {}),
    ...(v.workspace !== undefined ? { workspace: v.workspace } : {}),
    ...(v.home !== undefined ? { home: v.home } : {}),
    ...(v.artifacts !== undefined ? { artifacts: v.artifacts } : {}),
    ...(v.tmp !== undefined ? { tmp: v.tmp } : {}),
    ...(sandbox ? { sandbox } : {}),
    ...(killGraceMs !== undefined ? { killGraceMs } : {}),
    ...(phase !== undefined ? { phase } : {}),
    ...(v['credential-dir'] !== undefined ? { credentialDir: existingDir(v['credential-dir'], '--credential-dir') } : {}),
    ...(v['session-state'] !== undefined ? { sessionFile: v['session-state'] } : {}),
  };
  return { options, local: task !== undefined, help: false };
}

/** A file or folder wins over a preset of the same name. */
function harnessSource(value: string): SpecSource {
  if (fs.existsSync(value)) return value;
  if (Harness.presets().includes(value)) return { inline: Harness.fromPreset(value).spec, label: `preset "${value}"` };
  throw new UsageError(`--harness "${value}" is neither a file, a folder nor a harness preset (${Harness.presets().join(', ')})`);
}

/**
 * `paddock run`. SIGTERM/SIGINT stop the run (outcome `terminated`, exit 5)
 * after the agent's process group was stopped and the artifacts were written.
 */
export const runCommand: Command<typeof RUN_OPTIONS> = {
  usage: RUN_USAGE,
  options: RUN_OPTIONS,
  run: (line, _io, env) => runWith(runArgsOf(line.values), env),
};

async function runWith(parsed: ParsedRunArgs, env: NodeJS.ProcessEnv): Promise<number> {
  const options = parsed.local ? withLocalDirs(parsed.options, env) : parsed.options;
  const controller = new AbortController();
  const stop = (sig: NodeJS.Signals): void => {
    process.stderr.write(`[paddock] got ${sig}; stopping the agent\n`);
    controller.abort();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  try {
    const code = await run({ ...options, env, signal: controller.signal });
    // In a Job's pod: the report goes to the controller through the termination message.
    if (!parsed.local && options.phase !== 'fetch' && fs.existsSync(TERMINATION_LOG)) {
      const lines = writeTerminationMessage(options.artifacts ?? env.PADDOCK_ARTIFACTS ?? POD_PATHS.artifacts);
      // The patches and the session's state, last in the log: the controller reads exactly this many lines of its tail.
      if (lines?.length) process.stdout.write(lines.join('\n') + '\n');
    }
    return code;
  } finally {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
  }
}

/** Local mode: directories not given by flag or env go to a fresh temporary directory. */
function withLocalDirs(options: RunOptions, env: NodeJS.ProcessEnv): RunOptions {
  const keys = [
    ['workspace', 'PADDOCK_WORKSPACE'],
    ['home', 'PADDOCK_HOME'],
    ['artifacts', 'PADDOCK_ARTIFACTS'],
  ] as const;
  const missing = keys.filter(([k, e]) => options[k] === undefined && !env[e]);
  if (missing.length === 0) return options;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-run-'));
  process.stderr.write(`[paddock] local run directory: ${root}\n`);
  const extra: Record<string, string> = {};
  for (const [k] of missing) extra[k] = path.join(root, k);
  return { ...options, ...extra };
}

export { POD_PATHS };
