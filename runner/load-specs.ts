/**
 * Read the task, harness and pool specs the way a pod gets them (a mounted ConfigMap
 * folder, one file per key: task.json, harness.json, pool.json) or from plain files,
 * and validate each with the shared JSON Schemas in policy/schemas/.
 */
import * as fs from 'fs';
import * as path from 'path';
import { argvPromptProblem } from '../core/command-template';
import { HarnessSpec, PoolSpec, SpecKind, TaskSpec, validateSpec } from '../policy/specs';
import { RunFailure } from './status';

const FILE_NAMES: Record<SpecKind, string> = { Task: 'task.json', Harness: 'harness.json', Pool: 'pool.json' };

export interface LoadedSpecs {
  readonly task: TaskSpec;
  readonly harness: HarnessSpec;
  readonly pool?: PoolSpec;
}

/**
 * Where a spec comes from: a JSON file, a folder holding `<kind>.json`, or an object
 * already in memory (e.g. a harness preset).
 */
export type SpecSource = string | { readonly inline: object; readonly label: string };

/** Resolve a FILE|DIR argument to the JSON file it means. */
export function specFilePath(kind: SpecKind, location: string): string {
  try {
    if (fs.statSync(location).isDirectory()) return path.join(location, FILE_NAMES[kind]);
  } catch {
    // Missing: reported by readSpec with the path the user gave.
  }
  return location;
}

/** Read and validate one spec; throws RunFailure('invalid_spec') naming the file and every bad field. */
export function readSpec<T>(kind: SpecKind, source: SpecSource): T {
  let value: unknown;
  let label: string;
  if (typeof source === 'string') {
    const file = specFilePath(kind, source);
    label = file;
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new RunFailure('invalid_spec', `${kind} spec ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new RunFailure('invalid_spec', `${kind} spec ${file}: not valid JSON: ${(err as Error).message}`);
    }
  } else {
    label = source.label;
    value = source.inline;
  }
  const problems = validateSpec(kind, value);
  if (problems.length > 0) {
    throw new RunFailure('invalid_spec', `${kind} spec ${label} is invalid:\n  - ${problems.join('\n  - ')}`, problems);
  }
  return value as T;
}

/** Checks across the three specs that no single schema can express. */
export function crossCheck(specs: LoadedSpecs): string[] {
  const { task, harness, pool } = specs;
  const problems: string[] = [];
  if (task.harness !== harness.name) {
    problems.push(`task.harness: is "${task.harness}" but the harness spec is "${harness.name}"`);
  }
  if (pool) {
    if (task.pool !== pool.name) {
      problems.push(`task.pool: is "${task.pool}" but the pool spec is "${pool.name}"`);
    }
    if (!pool.harnesses.includes(harness.name)) {
      problems.push(`pool.harnesses: pool "${pool.name}" does not run harness "${harness.name}" (it runs ${pool.harnesses.join(', ')})`);
    }
    if (!pool.capabilities.includes(harness.capability)) {
      problems.push(`pool.capabilities: pool "${pool.name}" lacks capability "${harness.capability}" that harness "${harness.name}" provides`);
    }
  }
  const tooLong = argvPromptProblem(harness.command, task.prompt, 'task.prompt');
  if (tooLong) problems.push(`${tooLong} (harness "${harness.name}" passes it as an argument)`);
  const names = new Set<string>();
  (task.sources ?? []).forEach((s, i) => {
    if (names.has(s.name)) problems.push(`task.sources[${i}].name: "${s.name}" is used by two sources; each needs its own directory`);
    names.add(s.name);
  });
  return problems;
}
