/**
 * A thin stand-in for the kubelet (no cluster here): lays out one container's volumes
 * under a temp root the way the kubelet mounts them (ConfigMaps and Secrets one file per
 * key at their mountPaths, emptyDirs shared by the pod's containers), resolves its env
 * (secretKeyRefs from the given Secrets), and unmounts its ConfigMaps and Secrets when
 * it is done, so the next container sees only its own mounts. Test-only.
 */
import * as fs from 'fs';
import * as path from 'path';

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
      if (!cm) continue; // a slot filled per task (the controller creates it)
      for (const [key, value] of Object.entries(cm.data as Record<string, string>)) fs.writeFileSync(path.join(dir, key), value);
      transient.push(dir);
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
