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
