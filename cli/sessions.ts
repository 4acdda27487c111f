/**
 * `paddock sessions list|get|delete`: the sessions the controller keeps (ConfigMaps
 * `session-<name>`), through its task API, with the same connection and token as
 * `paddock tasks` (RBAC: `tasks/sessions` of the session's pool). Exit codes as
 * `paddock tasks`: 3 no such session, 5 not authenticated or not allowed.
 */
import { UsageError } from './args';
import type { Command } from './main';
import { EXIT, failure } from './task-client';
import { CONNECT_OPTIONS, CONNECT_USAGE, print, withApi } from './tasks';

const usage = (what: string, args: string, text: string) => `Usage: paddock sessions ${what}${args} [options]

${text}

${CONNECT_USAGE}`;

function oneName(positionals: string[], what: string): string {
  if (positionals.length !== 1) throw new UsageError(`give the session's name, e.g. paddock sessions ${what} fix-flaky-tests`);
  return positionals[0];
}

const sessionLine = (s: any) => `${s.name}\t${s.pool ?? '-'}\t${s.turns.length}\t${s.bytes}\t${s.tasks.join(', ') || '-'}\n`;

export const listCommand: Command<typeof CONNECT_OPTIONS> = {
  usage: usage('list', '', 'The sessions of the pools you may list: name, pool, turns so far, stored bytes, its tasks.'),
  options: CONNECT_OPTIONS,
  run: ({ values }, io, env) =>
    withApi(values, io, env, 'sessions list', async (api, format) => {
      const r = await api.call('GET', '/v1/sessions');
      if (r.status !== 200) throw failure('list sessions', r);
      print(io, format, r.body, () => `NAME\tPOOL\tTURNS\tBYTES\tTASKS\n${r.body.sessions.map(sessionLine).join('')}`);
      return EXIT.ok;
    }),
};

/** A command on one session: GET or DELETE /v1/sessions/NAME. */
function oneSession(method: 'GET' | 'DELETE', what: string, text: string, show: (body: any, name: string) => string): Command<typeof CONNECT_OPTIONS> {
  return {
    usage: usage(what, ' NAME', text),
    options: CONNECT_OPTIONS,
    maxPositionals: 1,
    run: ({ values, positionals }, io, env) => {
      const name = oneName(positionals, what);
      return withApi(values, io, env, `sessions ${what}`, async (api, format) => {
        const r = await api.call(method, `/v1/sessions/${encodeURIComponent(name)}`);
        if (r.status !== 200) throw failure(`session "${name}"`, r);
        print(io, format, r.body, () => show(r.body, name));
        return EXIT.ok;
      });
    },
  };
}

export const getCommand = oneSession('GET', 'get', "One session: its turns, how the CLI resumes (and its conversation state's size), the workspace change carried over per source, its tasks.", (s) =>
  [
    `session ${s.name}: pool ${s.pool ?? '-'}, harness ${s.harness}, resumed by ${s.resume}, ${s.bytes} bytes`,
    ...(s.cli ? [`CLI conversation state: ${s.cli.files} file(s), ${s.cli.bytes} bytes (${s.cli.stored} stored)`] : []),
    ...s.turns.map((t: any, i: number) => `turn ${i + 1}: task ${t.task}`),
    ...Object.entries(s.patches).map(([src, p]: [string, any]) => `source ${src}: change on ${p.base} (${p.bytes} bytes)`),
    `tasks: ${s.tasks.join(', ') || '-'}`,
    '',
  ].join('\n'),
);

export const deleteCommand = oneSession('DELETE', 'delete', "Removes a session's stored state; its next task must create the session again.", (_body, name) => `deleted session ${name}\n`);
