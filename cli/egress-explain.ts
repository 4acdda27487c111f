/**
 * `paddock egress explain POOL [--dir dist] [--namespace NS] [--json]`: what a
 * pool's pods may reach, read from the synthesized objects (dist/*.k8s.yaml),
 * never from the constructs. For each allowlist the pool's pods carry
 * (label `egress.paddock.dev/<name>: allow`) it reads the allowlist's
 * ConfigMap `egress-<name>` (key `allowlist.json`, written by
 * EgressAllowlist): the backend, the proxy URL, and every host and CIDR rule
 * in effect with where it came from.
 *
 * Exit codes: 0 printed; 2 bad usage, or the pool / objects were not found.
 */
import * as fs from 'fs';
import * as path from 'path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { providerHost } from '../core/model-providers';
import { UsageError } from './args';
import type { Command } from './main';

const USAGE = `Usage: paddock egress explain POOL [--dir DIR] [--namespace NS] [--json]

Prints what the pool's pods may reach (host names, CIDRs, DNS) and how it is
enforced (backend: proxy, cilium or networkpolicy), read from the synthesized
objects in DIR/*.k8s.yaml.

Options:
  --dir DIR        the synthesized YAML [default dist, as written by \`npm run synth\`]
  --namespace NS   needed only when several namespaces hold a pool of that name
  --json           the same as JSON
  -h, --help       this text

Exit codes: 0 printed; 2 bad usage, or the pool / objects were not found.
`;

const EGRESS_LABEL_PREFIX = 'egress.paddock.dev/';

export interface ExplainOptions {
  readonly pool: string;
  /** Directory holding the synthesized *.k8s.yaml files. @default "dist" */
  readonly dir?: string;
  /** Needed only when several namespaces hold a pool of that name. */
  readonly namespace?: string;
}

export interface HostEntry {
  readonly host: string;
  readonly match: 'exact' | 'suffix';
  readonly ports: number[];
  readonly allowPlainHttp: boolean;
  readonly from: string[];
}

export interface CidrEntry {
  readonly cidr: string;
  readonly except: string[];
  readonly ports: number[];
  readonly protocol: 'TCP' | 'UDP';
  readonly from: string[];
}

/** allowlist.json, as EgressAllowlist writes it. */
export interface AllowlistDescription {
  readonly name: string;
  readonly namespace: string;
  readonly backend: 'proxy' | 'cilium' | 'networkpolicy';
  readonly pools: string[];
  readonly proxy?: { readonly url: string; readonly noProxy: string[] };
  readonly dns: { readonly namespace: string; readonly podLabels: Record<string, string> };
  readonly hosts: HostEntry[];
  readonly cidrs: CidrEntry[];
  readonly unenforced?: HostEntry[];
}

/** What a pool may reach. */
export interface PoolEgress {
  readonly pool: string;
  readonly namespace: string;
  /** The allowlists the pool's pods carry, each as synthesized. */
  readonly allowlists: AllowlistDescription[];
  /** HTTPS_PROXY / NO_PROXY of the pool's pods (pool.json `egress`). */
  readonly proxy?: { readonly url: string; readonly noProxy: string[] };
  /** Host names the pool's harnesses need (their harness.json `hosts`). */
  readonly harnessHosts: Array<{ readonly host: string; readonly harness: string }>;
  /** Providers the pool's model calls reach through the model gateway (pool.json `gateway`), not its egress. */
  readonly gateway?: { readonly url: string; readonly providers: Array<{ readonly host: string; readonly env: string }> };
}

/** The pool or the synthesized objects are not what explain needs: exit 2, like bad usage. */
export class ExplainError extends UsageError {}

interface KubeDoc {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
  spec?: any;
}

/** Reads every document of DIR/*.k8s.yaml. */
export function readSynthesized(dir: string): KubeDoc[] {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new ExplainError(`no directory "${dir}": synthesize first (npm run synth writes dist/), or pass --dir`);
  }
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.k8s.yaml')).sort();
  if (files.length === 0) throw new ExplainError(`no *.k8s.yaml in "${dir}": synthesize first (npm run synth), or pass --dir`);
  return files.flatMap((f) =>
    parseAllDocuments(fs.readFileSync(path.join(dir, f), 'utf8'))
      .map((d) => d.toJS() as KubeDoc)
      .filter((d) => d && typeof d === 'object'),
  );
}

/** The pool's egress, from the synthesized objects. */
export function explainEgress(opts: ExplainOptions): PoolEgress {
  const objects = readSynthesized(opts.dir ?? 'dist');
  const find = (kind: string, name: string, namespace: string) =>
    objects.find((o) => o.kind === kind && o.metadata?.name === name && (o.metadata?.namespace ?? '') === namespace);

  const poolMaps = objects.filter((o) => o.kind === 'ConfigMap' && o.metadata?.name === `pool-${opts.pool}` && o.data?.['pool.json']);
  const candidates = poolMaps.filter((o) => opts.namespace === undefined || o.metadata?.namespace === opts.namespace);
  if (candidates.length === 0) {
    const pools = objects
      .filter((o) => o.kind === 'ConfigMap' && o.data?.['pool.json'])
      .map((o) => `${o.metadata?.name?.replace(/^pool-/, '')} (namespace ${o.metadata?.namespace})`);
    throw new ExplainError(
      `no pool "${opts.pool}"${opts.namespace ? ` in namespace "${opts.namespace}"` : ''} in ${opts.dir ?? 'dist'}; ` +
        (pools.length ? `pools: ${[...new Set(pools)].sort().join(', ')}` : 'it holds no pools'),
    );
  }
  if (candidates.length > 1) {
    throw new ExplainError(`pool "${opts.pool}" exists in several namespaces (${candidates.map((c) => c.metadata?.namespace).join(', ')}); pass --namespace`);
  }
  const poolMap = candidates[0];
  const namespace = poolMap.metadata?.namespace ?? '';
  const poolSpec = parseJson(poolMap.data!['pool.json'], `ConfigMap "pool-${opts.pool}" key pool.json`);

  // The labels of the pool's pods: the worker Deployment, else the Job template.
  const deployment = find('Deployment', `pool-${opts.pool}`, namespace);
  let labels: Record<string, string> = deployment?.spec?.template?.metadata?.labels ?? {};
  if (!deployment && poolMap.data!['job-template.yaml']) {
    labels = (parseYaml(poolMap.data!['job-template.yaml']) as KubeDoc)?.spec?.template?.metadata?.labels ?? {};
  }
  const names = Object.entries(labels)
    .filter(([k, v]) => k.startsWith(EGRESS_LABEL_PREFIX) && v === 'allow')
    .map(([k]) => k.slice(EGRESS_LABEL_PREFIX.length))
    .sort();
  const allowlists = names.map((name) => {
    const cm = find('ConfigMap', `egress-${name}`, namespace);
    if (!cm?.data?.['allowlist.json']) {
      throw new ExplainError(`the pool's pods carry ${EGRESS_LABEL_PREFIX}${name}, but there is no ConfigMap "egress-${name}" with allowlist.json in namespace "${namespace}"`);
    }
    return parseJson(cm.data['allowlist.json'], `ConfigMap "egress-${name}" key allowlist.json`) as AllowlistDescription;
  });

  const harnessHosts = ((poolSpec.harnesses ?? []) as string[]).flatMap((harness) => {
    const cm = find('ConfigMap', `harness-${harness}`, namespace);
    const spec = cm?.data?.['harness.json'] ? parseJson(cm.data['harness.json'], `ConfigMap "harness-${harness}"`) : {};
    return ((spec.hosts ?? []) as string[]).map((host) => ({ host, harness }));
  });
  const gatewayProviders = ((poolSpec.gateway?.credentials ?? []) as Array<{ env: string }>).flatMap(({ env }) => {
    const host = providerHost(env);
    return host ? [{ host, env }] : [];
  });
  return {
    pool: opts.pool,
    namespace,
    allowlists,
    ...(poolSpec.egress?.proxy ? { proxy: { url: poolSpec.egress.proxy, noProxy: poolSpec.egress.noProxy ?? [] } } : {}),
    harnessHosts,
    ...(poolSpec.gateway?.url ? { gateway: { url: poolSpec.gateway.url, providers: gatewayProviders } } : {}),
  };
}

/** Human-readable: one line per destination, with how it is enforced and why it is there. */
export function formatEgress(e: PoolEgress): string {
  const out: string[] = [`Pool "${e.pool}" (namespace ${e.namespace})`];
  if (e.allowlists.length === 0) {
    out.push('  uses no egress allowlist: its pods reach nothing outside the namespace, not even DNS.');
    if (e.harnessHosts.length) {
      out.push(`  its harnesses need: ${e.harnessHosts.map((h) => `${h.host} (harness ${h.harness})`).join(', ')}`);
      out.push('  allow them with pool.allowEgressTo(new EgressAllowlist(platform, "...")).');
    }
    return out.join('\n') + '\n';
  }
  for (const a of e.allowlists) {
    const how =
      a.backend === 'proxy'
        ? `egress proxy ${a.proxy?.url ?? '?'}`
        : a.backend === 'cilium'
          ? `CiliumNetworkPolicy egress-${a.name}`
          : `NetworkPolicy egress-${a.name}`;
    out.push(`  allowlist "${a.name}": backend ${a.backend} (${how})${a.pools.length > 1 ? `, shared with pools ${a.pools.filter((p) => p !== e.pool).join(', ')}` : ''}`);
  }
  if (e.proxy) out.push(`  HTTPS_PROXY=HTTP_PROXY=${e.proxy.url}`, `  NO_PROXY=${e.proxy.noProxy.join(',')}`);

  const rows: string[][] = [];
  for (const a of e.allowlists) {
    for (const h of a.hosts) {
      rows.push([
        h.match === 'suffix' ? `${h.host} (and subdomains)` : h.host,
        `${h.allowPlainHttp ? 'https+http' : 'https'} ${h.ports.join(',')}`,
        a.backend === 'proxy' ? 'proxy' : 'cilium toFQDNs',
        h.from.map((f) => (f === 'rule' ? `rule of allowlist ${a.name}` : f)).join('; '),
      ]);
    }
    for (const c of a.cidrs) {
      rows.push([
        c.except.length ? `${c.cidr} except ${c.except.join(',')}` : c.cidr,
        `${c.protocol} ${c.ports.join(',')}`,
        'NetworkPolicy',
        c.from.map((f) => (f === 'rule' ? `rule of allowlist ${a.name}` : f)).join('; '),
      ]);
    }
  }
  for (const p of e.gateway?.providers ?? []) rows.push([p.host, 'https 443', 'model gateway', `${e.gateway!.url} holds ${p.env}; the pool's pods cannot reach the host`]);
  const dns = e.allowlists[0].dns;
  rows.push([
    `DNS: pods ${Object.entries(dns.podLabels).map(([k, v]) => `${k}=${v}`).join(',')} in ${dns.namespace}`,
    'UDP,TCP 53',
    e.allowlists.every((a) => a.backend === 'cilium') ? 'cilium DNS proxy' : 'NetworkPolicy',
    'every allowlist allows it',
  ]);
  out.push('', ...table(['may reach', 'ports', 'enforced by', 'because'], rows));

  // What a networkpolicy allowlist could not enforce may still be allowed by another of the pool's allowlists.
  const enforced = e.allowlists.flatMap((a) => a.hosts);
  const notAllowed = e.allowlists.flatMap((a) => a.unenforced ?? []).filter((need) => !enforced.some((rule) => covers(rule, need)));
  if (notAllowed.length) {
    out.push('', 'Needed but NOT allowed (backend networkpolicy sees only addresses: allow them by CIDR, or use backend proxy or cilium):');
    for (const h of notAllowed) out.push(`  ${h.host} ${h.ports.join(',')}  ${h.from.join('; ')}`);
  }
  return out.join('\n') + '\n';
}

const EXPLAIN_OPTIONS = {
  dir: { type: 'string' },
  namespace: { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** `paddock egress explain POOL`: prints the pool's egress, human-readable or as JSON. */
export const explainCommand: Command<typeof EXPLAIN_OPTIONS> = {
  usage: USAGE,
  options: EXPLAIN_OPTIONS,
  maxPositionals: 1,
  run: ({ values, positionals }, io) => {
    if (positionals.length !== 1) throw new ExplainError('takes one pool name, e.g. paddock egress explain codex');
    const egress = explainEgress({ pool: positionals[0], dir: values.dir, namespace: values.namespace });
    io.stdout(values.json ? JSON.stringify(egress, null, 2) + '\n' : formatEgress(egress));
    return 0;
  },
};

/** Whether host rule `rule` allows everything `need` asks for (names as Squid matches them). */
function covers(rule: HostEntry, need: HostEntry): boolean {
  const name = need.host.replace(/^\./, '');
  const nameOk =
    rule.match === 'suffix'
      ? name === rule.host.slice(1) || name.endsWith(rule.host) || (need.match === 'suffix' && need.host.endsWith(rule.host))
      : need.match === 'exact' && rule.host === need.host;
  return nameOk && need.ports.every((p) => rule.ports.includes(p));
}

function parseJson(text: string, what: string): any {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ExplainError(`${what} is not valid JSON: ${(e as Error).message}`);
  }
}

function table(header: string[], rows: string[][]): string[] {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  return all.map((r) => '  ' + r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]))).join('  '));
}
