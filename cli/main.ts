/**
 * `paddock` command line: parses argv, dispatches, returns an exit code.
 * Each command's logic lives in its own module and is testable without a process;
 * modules load only when their command runs, to keep the runner's start-up short.
 */
import { PaddockValidationError } from '../core/validation';
import { SpecError } from '../policy/specs';
import { UsageError } from './usage-error';

const USAGE = `Usage:
  paddock run [--task FILE | --task-dir DIR] [--harness FILE|DIR] [--pool FILE|DIR] [options]
      Run one task with the agent CLI (in a pod, or locally). See paddock run --help.
  paddock harness dry-run <preset|harness.json> --prompt TEXT [--model M] [--prompt-file PATH] [--workdir DIR]
      Print the exact argv the runner would exec, as a JSON array.
  paddock harness presets
      List the harness presets.
  paddock egress explain POOL [--dir dist] [--namespace NS] [--json]
      Print what a pool may reach, the backend enforcing it and why, from the synthesized YAML.
  paddock controller [--namespace NS] [--port 8080] [--worker-port 8081] [--kubeconfig FILE] [--leader-elect]
      Watch tasks, dispatch them to Jobs and warm workers, serve the task API (--port) and
      the warm workers' lease API (--worker-port) (in the cluster).
  paddock worker --pool NAME --controller WORKER-API-URL [--id ID] [--work-dir DIR] [--keep] [--max-runs N] [--parent-lifeline]
      A warm pool's worker: lease tasks from the controller and run them.
  paddock local [--dir dist] [--workers N] [--task NAME]... [--out DIR] [--timeout SECONDS]
      Run the declared tasks of the synthesized platform on this machine.
`;

export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

const processIo: CliIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'run':
        return await (await import('./run')).runCli(rest);
      case 'harness':
        return (await import('./harness')).harnessCommand(rest, io);
      case 'egress':
        return await (await import('./egress-explain')).egressCommand(rest, io);
      case 'controller':
        return await (await import('./controller')).controllerCommand(rest);
      case 'worker':
        return await (await import('./controller')).workerCommand(rest);
      case 'local':
        return await (await import('./controller')).localCommand(rest);
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        io.stdout(USAGE);
        return command === undefined ? 2 : 0;
      default:
        io.stderr(`paddock: unknown command "${command}"\n${USAGE}`);
        return 2;
    }
  } catch (e) {
    if (e instanceof PaddockValidationError || e instanceof SpecError || e instanceof UsageError) {
      io.stderr(`paddock: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}
