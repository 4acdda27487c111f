/**
 * `paddock publish`: the publish step of one run, in its own Job (no agent code
 * in that pod): reads the task (its delivery), the pool (its push credentials),
 * the run ConfigMap (status.json: the base commit; binaryData: the gzipped
 * patch) and the mounted push Secret, then delivers (controller/publisher.ts).
 * The delivery status goes to stdout as JSON and, in a pod, to the termination
 * message, where the controller reads it.
 *
 * Exit codes: 0 pushed (or nothing to deliver); 1 conflict; 2 bad arguments or
 * specs; 3 denied; 4 failed.
 */
import * as fs from 'fs';
import * as path from 'path';
import { gunzipSync } from 'zlib';
import { resolveDelivery } from '../core/delivery';
import type { SourceChange } from '../core/protocol';
import { patchKey } from '../controller/observe';
import { DeliveryStatus, publish } from '../controller/publisher';
import { forgeFetch } from '../controller/proxy-fetch';
import type { PoolSpec, TaskSpec } from '../policy/specs';
import { readSpec } from '../runner/load-specs';
import { gitCaEnv } from '../runner/sources';
import { PROXY_VARS } from '../runner/agent-env';
import { TERMINATION_LOG } from '../runner/termination-message';
import { UsageError } from './args';
import type { Command } from './main';

/** Where the publish Job mounts things (constructs/publisher.ts synthesizes the same paths). */
export const PUBLISH_PATHS = {
  task: '/etc/paddock/task',
  pool: '/etc/paddock/pool',
  run: '/etc/paddock/run',
  secrets: '/var/run/paddock/push',
  work: '/workspace',
} as const;

export const PUBLISH_EXIT: Readonly<Record<DeliveryStatus['state'], number>> = { pushed: 0, skipped: 0, conflict: 1, denied: 3, failed: 4 };

const OPTIONS = {
  task: { type: 'string', example: PUBLISH_PATHS.task },
  pool: { type: 'string', example: PUBLISH_PATHS.pool },
  run: { type: 'string', example: PUBLISH_PATHS.run },
  secrets: { type: 'string', example: PUBLISH_PATHS.secrets },
  'work-dir': { type: 'string', example: '/workspace' },
} as const;

export const publishCommand: Command<typeof OPTIONS> = {
  usage: `Usage: paddock publish [options]

Delivers one run's change: applies its patch to the base commit, commits with the
task's message and author, pushes to the delivery branch (a branch that moved is a
conflict) and opens the pull/merge request the task asks for. Prints the delivery
status as JSON.

Options:
  --task DIR|FILE    the task ConfigMap folder or task.json    [default ${PUBLISH_PATHS.task}]
  --pool DIR|FILE    the pool ConfigMap folder or pool.json    [default ${PUBLISH_PATHS.pool}]
  --run DIR          the run ConfigMap folder (status.json, patch-<source>.gz) [default ${PUBLISH_PATHS.run}]
  --secrets DIR      push Secrets, as <secret>/<key> files    [default ${PUBLISH_PATHS.secrets}]
  --work-dir DIR     scratch space for the clone               [default ${PUBLISH_PATHS.work}, else a temp dir]
  -h, --help         this text

Exit codes: 0 pushed (or nothing to deliver); 1 conflict (the branch moved);
2 bad arguments or specs; 3 denied (the git host refused the credential); 4 failed.
`,
  options: OPTIONS,
  run: async ({ values }, io, env) => {
    const task = readSpec<TaskSpec>('Task', values.task ?? PUBLISH_PATHS.task);
    const pool = readSpec<PoolSpec>('Pool', values.pool ?? PUBLISH_PATHS.pool);
    if (!task.delivery) throw new UsageError(`task "${task.name}" has no delivery; nothing to publish`);
    let delivery;
    try {
      delivery = resolveDelivery(task, pool.push)!;
    } catch (err) {
      throw new UsageError(`task "${task.name}": ${(err as Error).message}`);
    }
    const runDir = values.run ?? PUBLISH_PATHS.run;
    let changes: SourceChange[] | undefined;
    try {
      changes = JSON.parse(fs.readFileSync(path.join(runDir, 'status.json'), 'utf8')).changes;
    } catch (err) {
      throw new UsageError(`--run ${runDir}: cannot read status.json (${(err as Error).message})`);
    }
    const change = changes?.find((c) => c.source === delivery.source);
    if (!change) throw new UsageError(`--run ${runDir}: status.json records no change of source "${delivery.source}"`);
    const patchFile = path.join(runDir, patchKey(delivery.source));
    const patch = change.bytes === 0 ? Buffer.alloc(0) : fs.existsSync(patchFile) ? gunzipSync(fs.readFileSync(patchFile)) : undefined;
    if (!patch) throw new UsageError(`--run ${runDir}: no ${patchKey(delivery.source)}${change.patchTooLarge ? ' (the patch was over the size cap: patchTooLarge)' : change.patchWithheld ? ' (the change holds a credential the agent was given: patchWithheld)' : ''}`);
    const workDir = values['work-dir'] ?? (isWritable(PUBLISH_PATHS.work) ? PUBLISH_PATHS.work : undefined);
    const status = await publish({
      delivery,
      base: change.base,
      patch,
      tokenFile: path.join(values.secrets ?? PUBLISH_PATHS.secrets, delivery.credential.secret, delivery.credential.key),
      caEnv: gitCaEnv(env),
      // Behind the publish allowlist's egress proxy: git reads HTTPS_PROXY itself, the forge's API calls need this.
      proxyEnv: Object.fromEntries(PROXY_VARS.filter((k) => env[k]).map((k) => [k, env[k]!])),
      fetch: forgeFetchOf(env),
      ...(workDir ? { workDir } : {}),
      log: (line) => io.stderr(`[paddock publish] ${line}\n`),
    });
    const text = JSON.stringify(status);
    io.stdout(`${text}\n`);
    if (fs.existsSync(TERMINATION_LOG)) fs.writeFileSync(TERMINATION_LOG, text.slice(0, 4096));
    return PUBLISH_EXIT[status.state];
  },
};

/** The forge API's fetch: behind the egress proxy when HTTPS_PROXY is set, trusting git's CA file too. */
export function forgeFetchOf(env: NodeJS.ProcessEnv): typeof fetch {
  const proxy = env.HTTPS_PROXY ?? env.https_proxy;
  const caFile = env.GIT_SSL_CAINFO ?? env.SSL_CERT_FILE;
  let ca: string | undefined;
  try {
    ca = caFile ? fs.readFileSync(caFile, 'utf8') : undefined;
  } catch (err) {
    throw new UsageError(`${env.GIT_SSL_CAINFO ? 'GIT_SSL_CAINFO' : 'SSL_CERT_FILE'}: cannot read the CA file ${caFile} (${(err as Error).message}); mount the forge's CA there or unset it`);
  }
  return forgeFetch({ ...(proxy ? { proxy, noProxy: (env.NO_PROXY ?? env.no_proxy ?? '').split(',') } : {}), ...(ca ? { ca } : {}) });
}

function isWritable(dir: string): boolean {
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}
