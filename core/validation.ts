/**
 * Argument checks shared by the constructs. Each throws at once with a
 * message that names the field and says what to write instead.
 */

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export class PaddockValidationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PaddockValidationError';
  }
}

export function fail(message: string): never {
  throw new PaddockValidationError(message);
}

/** A name that becomes part of Kubernetes object names: a DNS-1123 label. */
export function checkDnsLabel(value: unknown, field: string, maxLength = 63): string {
  if (typeof value !== 'string' || value.length === 0) {
    fail(`${field}: must be a non-empty name, e.g. "codex"`);
  }
  if (value.length > maxLength || !DNS_LABEL.test(value)) {
    const suggestion = suggestDnsLabel(value, maxLength);
    fail(
      `${field}: "${value}" is not a valid name: use at most ${maxLength} lower-case letters, digits and '-', ` +
        `starting and ending with a letter or digit` +
        (suggestion ? `; did you mean "${suggestion}"?` : ''),
    );
  }
  return value;
}

export function suggestDnsLabel(value: string, maxLength = 63): string {
  return value
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .slice(0, maxLength)
    .replace(/^-+|-+$/g, '');
}

export function checkEnvName(value: string, field: string): string {
  if (!ENV_NAME.test(value)) {
    fail(`${field}: "${value}" is not a valid environment variable name: use letters, digits and '_', not starting with a digit (e.g. "OPENAI_API_KEY")`);
  }
  return value;
}

export function checkEnvMap(env: Record<string, string> | undefined, field: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(env ?? {})) {
    checkEnvName(name, `${field}.${name}`);
    if (typeof value !== 'string') {
      fail(`${field}.${name}: must be a string, got ${typeof value}; quote numbers and booleans, e.g. "1"`);
    }
    if (value.includes('\0')) fail(`${field}.${name}: contains a NUL byte, which no environment variable can hold; remove it`);
    result[name] = value;
  }
  return result;
}

export function checkInteger(value: number, field: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
    fail(`${field}: must be ${range}, got ${JSON.stringify(value)}`);
  }
  return value;
}

export function checkNonEmpty(value: unknown, field: string, example: string): string {
  if (typeof value !== 'string' || value.trim().length === 0) {
    fail(`${field}: must be a non-empty string, e.g. ${example}`);
  }
  return value;
}

/** Kubernetes resource quantities: "500m", "2", "1Gi", "512Mi". */
export function checkQuantity(value: string, field: string): string {
  if (!/^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|e[0-9]+)?$/.test(String(value))) {
    fail(`${field}: "${value}" is not a Kubernetes quantity; write e.g. "500m" or "2" for CPU, "512Mi" or "4Gi" for memory and storage`);
  }
  return value;
}
