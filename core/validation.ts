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

const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A label key: an optional DNS-subdomain prefix and "/", then a name of at most 63 characters. */
export function checkLabelKey(key: string, field: string): string {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if ((prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) || !LABEL_NAME.test(name)) {
    fail(
      `${field}: key ${JSON.stringify(key)} is not a valid label key: write an optional DNS prefix and "/", then at most 63 letters, digits, '-', '_' and '.', ` +
        'starting and ending with a letter or digit, e.g. "kubernetes.io/arch" or "k8s-app"',
    );
  }
  return key;
}

/** Label keys and values (selectors, nodeSelector): what the API server (and Cilium's CRD) accept. */
export function checkLabels(labels: Record<string, string>, field: string): Record<string, string> {
  if (!labels || typeof labels !== 'object' || Array.isArray(labels)) fail(`${field}: must map label keys to values, e.g. { "k8s-app": "kube-dns" }`);
  for (const [key, value] of Object.entries(labels)) {
    checkLabelKey(key, field);
    if (typeof value !== 'string' || (value !== '' && !LABEL_NAME.test(value))) {
      fail(
        `${field}.${key}: ${JSON.stringify(value)} is not a valid label value: at most 63 letters, digits, '-', '_' and '.', ` +
          `starting and ending with a letter or digit (no spaces or '/'), e.g. "${suggestDnsLabel(String(value)) || 'kube-dns'}"`,
      );
    }
  }
  return { ...labels };
}

/**
 * An image reference as the kubelet reads it: no whitespace or control characters
 * (a newline would be a second YAML line), e.g. "ghcr.io/org/agent:1.2.3".
 */
export function checkImageRef(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0) fail(`${field}: must be an image reference, e.g. "ghcr.io/org/agent:1.2.3"`);
  if (/[\s\x00-\x1f\x7f]/.test(value) || !/^[a-z0-9][a-z0-9._\-/:@]*$/i.test(value) || value.length > 4096) {
    fail(`${field}: ${JSON.stringify(value)} is not an image reference: no spaces, newlines or control characters; write e.g. "ghcr.io/org/agent:1.2.3"`);
  }
  return value;
}

/**
 * Namespaces a Platform must not take: the platform labels its namespace for Pod
 * Security "restricted" and denies all traffic of every pod in it by default, which
 * would break the cluster's own components (kube-*) or every workload that shares
 * `default`.
 */
export const RESERVED_NAMESPACES: readonly string[] = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];
