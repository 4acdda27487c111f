/**
 * A thin stand-in for the kubelet (no cluster here): lays out one container's volumes
 * under a temp root the way the kubelet mounts them (ConfigMaps and Secrets one file per
 * key at their mountPaths, emptyDirs shared by the pod's containers), resolves its env
 * (secretKeyRefs from the given Secrets), and unmounts its ConfigMaps and Secrets when
 * it is done, so the next container sees only its own mounts. Test-only.
 */
import * as fs from 'fs';
import * as path from 'path';
import { parseRunArgs } from '../../cli/run';
import { POD_PATHS, run, type RunOptions } from '../../runner/run';
import { writeTerminationMessage } from '../../runner/termination-message';
import { SECRETS_MOUNT } from '../../core/labels';

export type Secrets = Readonly<Record<string, Readonly<Record<string, string>>>>;

export interface MountedContainer {
  /** mountPath → directory under the pod root. */
  readonly mounts: Readonly<Record<string, string>>;
  readonly env: NodeJS.ProcessEnv;
  /** A path of the container's file system under the pod root. */
  at(p: string): string;
  /** Remove its ConfigMap and Secret mounts (emptyDirs stay: they belong to the pod). */
  unmount(): void;
}

export function mountContainer(
  podRoot: string,
  pod: { volumes?: any[] },
  container: { volumeMounts?: any[]; env?: any[] },
  objects: readonly any[],
  secrets: Secrets,
  baseEnv: NodeJS.ProcessEnv,
): MountedContainer {
  const mounts: Record<string, string> = {};
  const transient: string[] = [];
  for (const m of container.volumeMounts ?? []) {
    const volume = (pod.volumes ?? []).find((v) => v.name === m.name);
    const dir = path.join(podRoot, m.mountPath);
    fs.mkdirSync(dir, { recursive: true });
    mounts[m.mountPath] = dir;
    if (volume?.configMap) {
      const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === volume.configMap.name);
      transient.push(dir);
      if (!cm) continue; // a slot filled per task (the controller creates it), or an optional ConfigMap that is gone
      const data = cm.data as Record<string, string>;
      for (const item of volume.configMap.items ?? Object.keys(data).map((key) => ({ key, path: key }))) {
        if (data[item.key] !== undefined) fs.writeFileSync(path.join(dir, item.path), data[item.key]);
      }
    } else if (volume?.secret) {
      const data = secrets[volume.secret.secretName] ?? {};
      for (const item of volume.secret.items ?? Object.keys(data).map((key) => ({ key, path: key }))) {
        if (data[item.key] === undefined) throw new Error(`test Secret "${volume.secret.secretName}" has no key "${item.key}"`);
        fs.writeFileSync(path.join(dir, item.path), data[item.key], { mode: 0o440 });
      }
      transient.push(dir);
    }
  }
  const env: NodeJS.ProcessEnv = { ...baseEnv };
  for (const e of container.env ?? []) {
    const ref = e.valueFrom?.secretKeyRef;
    env[e.name] = ref ? secrets[ref.name]?.[ref.key] : e.value;
  }
  return {
    mounts,
    env,
    at: (p) => path.join(podRoot, p),
    unmount: () => transient.forEach((d) => fs.rmSync(d, { recursive: true, force: true })),
  };
}

/** The runner's options in a mounted container: its args, with the pod's paths where the kubelet put them. */
export function podRunOptions(m: MountedContainer, options: ReturnType<typeof parseRunArgs>['options']): RunOptions {
  return {
    ...options,
    task: m.mounts[POD_PATHS.task],
    harness: m.mounts[POD_PATHS.harness],
    pool: m.mounts[POD_PATHS.pool],
    workspace: m.at(POD_PATHS.workspace),
    home: m.at(m.env.HOME ?? POD_PATHS.home),
    artifacts: m.at(POD_PATHS.artifacts),
    tmp: m.at(POD_PATHS.tmp),
    env: m.env,
    credentialDir: m.at(SECRETS_MOUNT),
    ...(options.sessionFile ? { sessionFile: m.at(options.sessionFile) } : {}),
  };
}

export interface PodRun {
  /** The runner container's exit code. */
  readonly code: number;
  /** Its termination message (what the kubelet copies into the pod's status). */
  readonly message: string;
  /** What `paddock run` prints last to its log: the patches' and the session's lines. */
  readonly logLines: string[];
  /** A path of the pod's file system under the pod root. */
  at(p: string): string;
}

/**
 * Run a Job's pod as the kubelet would: each init container, then the runner container,
 * each `paddock run` with the container's args (parsed as the CLI parses them), its mounts
 * and env; then the termination message and the log lines `paddock run` prints in a pod.
 * Test-only.
 */
export async function runJobPod(
  podRoot: string,
  podSpec: { volumes?: any[]; initContainers?: any[]; containers: any[] },
  objects: readonly any[],
  secrets: Secrets,
  baseEnv: NodeJS.ProcessEnv,
  io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream },
): Promise<PodRun> {
  const runContainer = async (c: any) => {
    const m = mountContainer(podRoot, podSpec, c, objects, secrets, baseEnv);
    const { options } = parseRunArgs(c.args.slice(1));
    try {
      return await run({ ...podRunOptions(m, options), ...io });
    } finally {
      m.unmount();
    }
  };
  for (const c of podSpec.initContainers ?? []) {
    const code = await runContainer(c);
    if (code !== 0) throw new Error(`init container ${c.name} exited ${code}`);
  }
  const runner = podSpec.containers.find((c) => c.name === 'runner') ?? podSpec.containers[0];
  const code = await runContainer(runner);
  const termFile = path.join(podRoot, 'termination-log');
  const logLines = writeTerminationMessage(path.join(podRoot, POD_PATHS.artifacts), termFile) ?? [];
  return { code, message: fs.readFileSync(termFile, 'utf8'), logLines, at: (p) => path.join(podRoot, p) };
}
