/**
 * `paddock sessions list|get|delete`: the sessions the controller keeps (ConfigMaps
 * `session-<name>`), through its task API.
 */
import { UsageError } from './args';
import type { Command } from './main';

const OPTIONS = { controller: { type: 'string', example: 'http://127.0.0.1:8080' }, json: { type: 'boolean' } } as const;

const usage = (what: string, args: string, text: string) => `Usage: paddock sessions ${what}${args} [--controller URL] [--json]

${text}

Options:
  --controller URL   the controller's task API [default $PADDOCK_CONTROLLER, else http://127.0.0.1:8080]
                     (kubectl -n paddock port-forward svc/paddock-controller 8080:80)
  --json             the API's JSON as it is
  -h, --help         this text
`;

async function call(env: NodeJS.ProcessEnv, url: string | undefined, method: string, route: string): Promise<any> {
  const base = url ?? env.PADDOCK_CONTROLLER ?? 'http://127.0.0.1:8080';
  let res: Response;
  try {
    res = await fetch(new URL(route, base), { method });
  } catch (err) {
    throw new UsageError(`cannot reach the controller at ${base} (${(err as Error).message}); pass --controller URL or port-forward its Service`);
  }
  const body: any = await res.json().catch(() => ({}));
  if (res.status === 404) throw new UsageError(String(body.error ?? `${route}: not found`));
  if (!res.ok) throw new Error(`${method} ${route}: HTTP ${res.status} ${JSON.stringify(body)}`);
  return body;
}

function oneName(positionals: string[]): string {
  if (positionals.length !== 1) throw new UsageError('takes one session name, e.g. paddock sessions get fix-flaky-tests');
  return positionals[0];
}

export const listCommand: Command<typeof OPTIONS> = {
  usage: usage('list', '', 'Lists the sessions: name, turns so far, stored bytes, and the tasks of each.'),
  options: OPTIONS,
  run: async (line, io, env) => {
    const body = await call(env, line.values.controller, 'GET', '/v1/sessions');
    if (line.values.json) io.stdout(JSON.stringify(body, null, 2) + '\n');
    else for (const s of body.sessions) io.stdout(`${s.name}\t${s.turns.length} turn(s)\t${s.bytes} bytes\ttasks: ${s.tasks.join(', ') || '-'}\n`);
    return 0;
  },
};

/** A command on one session: GET or DELETE /v1/sessions/NAME. */
function oneSession(method: 'GET' | 'DELETE', what: string, text: string, show: (body: any, name: string, json: boolean) => string): Command<typeof OPTIONS> {
  return {
    usage: usage(what, ' NAME', text),
    options: OPTIONS,
    maxPositionals: 1,
    run: async (line, io, env) => {
      const name = oneName(line.positionals);
      const body = await call(env, line.values.controller, method, `/v1/sessions/${encodeURIComponent(name)}`);
      io.stdout(show(body, name, Boolean(line.values.json)));
      return 0;
    },
  };
}

const asJson = (body: unknown) => JSON.stringify(body, null, 2) + '\n';

export const getCommand = oneSession('GET', 'get', 'Shows one session: its turns, the workspace change carried over per source, its tasks.', asJson);

export const deleteCommand = oneSession('DELETE', 'delete', "Removes a session's stored state; its next task must create the session again.", (body, name, json) => (json ? asJson(body) : `deleted session ${name}\n`));
