/**
 * `paddock tasks submit|get|list|watch|results|cancel`: the controller's task
 * API for people, like kubectl: `-o json|yaml` prints what the API returned
 * (whatever the run view holds), the default is a short text form.
 *
 * Exit codes: 0 done (watch: the task succeeded); 1 the watched task failed;
 * 2 bad arguments or a spec the controller refused (400/422); 3 no such task,
 * or no run yet; 4 watch timed out; 5 not authenticated or not allowed
 * (401/403); 7 the controller cannot be reached.
 */
import * as fs from 'fs';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { TaskSpec, validateSpec } from '../policy/specs';
import { OptionValues, positiveInt, UsageError } from './args';
import type { CliIo, Command } from './main';
import { ClientError, connect, EXIT, failure, TaskApi } from './task-client';

export const CONNECT_OPTIONS = {
  server: { type: 'string', example: 'http://127.0.0.1:8080' },
  token: { type: 'string', example: '"$(kubectl create token alice)"' },
  'token-file': { type: 'string', example: '.paddock/local/token' },
  kubeconfig: { type: 'string', example: '~/.kube/config' },
  context: { type: 'string', example: 'kind-paddock' },
  namespace: { type: 'string', short: 'n', example: 'paddock' },
  output: { type: 'string', short: 'o', example: 'json' },
} as const;

export const CONNECT_USAGE = `Connection:
  --server URL         the task API                    [env PADDOCK_SERVER; default: a port-forward
                       to the controller through the kubeconfig]
  --token TOKEN        bearer token                    [env PADDOCK_TOKEN]
  --token-file FILE    file holding it                 [env PADDOCK_TOKEN_FILE; default: the
                       kubeconfig user's token]
  --kubeconfig FILE    [default $KUBECONFIG or ~/.kube/config]
  --context NAME       kubeconfig context              [default: the current one]
  -n, --namespace NS   the platform's namespace        [default paddock]
  -o, --output FORMAT  json or yaml                    [default: text]
  -h, --help           this text

Exit codes: 0 done (watch: succeeded); 1 the task failed (watch); 2 bad arguments or a
spec the controller refused; 3 no such task or no run yet; 4 timed out (watch);
5 not authenticated or not allowed (401/403); 7 the controller cannot be reached.
`;

export type ConnectValues = OptionValues<typeof CONNECT_OPTIONS>;
const TERMINAL = new Set(['Succeeded', 'Failed']);

function outputFormat(values: ConnectValues): 'json' | 'yaml' | 'text' {
  const o = values.output ?? 'text';
  if (o !== 'json' && o !== 'yaml' && o !== 'text') throw new UsageError(`-o ${o} is not an output format; write -o json or -o yaml (or leave it out for text)`);
  return o;
}

export function print(io: CliIo, format: 'json' | 'yaml' | 'text', value: unknown, text: () => string): void {
  if (format === 'json') io.stdout(JSON.stringify(value, null, 2) + '\n');
  else if (format === 'yaml') io.stdout(toYaml(value, { sortMapEntries: false }));
  else io.stdout(text());
}

/** Connect, run, close; a ClientError becomes its exit code with the message on stderr. `words`: "submit", or "sessions get" for another command group. */
export async function withApi(values: ConnectValues, io: CliIo, env: NodeJS.ProcessEnv, words: string, body: (api: TaskApi, format: 'json' | 'yaml' | 'text') => Promise<number>): Promise<number> {
  const format = outputFormat(values);
  const failed = (err: unknown): number => {
    if (!(err instanceof ClientError)) throw err;
    io.stderr(`paddock ${words.includes(' ') ? words : `tasks ${words}`}: ${err.message}\n`);
    return err.exitCode;
  };
  let api: TaskApi;
  try {
    // Finding the controller fails with its own exit code too (no ready pod, not allowed to port-forward).
    api = await connect({ server: values.server, token: values.token, tokenFile: values['token-file'], kubeconfig: values.kubeconfig, context: values.context, namespace: values.namespace }, env);
  } catch (err) {
    return failed(err);
  }
  try {
    return await body(api, format);
  } catch (err) {
    return failed(err);
  } finally {
    await api.close();
  }
}

function oneName(positionals: string[], words: string): string {
  if (positionals.length !== 1) throw new UsageError(`give the task's name, e.g. paddock tasks ${words} fix-readme`);
  return positionals[0];
}

/** A run's change and delivery in a few words, for the text views (JSON and YAML carry them whole). */
export function changeWords(run: { changes?: any[]; delivery?: any } | undefined): string {
  const parts = (run?.changes ?? []).map((c: any) => {
    const marker = c.patchWithheld ? ', patch withheld (it held a credential)' : c.patchTooLarge ? ', patch too large to store' : '';
    return `${c.source}: ${c.files} file(s) +${c.insertions} -${c.deletions}${marker}`;
  });
  const d = run?.delivery;
  if (d) {
    const where = d.branch ? ` ${d.branch}` : '';
    const what = d.state === 'pushed' && d.commit ? `pushed ${String(d.commit).slice(0, 12)} to${where}` : `delivery ${d.state}${where}`;
    parts.push(`${what}${d.pullRequest?.url ? `, ${d.pullRequest.url}` : ''}${d.reason ? ` (${d.reason})` : ''}`);
  }
  return parts.length ? `\t${parts.join('; ')}` : '';
}

function viewLine(v: any): string {
  const run = v.run;
  // A waiting task shows its place in its pool's queue, and the session task it waits for.
  const place = v.queue ? ` (${v.queue.position} of ${v.queue.length}, priority ${v.priority ?? 500})` : '';
  const waits = v.session?.waitingFor ? `\twaits for task ${v.session.waitingFor} of session ${v.session.name}` : '';
  return `${v.name}\t${v.phase}${place}\t${v.pool ?? '-'}\t${run ? `${run.name} attempt ${run.attempt}${run.outcome ? ` ${run.outcome}` : ''}` : '-'}${waits}${changeWords(run)}${(run?.message ?? v.message) ? `\t${run?.message ?? v.message}` : ''}\n`;
}

async function getTask(api: TaskApi, name: string): Promise<any> {
  const r = await api.call('GET', `/v1/tasks/${encodeURIComponent(name)}`);
  if (r.status !== 200) throw failure(`task "${name}"`, r);
  return r.body;
}

/** Progress lines until the task's run ends; the exit code says how. */
async function watchTask(api: TaskApi, io: CliIo, format: 'json' | 'yaml' | 'text', name: string, intervalMs: number, timeoutMs: number | undefined): Promise<number> {
  const end = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const v = await getTask(api, name);
    const key = JSON.stringify([v.phase, v.run?.name, v.run?.phase, v.run?.attempt, v.run?.message, v.message]);
    if (key !== last) {
      last = key;
      if (format === 'text') io.stdout(`${new Date().toISOString()}\t${viewLine(v)}`);
      else if (format === 'json') io.stdout(JSON.stringify(v) + '\n');
      else io.stdout(`---\n${toYaml(v)}`);
    }
    if (v.phase === 'Invalid') return EXIT.taskFailed;
    if (v.run && TERMINAL.has(v.run.phase)) return v.run.phase === 'Succeeded' ? EXIT.ok : EXIT.taskFailed;
    if (Date.now() > end) {
      io.stderr(`paddock tasks watch: task "${name}" is still ${v.phase} after ${Math.round(timeoutMs! / 1000)} s\n`);
      return EXIT.timedOut;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

const SUBMIT_OPTIONS = {
  ...CONNECT_OPTIONS,
  file: { type: 'string', short: 'f', example: 'task.yaml' },
  name: { type: 'string', example: 'fix-readme' },
  pool: { type: 'string', example: 'codex' },
  harness: { type: 'string', example: 'codex' },
  prompt: { type: 'string', example: '"Fix the typos in README.md"' },
  model: { type: 'string', example: 'gpt-5-codex' },
  source: { type: 'string', multiple: true, example: 'https://github.com/example/repo.git#main' },
  'timeout-seconds': { type: 'string', example: '1800' },
  priority: { type: 'string', example: '800' },
  session: { type: 'string', example: 'fix-flaky-tests' },
  'new-session': { type: 'boolean' },
  'fresh-workspace': { type: 'boolean' },
  watch: { type: 'boolean', short: 'w' },
} as const;

function priorityOf(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 1000) throw new UsageError(`--priority "${value}" must be a whole number from 0 to 1000 (default 500; higher runs first), e.g. --priority 800`);
  return n;
}

/** A task from -f FILE (YAML or JSON), or from the flags. */
export function taskFromArgs(values: OptionValues<typeof SUBMIT_OPTIONS>): TaskSpec {
  const flagged = ['name', 'pool', 'harness', 'prompt', 'model', 'source', 'timeout-seconds', 'priority', 'session', 'new-session', 'fresh-workspace'].filter((f) => values[f as keyof typeof values] !== undefined);
  let spec: Record<string, unknown>;
  if (values.file) {
    if (flagged.length) throw new UsageError(`-f ${values.file} holds the whole task; leave out --${flagged.join(', --')} (or write them into the file)`);
    let text: string;
    try {
      text = fs.readFileSync(values.file, 'utf8');
    } catch (err) {
      throw new UsageError(`-f ${values.file} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give a task.yaml or task.json`);
    }
    try {
      spec = parseYaml(text);
    } catch (err) {
      throw new UsageError(`-f ${values.file} is not YAML or JSON: ${(err as Error).message}`);
    }
  } else {
    const missing = ['name', 'pool', 'prompt'].filter((f) => values[f as keyof typeof values] === undefined);
    if (missing.length) throw new UsageError(`give -f task.yaml, or --name, --pool and --prompt (missing: --${missing.join(', --')}), e.g. --name fix-readme --pool codex --prompt "Fix the typos"`);
    const sources = (values.source ?? []).map((s, i) => {
      const [url, branch] = s.split('#');
      const name = /([^/]+?)(\.git)?\/?$/.exec(url)?.[1]?.toLowerCase().replace(/[^a-z0-9-]/g, '-') ?? `source-${i + 1}`;
      return { name, type: 'git_https', url, ...(branch ? { branch } : {}) };
    });
    spec = {
      apiVersion: 'paddock.dev/v1alpha1',
      kind: 'Task',
      name: values.name,
      pool: values.pool,
      harness: values.harness ?? values.pool,
      prompt: values.prompt,
      ...(values.model ? { model: values.model } : {}),
      ...(sources.length ? { sources } : {}),
      ...(values['timeout-seconds'] ? { timeoutSeconds: positiveInt(values['timeout-seconds'], '--timeout-seconds', 1800) } : {}),
      ...(values.priority !== undefined ? { priority: priorityOf(values.priority) } : {}),
      ...(values.session ? { session: { name: values.session, ...(values['new-session'] ? { create: true } : {}), ...(values['fresh-workspace'] ? { freshWorkspace: true } : {}) } } : {}),
    };
    if (!values.session && (values['new-session'] || values['fresh-workspace'])) throw new UsageError(`--${values['new-session'] ? 'new-session' : 'fresh-workspace'} goes with --session NAME, e.g. --session fix-flaky-tests --new-session`);
  }
  const problems = validateSpec('Task', spec);
  if (problems.length) throw new UsageError(`the task does not validate (task.schema.json):\n  ${problems.join('\n  ')}`);
  return spec as unknown as TaskSpec;
}

export const submitCommand: Command<typeof SUBMIT_OPTIONS> = {
  usage: `Usage: paddock tasks submit -f task.yaml [options]
       paddock tasks submit --name NAME --pool POOL --prompt TEXT [--harness H] [--source URL[#BRANCH]]... [options]

Submits a task (task.schema.json) to the controller; the same name again replaces it
(a changed spec runs again).

Task:
  -f, --file FILE      the task as YAML or JSON
  --name, --pool, --prompt, --harness [default: the pool's name], --model,
  --source URL[#BRANCH] (repeatable), --timeout-seconds N
  --priority N         0 to 1000, higher runs first    [default 500]
  --session NAME       continue session NAME (its tasks run one at a time, each from the
                       previous run's change and conversation)
  --new-session        start it (with --session); --fresh-workspace: its conversation
                       only, on a fresh checkout
  -w, --watch          then watch it until it ends (exit code as watch)

${CONNECT_USAGE}`,
  options: SUBMIT_OPTIONS,
  run: ({ values }, io, env) => {
    const spec = taskFromArgs(values);
    return withApi(values, io, env, 'submit', async (api, format) => {
      const r = await api.call('POST', '/v1/tasks', spec);
      if (r.status !== 200 && r.status !== 201) throw failure(`submit "${spec.name}"`, r);
      print(io, format, r.body, () => `task ${r.body.name} ${r.status === 201 ? 'created' : 'updated'}: run ${r.body.run}\n`);
      return values.watch ? watchTask(api, io, format, spec.name, 1000, undefined) : EXIT.ok;
    });
  },
};

export const getCommand: Command<typeof CONNECT_OPTIONS> = {
  usage: `Usage: paddock tasks get NAME [options]\n\nA task's phase, pool and current run (attempt, outcome, message).\n\n${CONNECT_USAGE}`,
  options: CONNECT_OPTIONS,
  maxPositionals: 1,
  run: ({ values, positionals }, io, env) => {
    const name = oneName(positionals, 'get');
    return withApi(values, io, env, 'get', async (api, format) => {
      const v = await getTask(api, name);
      print(io, format, v, () => viewLine(v));
      return EXIT.ok;
    });
  },
};

export const listCommand: Command<typeof CONNECT_OPTIONS> = {
  usage: `Usage: paddock tasks list [options]\n\nThe tasks of every pool you may list.\n\n${CONNECT_USAGE}`,
  options: CONNECT_OPTIONS,
  run: ({ values }, io, env) =>
    withApi(values, io, env, 'list', async (api, format) => {
      const r = await api.call('GET', '/v1/tasks');
      if (r.status !== 200) throw failure('list', r);
      print(io, format, r.body, () => `NAME\tPHASE\tPOOL\tRUN\n${r.body.tasks.map(viewLine).join('')}`);
      return EXIT.ok;
    }),
};

const WATCH_OPTIONS = { ...CONNECT_OPTIONS, interval: { type: 'string', example: '1000' }, timeout: { type: 'string', example: '600' } } as const;

export const watchCommand: Command<typeof WATCH_OPTIONS> = {
  usage: `Usage: paddock tasks watch NAME [--interval MS] [--timeout SECONDS] [options]

Prints a line whenever the task's run changes, until it ends.
  --interval MS        how often to look               [default 1000]
  --timeout SECONDS    give up after this long (exit 4) [default: never]

${CONNECT_USAGE}`,
  options: WATCH_OPTIONS,
  maxPositionals: 1,
  run: ({ values, positionals }, io, env) => {
    const name = oneName(positionals, 'watch');
    const interval = positiveInt(values.interval, '--interval', 1000);
    const timeout = values.timeout !== undefined ? positiveInt(values.timeout, '--timeout', 1) * 1000 : undefined;
    return withApi(values, io, env, 'watch', (api, format) => watchTask(api, io, format, name, interval, timeout));
  },
};

export const resultsCommand: Command<typeof CONNECT_OPTIONS> = {
  usage: `Usage: paddock tasks results NAME [options]

The current run's results (one JSON object per line in text form) and status.

${CONNECT_USAGE}`,
  options: CONNECT_OPTIONS,
  maxPositionals: 1,
  run: ({ values, positionals }, io, env) => {
    const name = oneName(positionals, 'results');
    return withApi(values, io, env, 'results', async (api, format) => {
      const r = await api.call('GET', `/v1/tasks/${encodeURIComponent(name)}/results`);
      if (r.status !== 200) throw failure(`results of "${name}"`, r);
      print(io, format, r.body, () => {
        io.stderr(`run ${r.body.run}: ${r.body.phase}${r.body.status?.outcome ? ` (${r.body.status.outcome})` : ''}, ${r.body.results.length} result(s)${r.body.truncated ? ', truncated' : ''}${changeWords(r.body).replace('\t', '; ')}\n`);
        return r.body.results.map((x: unknown) => JSON.stringify(x) + '\n').join('');
      });
      return EXIT.ok;
    });
  },
};

export const cancelCommand: Command<typeof CONNECT_OPTIONS> = {
  usage: `Usage: paddock tasks cancel NAME [options]

Removes the task and its runs; a running agent is stopped. A task declared in your
GitOps source comes back on the next sync: remove it there.

${CONNECT_USAGE}`,
  options: CONNECT_OPTIONS,
  maxPositionals: 1,
  run: ({ values, positionals }, io, env) => {
    const name = oneName(positionals, 'cancel');
    return withApi(values, io, env, 'cancel', async (api, format) => {
      const r = await api.call('DELETE', `/v1/tasks/${encodeURIComponent(name)}`);
      if (r.status !== 200) throw failure(`cancel "${name}"`, r);
      print(io, format, r.body, () => `task ${name} cancelled${r.body.run ? ` (run ${r.body.run} was ${r.body.phase})` : ''}\n`);
      return EXIT.ok;
    });
  },
};
