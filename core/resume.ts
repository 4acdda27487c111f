/**
 * How a harness's CLI continues a session's conversation (HarnessSpec.resume), shared by the
 * Harness construct (shape checks), the runner (the argv a run adds) and `harness dry-run`.
 *
 * Native: before the run, the CLI's conversation files of the previous run (`state`, relative
 * to HOME) are restored and `argv` is added; on the session's first run `start` is added.
 * Both go just before the prompt's elements (before the element holding {prompt} or
 * {prompt_file} and a `--` in front of it; with the prompt on stdin, before a last `-`, else
 * at the end), after any agent-policy argv. `{session_id}` in `start`, `argv` and `state` is
 * the session's conversation id: a UUID the runner picks on the first run and keeps with the
 * session. A `state` segment that is exactly `*` matches any one name (e.g. a folder the CLI
 * names after the working directory).
 * Unsupported (or absent): the earlier turns are given to the CLI as a transcript in the prompt.
 */
import type { HarnessSpec, ResumeSpec } from '../policy/specs';

export type NativeResume = Extract<ResumeSpec, { argv: string[] }>;

/** The placeholder of the conversation id. */
export const SESSION_ID_PLACEHOLDER = '{session_id}';

export function nativeResume(harness: Pick<HarnessSpec, 'resume'>): NativeResume | undefined {
  const r = harness.resume;
  return r && 'argv' in r ? r : undefined;
}

/** How the harness resumes, in words (dry-run, docs). */
export function resumeSummary(harness: Pick<HarnessSpec, 'resume'>): string {
  const r = harness.resume;
  if (!r) return 'transcript (the harness declares no resume)';
  if ('unsupported' in r) return `transcript (${r.unsupported})`;
  return 'native';
}

/** Whether a HOME-relative, '/'-separated path would leave HOME (absolute, or a "..", "." or empty segment). */
export function leavesHome(rel: string): boolean {
  return rel.startsWith('/') || rel.split('/').some((s) => s === '..' || s === '.' || s === '');
}

const fill = (args: readonly string[], id: string): string[] => args.map((a) => a.split(SESSION_ID_PLACEHOLDER).join(id));

/** The argv a session run adds: `argv` when the CLI's state of an earlier run is restored, else `start`. */
export function resumeArgs(resume: NativeResume, id: string, restored: boolean): string[] {
  return fill(restored ? resume.argv : (resume.start ?? []), id);
}

/** The state paths with the conversation id filled in. */
export function resumeStatePaths(resume: NativeResume, id: string): string[] {
  return fill(resume.state, id);
}

/** Insert the resume argv into the rendered command, just before the prompt's elements. */
export function insertResumeArgs(template: readonly string[], rendered: readonly string[], args: readonly string[]): string[] {
  if (!args.length) return [...rendered];
  // The rendered argv may hold extra (policy) elements before the prompt's: count from the end.
  let fromEnd = template.findIndex((a) => a.includes('{prompt}') || a.includes('{prompt_file}'));
  if (fromEnd >= 0) {
    if (fromEnd > 0 && template[fromEnd - 1] === '--') fromEnd -= 1;
    fromEnd = template.length - fromEnd;
  } else fromEnd = template[template.length - 1] === '-' ? 1 : 0;
  const at = rendered.length - fromEnd;
  return [...rendered.slice(0, at), ...args, ...rendered.slice(at)];
}

/** Shape problems of a resume declaration beyond its schema, each naming the field and the fix. */
export function checkResumeShape(resume: ResumeSpec | undefined, field: string, homeConfigPaths: readonly string[] = []): string[] {
  if (resume === undefined) return [];
  if (typeof resume !== 'object' || resume === null || Array.isArray(resume)) {
    return [`${field}: must be { argv: [...], state: [...] } (native) or { unsupported: "why" } (transcript)`];
  }
  if ('unsupported' in resume) {
    const extra = Object.keys(resume).filter((k) => k !== 'unsupported');
    if (typeof resume.unsupported !== 'string' || !resume.unsupported.trim()) return [`${field}.unsupported: must say why the CLI cannot resume natively, e.g. "its resume flag needs the same working directory"`];
    return extra.length ? [`${field}: has unsupported and ${extra.join(', ')}; give either { unsupported } or { argv, state }`] : [];
  }
  const problems: string[] = [];
  const unknown = Object.keys(resume).filter((k) => !['start', 'argv', 'state'].includes(k));
  if (unknown.length) problems.push(`${field}: unknown key(s) ${unknown.join(', ')}; use start, argv and state`);
  for (const key of ['start', 'argv'] as const) {
    const args = resume[key];
    if (args === undefined && key === 'start') continue;
    if (!Array.isArray(args) || args.length === 0 || args.some((a) => typeof a !== 'string' || !a)) {
      problems.push(`${field}.${key}: must be a non-empty list of argv elements, e.g. ${key === 'start' ? '["--session-id", "{session_id}"]' : '["--resume", "{session_id}"]'}`);
      continue;
    }
    args.forEach((a, i) => {
      for (const m of a.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) {
        if (`{${m[1]}}` !== SESSION_ID_PLACEHOLDER) problems.push(`${field}.${key}[${i}]: unknown placeholder "${m[0]}"; the only one is ${SESSION_ID_PLACEHOLDER}`);
      }
    });
  }
  if (!Array.isArray(resume.state) || resume.state.length === 0) {
    problems.push(`${field}.state: must list the HOME-relative files or folders of the conversation, e.g. [".claude/projects"]`);
    return problems;
  }
  resume.state.forEach((p, i) => {
    const at = `${field}.state[${i}]`;
    if (typeof p !== 'string' || !p) {
      problems.push(`${at}: must be a HOME-relative path such as ".codex/sessions"`);
      return;
    }
    const segments = p.split('/');
    if (leavesHome(p)) {
      problems.push(`${at}: "${p}" must stay inside HOME: a relative path without "..", "." or empty segments, e.g. ".codex/sessions"`);
      return;
    }
    if (segments.some((s) => s.includes('*') && s !== '*')) problems.push(`${at}: "${p}": "*" matches one whole name; write it as its own segment, e.g. ".gemini/tmp/*/chats"`);
    if (segments.every((s) => s === '*')) problems.push(`${at}: "${p}" would take all of HOME; name the CLI's conversation folder`);
    for (const m of p.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) {
      if (`{${m[1]}}` !== SESSION_ID_PLACEHOLDER) problems.push(`${at}: unknown placeholder "${m[0]}"; the only one is ${SESSION_ID_PLACEHOLDER}`);
    }
    // The state is the conversation only: never a config file the harness writes (it may hold keys).
    const covered = homeConfigPaths.find((c) => statePathCovers(p, c));
    if (covered) problems.push(`${at}: "${p}" covers the harness's config file "${covered}"; name the conversation's files only (never config or credentials)`);
  });
  return problems;
}

/** Whether a state pattern (`*` segments, any {session_id}) takes the HOME-relative file `file`. */
export function statePathCovers(pattern: string, file: string): boolean {
  const p = pattern.split('/');
  const f = file.split('/');
  if (f.length < p.length) return false;
  return p.every((seg, i) => seg === '*' || seg === f[i] || (seg.includes(SESSION_ID_PLACEHOLDER) && new RegExp(`^${seg.split(SESSION_ID_PLACEHOLDER).map(escapeRe).join('[^/]+')}$`).test(f[i])));
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
