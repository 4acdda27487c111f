/**
 * The hardened settings every Paddock pod gets (controller, agents, egress
 * proxy): Pod Security "restricted" and then some. One place, so no pod
 * drifts from the others.
 */
import type { PodSecurityContext, SecurityContext, Volume, VolumeMount } from 'kubernetes-types/core/v1';

export function hardenedPodSecurityContext(uid: number): PodSecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: uid,
    fsGroup: uid,
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

export function hardenedContainerSecurityContext(uid: number): SecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: uid,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    privileged: false,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

export interface ScratchDir {
  readonly name: string;
  readonly mountPath: string;
  readonly sizeLimit: string;
}

/** With a read-only root, every writable path is an emptyDir with a size limit. */
export function scratchVolumes(dirs: readonly ScratchDir[]): { volumes: Volume[]; mounts: VolumeMount[] } {
  return {
    volumes: dirs.map((d) => ({ name: d.name, emptyDir: { sizeLimit: d.sizeLimit } })),
    mounts: dirs.map((d) => ({ name: d.name, mountPath: d.mountPath })),
  };
}

/**
 * One read-only Secret volume per Secret, holding just the named keys, mounted at
 * `<root>/<secret>` (files `<root>/<secret>/<key>`).
 */
export function secretVolumes(keysBySecret: ReadonlyMap<string, ReadonlySet<string>>, root: string): Array<{ volume: Volume; mount: VolumeMount }> {
  return [...keysBySecret.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([secretName, keys]) => {
      const name = `secret-${secretName}`.replace(/\./g, '-').slice(0, 63).replace(/-+$/, '');
      return {
        volume: {
          name,
          secret: {
            secretName,
            items: [...keys].sort().map((key) => ({ key, path: key })),
            // Owner and group (fsGroup) read; the runner copies files to HOME with mode 0400.
            defaultMode: 0o440,
          },
        },
        mount: { name, mountPath: `${root}/${secretName}`, readOnly: true },
      };
    });
}

/** Add keys of a Secret to a secret → keys map. */
export function addSecretKeys(map: Map<string, Set<string>>, secretName: string, keys: readonly string[]): void {
  if (keys.length === 0) return;
  const set = map.get(secretName) ?? new Set<string>();
  keys.forEach((k) => set.add(k));
  map.set(secretName, set);
}
