/**
 * CIDR parsing and the private ranges an allowlist never reaches unless it
 * names them: a rule for 0.0.0.0/0 must not open the cluster network or the
 * cloud metadata endpoint (169.254.169.254).
 */
import { BLOCKED_RANGES, METADATA_ADDRESSES } from '../policy/blocked-ranges';
import { fail } from '../core/validation';

export interface Cidr {
  readonly text: string;
  readonly version: 4 | 6;
  readonly base: bigint;
  readonly prefix: number;
}

const BLOCKED = BLOCKED_RANGES.map((c) => parseCidr(c, 'BLOCKED_RANGES'));
const METADATA = METADATA_ADDRESSES.map((c) => parseCidr(c, 'METADATA_ADDRESSES'));

export function parseCidr(text: string, field: string): Cidr {
  if (typeof text !== 'string' || !text.trim()) {
    fail(`${field}: must be a CIDR such as "203.0.113.0/24"`);
  }
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const version = address.includes(':') ? 6 : 4;
  if (slash < 0) {
    fail(`${field}: CIDR mask is missing in IPv${version}: "${text}". Did you mean "${text}/${version === 4 ? 32 : 128}"?`);
  }
  const bits = version === 4 ? 32 : 128;
  const prefixText = text.slice(slash + 1);
  const prefix = Number(prefixText);
  if (!/^\d{1,3}$/.test(prefixText) || prefix > bits) {
    fail(`${field}: "${text}" has an invalid mask; IPv${version} masks are 0 to ${bits}`);
  }
  const value = version === 4 ? parseIpv4(address) : parseIpv6(address);
  if (value === undefined) {
    fail(`${field}: "${address}" is not an IPv${version} address`);
  }
  const hostBits = BigInt(bits - prefix);
  const base = (value >> hostBits) << hostBits;
  if (base !== value) {
    const fixed = `${formatAddress(base, version)}/${prefix}`;
    fail(`${field}: "${text}" has host bits set. Did you mean "${fixed}"?`);
  }
  return { text, version, base, prefix };
}

/** Whether `inner` lies inside `outer` (or equals it). */
export function contains(outer: Cidr, inner: Cidr): boolean {
  if (outer.version !== inner.version || inner.prefix < outer.prefix) return false;
  const bits = BigInt((outer.version === 4 ? 32 : 128) - outer.prefix);
  return inner.base >> bits === outer.base >> bits;
}

/**
 * IPv4-mapped IPv6 (::ffff:0:0/96). The API server refuses it in a NetworkPolicy
 * ipBlock ("must not have an IPv4-mapped IPv6 address"), and there it is not needed:
 * traffic to ::ffff:a.b.c.d leaves the pod as IPv4 to a.b.c.d, which the IPv4
 * excepts cover. Squid and Cilium keep it in their lists.
 */
const IPV4_MAPPED = parseCidr('::ffff:0:0/96', 'IPV4_MAPPED');

/**
 * The blocked ranges strictly inside `cidr`, to list as NetworkPolicy
 * `except`. A rule inside a blocked range names it explicitly: nothing to except.
 */
export function blockedRangesWithin(cidr: Cidr): string[] {
  // A rule inside a blocked range still never reaches the metadata service.
  if (BLOCKED.some((blocked) => contains(blocked, cidr))) return METADATA.filter((m) => contains(cidr, m) && m.prefix > cidr.prefix).map((m) => m.text);
  return BLOCKED.filter((blocked) => contains(cidr, blocked) && blocked.prefix > cidr.prefix && !contains(IPV4_MAPPED, blocked)).map((b) => b.text);
}

/** The metadata address a CIDR rule is exactly (it cannot except itself), if any. */
export function metadataAddressOf(cidr: Cidr): string | undefined {
  return METADATA.find((m) => contains(m, cidr))?.text;
}

/** Blocked ranges as Cilium deny rules, each excepting the user's own CIDR rules inside it (never a metadata address). */
export function blockedRangesExcept(rules: readonly Cidr[]): Array<{ cidr: string; except?: string[] }> {
  const denied = BLOCKED.filter((blocked) => !rules.some((r) => r.version === blocked.version && r.prefix === blocked.prefix && r.base === blocked.base)).map((blocked) => {
    const named = rules.filter((r) => contains(blocked, r) && r.prefix > blocked.prefix).map((r) => r.text);
    return { cidr: blocked.text, ...(named.length ? { except: [...new Set(named)].sort() } : {}) };
  });
  return [...denied, ...METADATA.map((m) => ({ cidr: m.text }))];
}

function parseIpv4(address: string): bigint | undefined {
  const parts = address.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) return undefined;
  return parts.reduce((acc, p) => (acc << 8n) + BigInt(Number(p)), 0n);
}

function parseIpv6(address: string): bigint | undefined {
  if (!/^[0-9a-fA-F:]+$/.test(address) || address.split('::').length > 2) return undefined;
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const headParts = head ? head.split(':') : [];
  const tailParts = tail ? tail.split(':') : [];
  const missing = 8 - headParts.length - tailParts.length;
  if ((tail === undefined && missing !== 0) || missing < 0) return undefined;
  const parts = [...headParts, ...Array(tail === undefined ? 0 : missing).fill('0'), ...tailParts];
  if (parts.length !== 8 || parts.some((p) => !/^[0-9a-fA-F]{1,4}$/.test(p))) return undefined;
  return parts.reduce((acc, p) => (acc << 16n) + BigInt(parseInt(p, 16)), 0n);
}

function formatAddress(value: bigint, version: 4 | 6): string {
  if (version === 4) {
    return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 255n)).join('.');
  }
  const groups = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(((value >> shift) & 0xffffn).toString(16));
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}
