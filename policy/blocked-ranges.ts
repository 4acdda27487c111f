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
  // IPv4-mapped IPv6 (::ffff:10.0.0.1 is 10.0.0.1 on a dual-stack socket).
  '::ffff:0:0/96',
];

/**
 * The cloud metadata services (they hand out the node's credentials): blocked under
 * every backend, even by a CIDR rule that names their range (AWS, GCP, Azure, OpenStack:
 * 169.254.169.254; AWS over IPv6: fd00:ec2::254).
 */
export const METADATA_ADDRESSES: readonly string[] = ['169.254.169.254/32', 'fd00:ec2::254/128'];

/** Names under which clouds serve their metadata service; no host rule may name or cover them. */
export const METADATA_HOSTS: readonly string[] = [
  'metadata',
  'metadata.google.internal',
  'metadata.goog',
  'instance-data',
  'instance-data.ec2.internal',
  'metadata.azure.internal',
];
