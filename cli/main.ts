/**
 * `paddock` command line: finds the command, parses its argv with the one
 * parser (args.ts), runs it, and turns bad usage into exit 2 on one error path.
 * Each command's module loads only when that command runs, which keeps the
 * runner's start-up short and the synthesis stack out of runtime commands.
 *
 * Exit codes: a command's own (see its --help and the README); 2 for bad usage
 * everywhere; 6 for an internal error (bin/paddock.js).
 */
import { PaddockValidationError } from '../core/validation';
import { SpecError } from '../policy/specs';
import { CommandLine, oneOf, OptionSpecs, parseCommandLine, UsageError } from './args';
import { packageVersion } from './version';

export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

/** One command: its usage text, its flags, and what it does with them. */
export interface Command<O extends OptionSpecs = OptionSpecs> {
  readonly usage: string;
  readonly options: O;
  /** How many positional arguments it takes at most. @default 0 */
  readonly maxPositionals?: number;
  run(line: CommandLine<O>, io: CliIo, env: NodeJS.ProcessEnv): Promise<number> | number;
}

interface Entry {
  readonly synopsis: string;
  readonly summary: string;
  readonly load: () => Promise<Command<any>>;
}

/** Every command, by its words; "harness dry-run" is the subcommand dry-run of harness. */
const COMMANDS: Readonly<Record<string, Entry>> = {
  run: {
    synopsis: 'paddock run [--task FILE | --task-dir DIR] [--harness FILE|DIR|PRESET] [--pool FILE|DIR] [options]',
    summary: 'Run one task with the agent CLI (in a pod, or locally).',
    load: async () => (await import('./run')).runCommand,
  },
  'harness dry-run': {
    synopsis: 'paddock harness dry-run <preset|harness.json> --prompt TEXT [--model M] [--prompt-via argv|stdin|file] [--prompt-file PATH] [--workdir DIR]',
    summary: 'Print the exact argv the runner would exec, as a JSON array.',
    load: async () => (await import('./harness')).dryRunCommand,
  },
  'harness presets': {
    synopsis: 'paddock harness presets [--json]',
    summary: 'List the harness presets.',
    load: async () => (await import('./harness')).presetsCommand,
  },
  'egress explain': {
    synopsis: 'paddock egress explain POOL [--dir DIR] [--namespace NS] [--json]',
    summary: 'Print what a pool may reach, the backend enforcing it and why, from the synthesized YAML.',
    load: async () => (await import('./egress-explain')).explainCommand,
  },
  controller: {
    synopsis: 'paddock controller [--namespace NS] [--port 8080] [--worker-port 8081] [--kubeconfig FILE] [--leader-elect]',
    summary: "Watch tasks, dispatch them to Jobs and warm workers, serve the task API and the workers' lease API (in the cluster).",
    load: async () => (await import('./controller')).controllerCommand,
  },
  worker: {
    synopsis: 'paddock worker --pool NAME --controller WORKER-API-URL [--id ID] [--work-dir DIR] [--keep] [--max-runs N] [--parent-lifeline]',
    summary: "A warm pool's worker: lease tasks from the controller and run them.",
    load: async () => (await import('./controller')).workerCommand,
  },
  local: {
    synopsis: 'paddock local [--dir dist] [--workers N] [--task NAME]... [--out DIR] [--sandbox bwrap] [--timeout SECONDS | --serve]',
    summary: 'Run the declared tasks of the synthesized platform on this machine.',
    load: async () => (await import('./controller')).localCommand,
  },
  gateway: {
    synopsis: 'paddock gateway --config FILE [--port 8080] [--host 0.0.0.0] [--kubeconfig FILE]',
    summary: 'The model gateway: holds the model keys and puts them on agent pods\' calls to their providers.',
    load: async () => (await import('./gateway')).gatewayCommand,
  },
  'tasks submit': {
    synopsis: 'paddock tasks submit -f task.yaml | --name N --pool P --prompt TEXT [--source URL]... [-w] [--server URL] [--token T] [-o json|yaml]',
    summary: 'Submit a task to the controller (through the kubeconfig, or --server).',
    load: async () => (await import('./tasks')).submitCommand,
  },
  'tasks get': {
    synopsis: 'paddock tasks get NAME [-o json|yaml]',
    summary: "A task's phase and current run.",
    load: async () => (await import('./tasks')).getCommand,
  },
  'tasks list': {
    synopsis: 'paddock tasks list [-o json|yaml]',
    summary: 'The tasks of the pools you may list.',
    load: async () => (await import('./tasks')).listCommand,
  },
  'tasks watch': {
    synopsis: 'paddock tasks watch NAME [--timeout SECONDS]',
    summary: "Print a task's progress until it ends (exit 0 succeeded, 1 failed).",
    load: async () => (await import('./tasks')).watchCommand,
  },
  'tasks results': {
    synopsis: 'paddock tasks results NAME [-o json|yaml]',
    summary: "The current run's results and status.",
    load: async () => (await import('./tasks')).resultsCommand,
  },
  'tasks cancel': {
    synopsis: 'paddock tasks cancel NAME',
    summary: 'Remove a task and its runs; a running agent is stopped.',
    load: async () => (await import('./tasks')).cancelCommand,
  },
  'sessions list': {
    synopsis: 'paddock sessions list [--server URL] [--token T] [-o json|yaml]',
    summary: 'The sessions of the pools you may list.',
    load: async () => (await import('./sessions')).listCommand,
  },
  'sessions get': {
    synopsis: 'paddock sessions get NAME [-o json|yaml]',
    summary: "Show a session's turns, carried-over change and tasks.",
    load: async () => (await import('./sessions')).getCommand,
  },
  'sessions delete': {
    synopsis: 'paddock sessions delete NAME',
    summary: "Remove a session's stored state.",
    load: async () => (await import('./sessions')).deleteCommand,
  },
  publish: {
    synopsis: 'paddock publish [--task DIR] [--pool DIR] [--run DIR] [--secrets DIR] [--work-dir DIR]',
    summary: "Deliver one run's change: push it to the task's branch and open its pull/merge request (the publish Job).",
    load: async () => (await import('./publish')).publishCommand,
  },
  version: {
    synopsis: 'paddock version (or paddock --version)',
    summary: "Print the package's version.",
    load: async () => versionCommand,
  },
};

const versionCommand: Command = {
  usage: 'Usage: paddock version\n\nPrints the version of the paddock package.\n',
  options: {},
  run: (_line, io) => {
    io.stdout(`${packageVersion()}\n`);
    return 0;
  },
};

function usageOf(prefix = ''): string {
  const entries = Object.entries(COMMANDS).filter(([words]) => words === prefix || words.startsWith(prefix ? `${prefix} ` : ''));
  return `Usage:\n${entries.map(([, e]) => `  ${e.synopsis}\n      ${e.summary}\n`).join('')}\nRun "paddock <command> --help" for a command's options.\n`;
}

const processIo: CliIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

export async function main(argv: string[], io: CliIo = processIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [first, second] = argv;
  if (first === undefined) {
    io.stderr(usageOf());
    return 2;
  }
  if (first === '-h' || first === '--help' || first === 'help') {
    io.stdout(usageOf());
    return 0;
  }
  if (first === '--version' || first === '-V') return versionCommand.run({ values: {}, positionals: [], help: false }, io, env);
  const words = second !== undefined && COMMANDS[`${first} ${second}`] ? `${first} ${second}` : COMMANDS[first] ? first : undefined;
  if (words === undefined) return unknownCommand(first, second, io);
  const rest = argv.slice(words.split(' ').length);
  try {
    const command = await COMMANDS[words].load();
    const line = parseCommandLine(rest, command.options, { max: command.maxPositionals ?? 0 });
    if (line.help) {
      io.stdout(command.usage);
      return 0;
    }
    return await command.run(line, io, env);
  } catch (e) {
    if (e instanceof PaddockValidationError || e instanceof SpecError || e instanceof UsageError) {
      io.stderr(`paddock ${words}: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}

/** A group without (or with a wrong) subcommand, or no such command at all. */
function unknownCommand(first: string, second: string | undefined, io: CliIo): number {
  const subcommands = Object.keys(COMMANDS)
    .filter((w) => w.startsWith(`${first} `))
    .map((w) => w.slice(first.length + 1));
  if (subcommands.length === 0) {
    io.stderr(`paddock: unknown command "${first}"; use ${oneOf([...new Set(Object.keys(COMMANDS).map((w) => w.split(' ')[0]))])}\n${usageOf()}`);
    return 2;
  }
  if (second === '-h' || second === '--help' || second === 'help') {
    io.stdout(usageOf(first));
    return 0;
  }
  io.stderr(`paddock: ${second === undefined ? `${first} needs a command` : `unknown ${first} command "${second}"`}; use ${oneOf(subcommands)}\n${usageOf(first)}`);
  return 2;
}
