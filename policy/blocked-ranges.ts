/**
 * Destinations no allowlist reaches by accident, in one list for every
 * enforcer (NetworkPolicy `except`, the Squid proxy): "this" network, RFC 1918
 * private, shared address space (CGN), loopback, link-local (including the
 * cloud metadata service 169.254.169.254), IPv6 loopback, unique local and
 * link-local.
 */
export const BLOCKED_RANGES: readonly string[] = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '::1/128',
  'fc00::/7',
  'fe80::/10',
];
