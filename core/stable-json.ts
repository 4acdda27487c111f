/**
 * Stable JSON and the spec hash: the same spec gives the same bytes, so GitOps
 * diffs stay quiet and a declared task's Job is found again by name. Shared by
 * the constructs (synthesis) and the controller (run time).
 */
import { createHash } from 'crypto';
import type { TaskSpec } from '../policy/specs';

/** JSON with sorted keys: the same spec gives the same bytes (GitOps diffs, spec hashes). */
export function stableJson(value: unknown): string {
  return JSON.stringify(sortKeys(value), null, 2) + '\n';
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value as object)
        .sort()
        .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

/** Hex characters of the spec hash in Job names and labels. */
const SPEC_HASH_LENGTH = 10;

/**
 * The spec hash in Job and run names: sha256 of the spec's stable JSON (the
 * bytes of task.json), first 10 hex characters. AgentTask and the controller
 * both use this, so a declared task's Job is found again by name.
 */
export function specHashOf(spec: TaskSpec): string {
  return createHash('sha256').update(stableJson(spec)).digest('hex').slice(0, SPEC_HASH_LENGTH);
}
