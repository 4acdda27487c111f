/**
 * Branch names as `git check-ref-format --branch` accepts them, in TypeScript,
 * so a bad delivery branch fails at synth and at submit, not at push time.
 */

/** Why git would refuse `name` as a branch name; undefined when it is fine. */
export function branchNameProblem(name: string): string | undefined {
  if (name === '') return 'is empty';
  if (name === '@') return 'is "@" alone';
  if (name === 'HEAD') return 'is "HEAD"';
  if (name.startsWith('-')) return 'starts with "-"';
  if (name.startsWith('/') || name.endsWith('/')) return 'starts or ends with "/"';
  if (name.includes('//')) return 'contains "//"';
  if (name.endsWith('.')) return 'ends with "."';
  if (name.includes('..')) return 'contains ".."';
  if (name.includes('@{')) return 'contains "@{"';
  // eslint-disable-next-line no-control-regex
  const bad = /[\x00-\x20\x7f~^:?*[\\]/.exec(name);
  if (bad) return `contains ${bad[0] === ' ' ? 'a space' : /[\x00-\x1f\x7f]/.test(bad[0]) ? 'a control character' : `"${bad[0]}"`}`;
  for (const part of name.split('/')) {
    if (part.startsWith('.')) return `has a component starting with "." ("${part}")`;
    if (part.endsWith('.lock')) return `has a component ending with ".lock" ("${part}")`;
  }
  return undefined;
}

/** A branch name suggestion: the bad characters replaced by '-'. */
export function suggestBranchName(name: string): string {
  return (
    name
      // eslint-disable-next-line no-control-regex
      .replace(/[\x00-\x20\x7f~^:?*[\\]+/g, '-')
      .replace(/@\{/g, '-')
      .replace(/\.\.+/g, '.')
      .replace(/\/\/+/g, '/')
      .split('/')
      .map((p) => p.replace(/^\.+/, '').replace(/\.lock$/, '-lock'))
      .filter(Boolean)
      .join('/')
      .replace(/^-+/, '')
      .replace(/\.+$/, '') || 'paddock/change'
  );
}
