/**
 * Squid configuration for the egress-proxy backend of the EgressAllowlist.
 *
 * `renderSquidConf` is a pure function: the same options give a byte-identical
 * squid.conf (rules are normalized, deduplicated and sorted), with no I/O.
 *
 * Host rule semantics (decided here, once, for every deployer):
 * - `match: 'exact'`: only that name, e.g. `api.openai.com`.
 * - `match: 'suffix'`: the name and every subdomain of it. Write `.example.com`
 *   (the leading dot may be left off). This is Squid's `dstdomain .example.com`,
 *   which also matches the bare `example.com`.
 * - Names are case-insensitive in DNS, so upper case is accepted and normalized to
 *   lower case (`API.OpenAI.com` becomes `api.openai.com`); it is not an error.
 * - `ports`: the TCP ports a client may CONNECT to on that name (TLS tunnels).
 * - `allowPlainHttp: true`: additionally allows plain `http://` requests to that name
 *   on the same ports. Off by default: plain HTTP can be read and changed in transit.
 *
 * The proxy refuses, whatever the rules say, any destination that resolves to a
 * private, loopback or link-local address (see `BLOCKED_DESTINATIONS`), so an
 * allowlisted name that points (or is re-pointed) at the cluster or the cloud
 * metadata service is still refused.
 */
import { isIP } from 'net';
import { domainToASCII } from 'url';
import { BLOCKED_RANGES, METADATA_HOSTS } from './blocked-ranges';

/** One allowlisted destination name. */
export interface HostRule {
  /** A DNS name: `api.openai.com`, or for a suffix rule `.githubusercontent.com`. */
  readonly host: string;
  /** `exact`: only `host`; `suffix`: `host` and all of its subdomains. */
  readonly match: 'exact' | 'suffix';
  /** TCP ports allowed on this name (1-65535), e.g. `[443]`. */
  readonly ports: readonly number[];
  /**
   * Also allow plain (unencrypted) `http://` requests to this name on `ports`.
   * @default false - only CONNECT tunnels (HTTPS) are allowed
   */
  readonly allowPlainHttp?: boolean;
}

/** Options of `renderSquidConf`. */
export interface SquidConfOptions {
  /** The allowlist. An empty list gives a proxy that refuses everything. */
  readonly rules: readonly HostRule[];
  /**
   * Port Squid listens on (all addresses).
   * @default 3128
   */
  readonly httpPort?: number;
  /**
   * The only directory Squid writes to (pid file, core dumps). The proxy runs with a
   * read-only root file system, so this should be an emptyDir / tmpfs.
   * @default '/tmp/squid'
   */
  readonly stateDir?: string;
  /**
   * Squid's `hosts_file`: static name-to-address mappings consulted before DNS.
   * @default - Squid's default, /etc/hosts
   */
  readonly dnsHostsFile?: string;
  /**
   * DNS servers (IP addresses) Squid queries, instead of those in /etc/resolv.conf.
   * @default - the servers in /etc/resolv.conf
   */
  readonly dnsNameservers?: readonly string[];
}

/** A validated, normalized rule. */
export interface NormalizedHostRule {
  /** Lower case; suffix rules start with `.`. */
  readonly host: string;
  readonly match: 'exact' | 'suffix';
  /** Sorted, without duplicates. */
  readonly ports: readonly number[];
  readonly allowPlainHttp: boolean;
}

/** Destinations refused even when an allowlisted name resolves to them. */
export const BLOCKED_DESTINATIONS: readonly string[] = BLOCKED_RANGES;

const DEFAULT_HTTP_PORT = 3128;
const DEFAULT_STATE_DIR = '/tmp/squid';

/**
 * Checks one rule. Returns one message per problem (empty when the rule is valid);
 * each message starts with the field it is about and says what to write instead.
 * Upper case in `host` is not a problem: it is normalized to lower case.
 */
export function validateHostRule(rule: HostRule): string[] {
  const errors: string[] = [];
  // Rules may come from YAML/JSON, so check shapes the type system cannot.
  const r = (rule ?? {}) as Partial<Record<keyof HostRule, unknown>>;

  if (r.match !== 'exact' && r.match !== 'suffix') {
    errors.push(`match: must be 'exact' or 'suffix', got ${show(r.match)}`);
  }
  errors.push(...validateHost(r.host, r.match));
  errors.push(...validatePorts(r.ports));
  if (r.allowPlainHttp !== undefined && typeof r.allowPlainHttp !== 'boolean') {
    errors.push(`allowPlainHttp: must be true or false, got ${show(r.allowPlainHttp)}`);
  }
  return errors;
}

/**
 * Validates and normalizes a rule (lower-case host, leading `.` on suffix rules,
 * sorted unique ports). Throws listing every problem when the rule is invalid.
 */
export function normalizeHostRule(rule: HostRule): NormalizedHostRule {
  const errors = validateHostRule(rule);
  if (errors.length > 0) {
    throw new Error(`Invalid egress host rule ${show(rule?.host)}:\n  ${errors.join('\n  ')}`);
  }
  const bare = rule.host.toLowerCase().replace(/^\./, '');
  return {
    host: rule.match === 'suffix' ? `.${bare}` : bare,
    match: rule.match,
    ports: uniqueSortedNumbers(rule.ports),
    allowPlainHttp: rule.allowPlainHttp === true,
  };
}

/** Renders a complete squid.conf enforcing `opts.rules`. Throws on invalid input. */
export function renderSquidConf(opts: SquidConfOptions): string {
  const errors: string[] = [];
  const rules: NormalizedHostRule[] = [];
  (opts.rules ?? []).forEach((rule, i) => {
    const ruleErrors = validateHostRule(rule);
    if (ruleErrors.length > 0) {
      errors.push(...ruleErrors.map((e) => `rules[${i}].${e}`));
    } else {
      rules.push(normalizeHostRule(rule));
    }
  });
  const httpPort = opts.httpPort ?? DEFAULT_HTTP_PORT;
  if (!isValidPort(httpPort)) {
    errors.push(`httpPort: ${show(httpPort)} is not a valid TCP port; write an integer from 1 to 65535 (default 3128)`);
  }
  const stateDir = opts.stateDir ?? DEFAULT_STATE_DIR;
  errors.push(...validatePath('stateDir', stateDir, '/tmp/squid'));
  if (opts.dnsHostsFile !== undefined) {
    errors.push(...validatePath('dnsHostsFile', opts.dnsHostsFile, '/etc/paddock/hosts'));
  }
  (opts.dnsNameservers ?? []).forEach((ns, i) => {
    if (typeof ns !== 'string' || isIP(ns) === 0) {
      errors.push(`dnsNameservers[${i}]: ${show(ns)} is not an IP address; write one such as "10.96.0.10"`);
    }
  });
  if (errors.length > 0) {
    throw new Error(`Invalid Squid egress configuration:\n  ${errors.join('\n  ')}`);
  }

  const tlsGroups = groupByPorts(rules);
  const httpGroups = groupByPorts(rules.filter((r) => r.allowPlainHttp));
  const allNames = minimizeDomains(rules.map((r) => r.host));
  const dir = stateDir.replace(/\/+$/, '') || '/';

  const out: string[] = [];
  const line = (...xs: string[]) => out.push(...xs);

  line(
    '# squid.conf for the paddock egress allowlist proxy.',
    '# Generated by paddock (policy/squid-conf.ts); do not edit by hand.',
    '',
    '# --- Listening port. Clients use it as HTTPS_PROXY / HTTP_PROXY.',
    `http_port ${httpPort}`,
    '',
    '# --- No caching and no disk state: the root file system is read-only and only',
    '# the state directory is writable. Logs go to the container\'s stdout/stderr.',
    'cache deny all',
    'cache_mem 0 MB',
    `pid_filename ${dir}/squid.pid`,
    `coredump_dir ${dir}`,
    'netdb_filename none',
    'access_log stdio:/dev/stdout',
    'cache_log /dev/stderr',
    'cache_store_log none',
    'logfile_rotate 0',
    'pinger_enable off',
    'icp_port 0',
    'htcp_port 0',
    'max_filedescriptors 4096',
    '',
    '# --- Do not reveal the client or the proxy to destinations.',
    'visible_hostname paddock-egress',
    'via off',
    'forwarded_for delete',
    'httpd_suppress_version_string on',
    '',
    '# --- Timeouts: fail connects fast, but let long model streams run.',
    'connect_timeout 15 seconds',
    'request_timeout 1 minute',
    'read_timeout 15 minutes',
    'client_idle_pconn_timeout 1 minute',
    'client_lifetime 8 hours',
    'dns_timeout 15 seconds',
    'shutdown_lifetime 5 seconds',
    '',
  );

  if (opts.dnsHostsFile !== undefined || (opts.dnsNameservers ?? []).length > 0) {
    line('# --- Name resolution.');
    if (opts.dnsHostsFile !== undefined) line(`hosts_file ${opts.dnsHostsFile}`);
    if ((opts.dnsNameservers ?? []).length > 0) {
      line(`dns_nameservers ${[...new Set(opts.dnsNameservers)].sort(compareStrings).join(' ')}`);
    }
    line('');
  }

  if (rules.length === 0) {
    line(
      '# --- Access: the allowlist is empty, so every request is refused.',
      'http_access deny all',
      '',
    );
    return out.join('\n');
  }

  line(
    '# --- Allowlisted names. "-n": never reverse-resolve IP-address destinations, so',
    '# a request for an IP address simply does not match.',
    `acl allowed dstdomain -n ${allNames.join(' ')}`,
    '',
    '# --- HTTPS: CONNECT tunnels, per group of names sharing the same ports.',
  );
  const grants: string[] = [];
  // One all-of ACL per group: the request kind (`via`), one of the names, one of the ports.
  const groupAcls = (prefix: string, via: string, groups: typeof tlsGroups) =>
    groups.forEach((g, i) => {
      const id = `${prefix}${i + 1}`;
      line(`acl ${id}_names dstdomain -n ${g.names.join(' ')}`, `acl ${id}_ports port ${g.ports.join(' ')}`, `acl ${id} all-of ${via} ${id}_names ${id}_ports`);
      grants.push(id);
    });
  groupAcls('tls', 'CONNECT', tlsGroups);
  line('');
  if (httpGroups.length > 0) {
    line('# --- Plain HTTP (allowPlainHttp), per group of names sharing the same ports.', 'acl plain_http proto HTTP');
    groupAcls('http', 'plain_http', httpGroups);
    line('');
  }
  line(
    '# Every allowed (method, name, port) combination.',
    `acl allowed_requests any-of ${grants.join(' ')}`,
    '',
    '# --- Destinations refused even for allowlisted names: private, loopback and',
    '# link-local ranges (cluster, node and cloud metadata addresses).',
    `acl blocked_dst dst ${BLOCKED_DESTINATIONS.join(' ')}`,
    '',
    '# --- Access rules, first match wins. The first three need no DNS lookup, so a',
    '# name that is not allowlisted is refused without ever being resolved.',
    'http_access deny manager',
    'http_access deny !allowed',
    'http_access deny !allowed_requests',
    '# These resolve the (allowlisted) name and check every address it resolves to.',
    'http_access deny to_localhost',
    'http_access deny blocked_dst',
    'http_access allow allowed_requests',
    'http_access deny all',
    '',
  );
  return out.join('\n');
}

// ---------------------------------------------------------------------------

interface PortGroup {
  readonly ports: readonly number[];
  readonly names: readonly string[];
}

/** Groups rules with identical port sets; groups and names sorted. */
function groupByPorts(rules: readonly NormalizedHostRule[]): PortGroup[] {
  const byKey = new Map<string, { ports: readonly number[]; names: string[] }>();
  for (const r of rules) {
    const key = r.ports.join(',');
    const g = byKey.get(key) ?? { ports: r.ports, names: [] };
    g.names.push(r.host);
    byKey.set(key, g);
  }
  return [...byKey.values()]
    .map((g) => ({ ports: g.ports, names: minimizeDomains(g.names) }))
    .sort((a, b) => comparePortLists(a.ports, b.ports));
}

/**
 * Sorted, deduplicated dstdomain values, without entries already covered by a
 * suffix entry in the same list (Squid warns about, and drops, such overlaps):
 * `.example.com` covers `example.com`, `api.example.com` and `.a.example.com`.
 */
function minimizeDomains(names: readonly string[]): string[] {
  const unique = [...new Set(names)];
  const suffixes = unique.filter((n) => n.startsWith('.'));
  const covered = (n: string) =>
    suffixes.some((s) => s !== n && (n === s.slice(1) || n.endsWith(s)));
  return unique.filter((n) => !covered(n)).sort(compareDomains);
}

/** Orders names by their labels from the top-level domain down, so related names sit together. */
function compareDomains(a: string, b: string): number {
  const ka = a.replace(/^\./, '').split('.').reverse().join('.');
  const kb = b.replace(/^\./, '').split('.').reverse().join('.');
  return compareStrings(ka, kb) || compareStrings(a, b);
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function comparePortLists(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}

function uniqueSortedNumbers(xs: readonly number[]): number[] {
  return [...new Set(xs)].sort((a, b) => a - b);
}

function isValidPort(p: unknown): p is number {
  return typeof p === 'number' && Number.isInteger(p) && p >= 1 && p <= 65535;
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') return String(v);
  return v === undefined ? 'undefined' : JSON.stringify(v) ?? String(v);
}

function validatePorts(ports: unknown): string[] {
  if (!Array.isArray(ports) || ports.length === 0) {
    return [`ports: must list at least one TCP port, e.g. [443]; got ${show(ports)}`];
  }
  const errors: string[] = [];
  ports.forEach((p, i) => {
    if (!isValidPort(p)) {
      errors.push(`ports[${i}]: ${show(p)} is not a valid TCP port; write an integer from 1 to 65535, e.g. 443`);
    }
  });
  return errors;
}

function validatePath(field: string, path: unknown, example: string): string[] {
  if (typeof path !== 'string' || !path.startsWith('/') || /[\s"'#]/.test(path)) {
    return [`${field}: ${show(path)} must be an absolute path without spaces, quotes or '#', e.g. "${example}"`];
  }
  return [];
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

function validateHost(host: unknown, match: unknown): string[] {
  if (typeof host !== 'string' || host.trim() === '') {
    return [`host: is empty; write a DNS name such as "api.openai.com"`];
  }
  const h = host.trim();
  if (h !== host || /\s/.test(h)) {
    return [`host: ${show(host)} contains whitespace; write the bare name, e.g. ${show(h.split(/\s+/)[0])}`];
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(h);
  if (scheme) {
    const name = hostPart(h.slice(scheme[0].length));
    return [`host: ${show(host)} contains a URL scheme ("${scheme[1]}://"); write only the name: ${show(name)}`];
  }
  if (h.includes('@')) {
    return [`host: ${show(host)} contains user information ("...@"); write only the name: ${show(hostPart(h))}`];
  }
  if (/[/?#]/.test(h)) {
    return [
      `host: ${show(host)} contains a path; the allowlist works on whole names, not paths: write ${show(hostPart(h))}`,
    ];
  }
  if (isIP(h.replace(/^\[|\]$/g, '')) !== 0 || /^\[.*\]$/.test(h)) {
    const ip = h.replace(/^\[|\]$/g, '');
    const cidr = isIP(ip) === 6 ? `${ip}/128` : `${ip}/32`;
    return [`host: ${show(host)} is an IP address; host rules take DNS names: allow addresses with a CIDR rule (e.g. ${show(cidr)}) instead`];
  }
  const withPort = /^(.*):(\d*)$/.exec(h);
  if (withPort && !withPort[1].includes(':')) {
    if (isIP(withPort[1]) !== 0) {
      return [`host: ${show(host)} is an IP address with a port; allow addresses with a CIDR rule (e.g. "${withPort[1]}/32") instead`];
    }
    return [`host: ${show(host)} contains a port; write ${show(withPort[1])} and put ${withPort[2] || 'the port'} in ports`];
  }
  if (h.includes('*')) {
    const rest = /^\*\.(.+)$/.exec(h);
    if (rest && !rest[1].includes('*')) {
      return [
        `host: ${show(host)} uses a wildcard; write host ".${rest[1].toLowerCase()}" with match: 'suffix' (matches ${rest[1].toLowerCase()} and all its subdomains)`,
      ];
    }
    return [`host: ${show(host)}: wildcards are not supported here; list each name as an exact rule, or use a suffix rule such as ".example.com"`];
  }
  if (/[^\x20-\x7e]/.test(h)) {
    const ascii = domainToASCII(h.replace(/^\./, ''));
    const hint = ascii ? `: write ${show((h.startsWith('.') ? '.' : '') + ascii)}` : '';
    return [`host: ${show(host)} contains non-ASCII characters; write its punycode (IDNA) form${hint}`];
  }

  const lower = h.toLowerCase();
  const errors: string[] = [];
  if (lower.startsWith('.') && match === 'exact') {
    errors.push(`host: ${show(host)} starts with "." which means a suffix match; set match: 'suffix', or write ${show(lower.slice(1))} for exactly that name`);
  }
  if (lower.endsWith('.')) {
    return [...errors, `host: ${show(host)} ends with "."; write it without the trailing dot: ${show(lower.replace(/\.+$/, ''))}`];
  }
  const bare = lower.replace(/^\./, '');
  if (bare.length > 253) {
    errors.push(`host: ${show(host)} is ${bare.length} characters long; a DNS name has at most 253`);
  }
  const labels = bare.split('.');
  for (const label of labels) {
    if (label === '') {
      errors.push(`host: ${show(host)} has an empty label ("..", or a lone "."); write a name such as "api.example.com"`);
      break;
    }
    if (label.length > 63) {
      errors.push(`host: label ${show(label)} in ${show(host)} is ${label.length} characters long; a DNS label has at most 63`);
    } else if (!LABEL.test(label)) {
      const bad = label.match(/[^a-z0-9-]/);
      errors.push(
        bad
          ? `host: ${show(host)} contains ${show(bad[0])} in label ${show(label)}; DNS labels use only letters, digits and "-"`
          : `host: label ${show(label)} in ${show(host)} starts or ends with "-"; DNS labels must begin and end with a letter or digit`,
      );
    }
  }
  if (errors.length === 0 && /^[0-9]+$/.test(labels[labels.length - 1])) {
    errors.push(`host: ${show(host)} ends in a numeric label, which is not a DNS name; for an address use a CIDR rule instead`);
  }
  if (errors.length === 0 && match === 'suffix' && labels.length < 2) {
    errors.push(`host: suffix ${show(host)} would allow a whole top-level domain; write at least two labels, e.g. ".example.com"`);
  }
  if (errors.length === 0) {
    const covered = METADATA_HOSTS.filter((m) => m === bare || (match === 'suffix' && m.endsWith(`.${bare}`)));
    if (covered.length) {
      errors.push(
        covered.includes(bare)
          ? `host: ${show(host)} is a cloud metadata service name; no allowlist may reach it (it hands out the node's credentials)`
          : `host: suffix ${show(host)} covers the cloud metadata service name ${show(covered[0])}; list the names you need as exact rules instead`,
      );
    }
  }
  return errors;
}

/** The host part of a URL-ish string: drops path, query, userinfo and port. */
function hostPart(s: string): string {
  let rest = s.split(/[/?#]/)[0];
  rest = rest.slice(rest.lastIndexOf('@') + 1);
  if (rest.startsWith('[')) return rest.slice(1, rest.indexOf(']') > 0 ? rest.indexOf(']') : undefined);
  return rest.replace(/:\d*$/, '').toLowerCase();
}
