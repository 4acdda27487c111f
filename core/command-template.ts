/**
 * The harness command template: a direct argv (never a shell string) with
 * single-brace placeholders. Shared by the Harness construct (lint at
 * construction, dry runs) and the runner (the real exec), so the argv a user
 * previews is byte for byte the argv that runs.
 */
import type { PromptVia } from '../policy/specs';

export const PLACEHOLDERS = ['model', 'prompt', 'prompt_file', 'workdir'] as const;
export type Placeholder = (typeof PLACEHOLDERS)[number];

export interface RenderValues {
  readonly model: string;
  readonly prompt: string;
  /** Path of the file holding the prompt; required when the template uses {prompt_file}. */
  readonly promptFile?: string;
  /** The agent's working directory; required when the template uses {workdir}. */
  readonly workdir?: string;
}

const SHELLS = new Set(['sh', 'bash', 'dash', 'zsh', 'ash', 'ksh', 'fish', 'busybox']);
const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/**
 * Check a command template; returns one message per problem (empty when fine).
 * `field` names the prop in messages, e.g. `Harness "codex" command`.
 */
export function lintCommandTemplate(command: readonly string[], field: string): string[] {
  const problems: string[] = [];
  if (command.length === 0) {
    return [`${field}: must have at least one element, the program to run (e.g. ["codex", "exec", "{prompt}"])`];
  }
  command.forEach((arg, i) => {
    const at = `${field}[${i}]`;
    if (typeof arg !== 'string') {
      problems.push(`${at}: must be a string, got ${typeof arg}`);
      return;
    }
    const doubled = arg.match(/\{\{[^{}]*\}\}/);
    if (doubled) {
      const inner = doubled[0].slice(2, -2).trim();
      problems.push(`${at}: "${doubled[0]}" uses double braces; placeholders take single braces, write "{${inner}}"`);
      return;
    }
    for (const match of arg.matchAll(PLACEHOLDER)) {
      if (!(PLACEHOLDERS as readonly string[]).includes(match[1])) {
        problems.push(`${at}: unknown placeholder "${match[0]}"; use one of ${PLACEHOLDERS.map((p) => `{${p}}`).join(', ')}`);
      }
    }
  });
  if (typeof command[0] === 'string' && command[0].trim() === '') {
    problems.push(`${field}[0]: the program to run is empty; write its name or path, e.g. "codex"`);
  }
  command.forEach((arg, i) => {
    if (typeof arg === 'string' && arg.includes('\0')) problems.push(`${field}[${i}]: contains a NUL byte, which no argv element can hold; remove it`);
  });
  if (/\{[A-Za-z_][A-Za-z0-9_]*\}/.test(command[0])) {
    problems.push(`${field}[0]: the program to run must be a fixed name, not a placeholder`);
  }
  if (usesPlaceholder(command, 'prompt') && usesPlaceholder(command, 'prompt_file')) {
    problems.push(`${field}: uses both {prompt} and {prompt_file}; pass the prompt one way`);
  }
  const program = basename(command[0]);
  const dashC = command.findIndex((a, i) => i > 0 && /^-[a-z]*c$/.test(a));
  if (SHELLS.has(program) && dashC > 0) {
    command.slice(dashC + 1).forEach((arg, j) => {
      if (arg.includes('{prompt}')) {
        problems.push(
          `${field}[${dashC + 1 + j}]: {prompt} inside a shell string (${program} ${command[dashC]} "...") gets mangled by shell quoting; ` +
            'run the agent directly and give {prompt} its own argv element, e.g. ["codex", "exec", "{prompt}"], or use {prompt_file}',
        );
      }
    });
  }
  return problems;
}

/**
 * Longest prompt passed as one argv element ({prompt}), in UTF-8 bytes. Linux refuses a
 * single argument over 128 KiB (MAX_ARG_STRLEN, E2BIG); this leaves room for the rest of
 * the element. Longer prompts go through {prompt_file} or stdin.
 */
export const MAX_ARGV_PROMPT_BYTES = 100 * 1024;

/** The problem with passing `prompt` through this command, if any (an argv element over the limit). */
export function argvPromptProblem(command: readonly string[], prompt: string, field: string): string | undefined {
  if (!usesPlaceholder(command, 'prompt')) return undefined;
  const bytes = Buffer.byteLength(prompt);
  if (bytes <= MAX_ARGV_PROMPT_BYTES) return undefined;
  return (
    `${field}: is ${bytes} bytes, over the ${MAX_ARGV_PROMPT_BYTES} bytes a prompt may have as an argv element ({prompt}); ` +
    'shorten it, or pass it with promptVia "stdin" or "file" (an option of every preset), or use a harness whose command takes {prompt_file} (or neither placeholder: stdin)'
  );
}

/** How the prompt reaches the agent, as implied by the template. */
export function promptViaOf(command: readonly string[]): PromptVia {
  if (usesPlaceholder(command, 'prompt')) return 'argv';
  if (usesPlaceholder(command, 'prompt_file')) return 'file';
  return 'stdin';
}

export function usesPlaceholder(command: readonly string[], name: Placeholder): boolean {
  return command.some((arg) => arg.includes(`{${name}}`));
}

/**
 * Substitute placeholders; each argv element stays one element, whatever the
 * prompt holds (spaces, quotes, newlines), so no quoting can go wrong.
 */
export function renderCommand(command: readonly string[], values: RenderValues): string[] {
  const lookup: Record<Placeholder, string | undefined> = {
    model: values.model,
    prompt: values.prompt,
    prompt_file: values.promptFile,
    workdir: values.workdir,
  };
  return command.map((arg) =>
    arg.replace(PLACEHOLDER, (whole, name: string) => {
      if (!(name in lookup)) {
        return whole;
      }
      const value = lookup[name as Placeholder];
      if (value === undefined) {
        throw new Error(`the command uses {${name}} but no value for it was given`);
      }
      return value;
    }),
  );
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}
