/**
 * The forge's REST API from the publish Job. Git reads HTTPS_PROXY and its CA settings
 * itself; Node's fetch does neither, so the publisher's pull/merge request calls go
 * through this: behind the egress proxy one CONNECT tunnel per request to the API's
 * host:port (the proxy allows only the allowlisted names), then TLS (or plain HTTP, for
 * an http:// API) over it. NO_PROXY names go direct, as with git. A private CA (the one
 * git is given) is trusted beside the public roots, through the tunnel and direct.
 */
import * as http from 'http';
import * as https from 'https';
import * as net from 'net';
import type { Duplex } from 'stream';
import * as tls from 'tls';

export interface ForgeFetchOptions {
  /** HTTP_PROXY-style URL of the egress proxy. @default - direct */
  readonly proxy?: string;
  /** Hosts fetched directly though a proxy is set. */
  readonly noProxy?: readonly string[];
  /** A PEM CA bundle trusted besides the public roots (a private forge). */
  readonly ca?: string;
}

/** A fetch for the forge's API: through `proxy` unless NO_PROXY names the host, trusting `ca` too. */
export function forgeFetch(opts: ForgeFetchOptions, direct: typeof fetch = fetch): typeof fetch {
  const p = opts.proxy ? new URL(opts.proxy) : undefined;
  if (p && p.protocol !== 'http:') throw new Error(`HTTPS_PROXY: "${opts.proxy}" must be an http:// URL of the egress proxy, e.g. http://egress-proxy-publish.paddock.svc:3128`);
  const ca = opts.ca ? [...tls.rootCertificates, opts.ca] : undefined;
  return (async (input: string | URL | Request, init: RequestInit = {}) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const tunnel = p && !bypasses(url.hostname, opts.noProxy ?? []) ? p : undefined;
    // Node's own fetch serves what needs neither a tunnel nor a private CA.
    if (!tunnel && !(ca && url.protocol === 'https:')) return direct(input, init);
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    const socket = tunnel ? await connectTunnel(tunnel, url.hostname, port) : undefined;
    const body = init.body === undefined || init.body === null ? undefined : Buffer.from(String(init.body));
    const headers: Record<string, string> = { ...Object.fromEntries(new Headers(init.headers).entries()), host: url.host, ...(body ? { 'content-length': String(body.length) } : {}) };
    const options = { method: init.method ?? 'GET', path: `${url.pathname}${url.search}`, headers };
    const servername = net.isIP(url.hostname) ? undefined : url.hostname;
    return new Promise<Response>((resolve, reject) => {
      const onResponse = (res: http.IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const out = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out.set(k, Array.isArray(v) ? v.join(', ') : v);
          resolve(new Response(chunks.length ? Buffer.concat(chunks) : null, { status: res.statusCode ?? 502, headers: out }));
        });
        res.on('error', reject);
      };
      const req =
        url.protocol === 'https:'
          ? https.request({ ...options, createConnection: () => tls.connect({ ...(socket ? { socket } : { host: url.hostname, port }), servername, ...(ca ? { ca } : {}) }) }, onResponse)
          : http.request({ ...options, createConnection: () => socket! }, onResponse);
      req.on('error', (err) => reject(new Error(`${options.method} ${url.origin}${url.pathname}: ${err.message}${/certificate|self.signed/i.test(err.message) ? ' (a private forge: give its CA as GIT_SSL_CAINFO or SSL_CERT_FILE, as for git)' : ''}`)));
      req.end(body);
    });
  }) as typeof fetch;
}

function connectTunnel(proxy: URL, host: string, port: number): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const target = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    const req = http.request({ host: proxy.hostname, port: Number(proxy.port || 80), method: 'CONNECT', path: target, headers: { host: target } });
    req.on('connect', (res, socket) => {
      if (res.statusCode === 200) return resolve(socket);
      socket.destroy();
      reject(new Error(`the egress proxy refused CONNECT ${target}: HTTP ${res.statusCode} (is ${host} on the publish allowlist?)`));
    });
    req.on('error', (err) => reject(new Error(`cannot reach the egress proxy ${proxy.host}: ${err.message}`)));
    req.end();
  });
}

/** NO_PROXY matching as curl does: exact names, ".suffix" or "suffix" for subdomains, "*" for all. */
function bypasses(host: string, noProxy: readonly string[]): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return noProxy.some((raw) => {
    const n = raw.trim().toLowerCase();
    if (!n) return false;
    if (n === '*') return true;
    const bare = n.replace(/^\./, '');
    return h === bare || h.endsWith(`.${bare}`);
  });
}
