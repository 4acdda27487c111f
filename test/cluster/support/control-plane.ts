/**
 * A real Kubernetes control plane on loopback for `npm run test:cluster`, from the
 * binaries test/cluster/tools/build.sh builds from Go modules:
 *
 *   etcd                     data in <dir>/etcd, client and peer URLs on 127.0.0.1
 *   kube-apiserver           TLS (a CA and certificates made with openssl at start), client
 *                            certificates, authorization Node,RBAC, the default admission
 *                            plugins (PodSecurity among them) plus NodeRestriction, service
 *                            account issuer + signing key (TokenRequest, TokenReview)
 *   kube-controller-manager  every default controller (job, garbage collector, namespace,
 *                            serviceaccount, serviceaccount-token, deployment, replicaset,
 *                            disruption, ...) with per-controller service account credentials;
 *                            node-lifecycle is off (kwok's node sends no heartbeats)
 *   kube-scheduler           binds pods to the fake node
 *   kwok                     the kubelet stand-in: one fake node; pods Running, and Job pods
 *                            Succeeded/Failed with the runner's termination message once the
 *                            test puts it on the pod (test/cluster/kwok-stages.yaml); its
 *                            kubelet API (TLS, the node's daemonEndpoints) serves pods/portforward
 *                            through the API server, to where a kwok PortForward object says,
 *                            and pods/log from the file a kwok Logs object names
 *
 * Every process runs in its own process group and is stopped by `stop()`; a watchdog
 * process stops them too if the test run itself dies (kill -9, SIGINT).
 */
import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as https from 'https';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';

export const TOOLS_DIR = path.resolve(__dirname, '..', 'tools');
export const BUILD_COMMAND = 'bash test/cluster/tools/build.sh';

export type ToolName =
  | 'etcd'
  | 'kube-apiserver'
  | 'kube-controller-manager'
  | 'kube-scheduler'
  | 'kwok'
  | 'kubectl'
  | 'kubeconform'
  | 'kube-score'
  | 'pulumi'
  | 'pulumi-language-nodejs'
  | 'pulumi-resource-kubernetes';

/** Where build.sh puts each tool (`build.sh --list`), and which are missing. */
export function toolPaths(): { paths: Record<ToolName, string>; missing: ToolName[] } {
  const out = execFileSync('bash', [path.join(TOOLS_DIR, 'build.sh'), '--list'], { encoding: 'utf8' });
  const paths = {} as Record<ToolName, string>;
  for (const line of out.trim().split('\n')) {
    const [name, file] = line.split(' ');
    paths[name as ToolName] = file;
  }
  const missing = (Object.keys(paths) as ToolName[]).filter((n) => !fs.existsSync(paths[n]));
  return { paths, missing };
}

/** What the suites need to reach the control plane (written to a JSON file by the global setup). */
export interface ClusterInfo {
  readonly dir: string;
  readonly server: string;
  readonly caFile: string;
  /** Admin (system:masters) client certificate. */
  readonly adminCert: string;
  readonly adminKey: string;
  readonly adminKubeconfig: string;
  readonly nodeName: string;
  readonly tools: Record<ToolName, string>;
  readonly logs: string;
  readonly pids: number[];
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA, the API server's serving certificate, client certificates, the service-account key pair. */
function makeCerts(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=paddock-test-ca'], dir);
  const sign = (name: string, subj: string, ext: string) => {
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subj], dir);
    fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`], dir);
  };
  sign(
    'apiserver',
    '/CN=kube-apiserver',
    'subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n',
  );
  const client = 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n';
  sign('admin', '/O=system:masters/CN=paddock-test-admin', client);
  sign('kcm', '/CN=system:kube-controller-manager', client);
  sign('scheduler', '/CN=system:kube-scheduler', client);
  // kwok plays every kubelet of its fake nodes and writes their pods' status: a kubelet's
  // identity (system:node:<name>) covers one node only, so kwok runs as an admin.
  sign('kwok', '/O=system:masters/CN=kwok', client);
  // kwok's kubelet API (pods/portforward) as the API server reaches it: a serving certificate
  // for the node's InternalIP, and the API server's client certificate for it (as kubeadm's).
  sign('kwok-serving', '/CN=kwok-node-0', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n');
  sign('apiserver-kubelet-client', '/O=system:masters/CN=kube-apiserver-kubelet-client', client);
  openssl(['genrsa', '-out', 'sa.key', '2048'], dir);
  openssl(['rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
}

export function kubeconfigYaml(server: string, caFile: string, user: { cert: string; key: string } | { token: string }, namespace?: string): string {
  const auth = 'token' in user ? `    token: ${user.token}` : `    client-certificate: ${user.cert}\n    client-key: ${user.key}`;
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: test',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority: ${caFile}`,
    'users:',
    '- name: user',
    '  user:',
    auth,
    'contexts:',
    '- name: test',
    '  context:',
    '    cluster: test',
    '    user: user',
    ...(namespace ? [`    namespace: ${namespace}`] : []),
    'current-context: test',
    '',
  ].join('\n');
}

/** One HTTPS request to the API server (client certificate or bearer token); JSON in and out. */
export function apiRequest(
  info: Pick<ClusterInfo, 'server' | 'caFile' | 'adminCert' | 'adminKey'>,
  method: string,
  urlPath: string,
  body?: unknown,
  opts: { token?: string; contentType?: string } = {},
): Promise<{ status: number; body: any }> {
  const url = new URL(urlPath, info.server);
  const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method,
        ca: fs.readFileSync(info.caFile),
        ...(opts.token ? {} : { cert: fs.readFileSync(info.adminCert), key: fs.readFileSync(info.adminKey) }),
        headers: {
          accept: 'application/json',
          ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
          ...(payload !== undefined ? { 'content-type': opts.contentType ?? 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
        },
        timeout: 30_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => {
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            // not JSON (e.g. /readyz)
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath}: timed out`)));
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

export async function until<T>(what: string, get: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000, debug: () => string = () => ''): Promise<T> {
  const end = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await get();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? ` (last error: ${(lastErr as Error).message})` : ''}\n${debug()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * kwok's kinds the tests use (kwok.x-k8s.io/v1alpha1, namespaced, one object per pod by
 * name), each with a schema of our own holding only the fields the tests use:
 * - PortForward: spec.forwards[{ports, target: {address, port}}] sends a pod port's
 *   pods/portforward streams to that address;
 * - Logs: spec.logs[{containers, logsFile}] serves a container's pods/log from a file on
 *   the host (CRI log format, one `<RFC3339 time> stdout F <line>` per line).
 */
const KWOK_KINDS = [
  {
    kind: 'PortForward',
    plural: 'portforwards',
    singular: 'portforward',
    spec: {
      type: 'object',
      required: ['forwards'],
      properties: {
        forwards: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              ports: { type: 'array', items: { type: 'integer' } },
              target: { type: 'object', required: ['port', 'address'], properties: { port: { type: 'integer', minimum: 0, maximum: 65535 }, address: { type: 'string', minLength: 1 } } },
            },
          },
        },
      },
    },
  },
  {
    kind: 'Logs',
    plural: 'logs',
    singular: 'logs',
    spec: {
      type: 'object',
      required: ['logs'],
      properties: { logs: { type: 'array', items: { type: 'object', required: ['logsFile'], properties: { containers: { type: 'array', items: { type: 'string' } }, logsFile: { type: 'string', minLength: 1 } } } } },
    },
  },
] as const;

async function installKwokCrds(info: Pick<ClusterInfo, 'server' | 'caFile' | 'adminCert' | 'adminKey'>, debug: () => string): Promise<void> {
  for (const k of KWOK_KINDS) {
    const name = `${k.plural}.kwok.x-k8s.io`;
    const crd = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name },
      spec: {
        group: 'kwok.x-k8s.io',
        scope: 'Namespaced',
        names: { kind: k.kind, listKind: `${k.kind}List`, plural: k.plural, singular: k.singular },
        versions: [
          {
            name: 'v1alpha1',
            served: true,
            storage: true,
            subresources: { status: {} },
            schema: {
              openAPIV3Schema: {
                type: 'object',
                required: ['spec'],
                properties: { spec: k.spec, status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
              },
            },
          },
        ],
      },
    };
    const r = await apiRequest(info, 'POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
    if (r.status !== 201) throw new Error(`could not create kwok's ${k.kind} CRD: ${r.status} ${JSON.stringify(r.body)}`);
    await until(
      `kwok's ${k.kind} CRD to be established`,
      async () => (await apiRequest(info, 'GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`)).body?.status?.conditions?.some((c: any) => c.type === 'Established' && c.status === 'True'),
      30_000,
      debug,
    );
  }
}

export interface ControlPlane {
  readonly info: ClusterInfo;
  stop(): Promise<void>;
}

interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
}

/** Stops a process group: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopGroup(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const kill = (sig: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, sig);
    } catch {
      // already gone
    }
  };
  kill('SIGTERM');
  const timer = setTimeout(() => kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export async function startControlPlane(opts: { dir?: string; log?: (line: string) => void } = {}): Promise<ControlPlane> {
  const log = opts.log ?? (() => undefined);
  const { paths: tools, missing } = toolPaths();
  const needed: ToolName[] = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok', 'kubectl'];
  const absent = needed.filter((n) => missing.includes(n));
  if (absent.length) {
    throw new Error(`the cluster tests need ${absent.join(', ')} (not in ${path.dirname(tools[absent[0]])}): build them from Go modules with\n  ${BUILD_COMMAND}\n(a cold build of everything takes about an hour on 2 cores; it is cached by version)`);
  }
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-cluster-'));
  const pki = path.join(dir, 'pki');
  const logs = path.join(dir, 'logs');
  fs.mkdirSync(logs, { recursive: true });
  makeCerts(pki);
  const f = (n: string) => path.join(pki, n);

  const procs: Proc[] = [];
  const pidFile = path.join(dir, 'pids');
  const start = (name: string, args: string[]) => {
    const out = fs.openSync(path.join(logs, `${name}.log`), 'a');
    const child = spawn(tools[name as ToolName], args, { detached: true, stdio: ['ignore', out, out], cwd: dir, env: { PATH: process.env.PATH, HOME: dir } });
    fs.closeSync(out);
    child.on('exit', (code, signal) => log(`${name} exited (${code ?? signal})`));
    procs.push({ name, child });
    fs.appendFileSync(pidFile, `${child.pid}\n`);
    return child;
  };
  // The watchdog: stops every process group in the pid file when this process is gone.
  const watchdog = spawn(
    process.execPath,
    [
      '-e',
      `const fs=require('fs');const [parent,file]=process.argv.slice(1);setInterval(()=>{try{process.kill(+parent,0)}catch{for(const p of fs.readFileSync(file,'utf8').split('\\n').filter(Boolean)){try{process.kill(-p,'SIGKILL')}catch{}}process.exit(0)}},1000);`,
      String(process.pid),
      pidFile,
    ],
    { detached: true, stdio: 'ignore' },
  );
  watchdog.unref();

  const stop = async () => {
    for (const p of [...procs].reverse()) await stopGroup(p.child);
    try {
      process.kill(watchdog.pid!, 'SIGKILL');
    } catch {
      // gone
    }
  };

  try {
    const [etcdClient, etcdPeer, apiPort, kcmPort, schedPort, kwokPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
    const t0 = Date.now();
    start('etcd', [
      '--name=test',
      `--data-dir=${path.join(dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=test=http://127.0.0.1:${etcdPeer}`,
      '--unsafe-no-fsync',
      '--log-level=warn',
    ]);
    const server = `https://127.0.0.1:${apiPort}`;
    start('kube-apiserver', [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--cert-dir=${path.join(dir, 'apiserver')}`,
      `--tls-cert-file=${f('apiserver.crt')}`,
      `--tls-private-key-file=${f('apiserver.key')}`,
      `--client-ca-file=${f('ca.crt')}`,
      '--service-cluster-ip-range=10.96.0.0/24',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${f('sa.pub')}`,
      `--service-account-signing-key-file=${f('sa.key')}`,
      '--authorization-mode=Node,RBAC',
      // Added to the defaults (which include PodSecurity, ServiceAccount, NamespaceLifecycle, RuntimeClass, ...).
      '--enable-admission-plugins=NodeRestriction',
      // As kubeadm and kind run it: privileged pods are possible, so it is PodSecurity that refuses them.
      '--allow-privileged=true',
      // The kubelet API (kwok's): its certificate checked against the CA, the node's InternalIP
      // (its Hostname does not resolve here), the API server's own client certificate.
      `--kubelet-certificate-authority=${f('ca.crt')}`,
      `--kubelet-client-certificate=${f('apiserver-kubelet-client.crt')}`,
      `--kubelet-client-key=${f('apiserver-kubelet-client.key')}`,
      '--kubelet-preferred-address-types=InternalIP',
      '--profiling=false',
      '--v=1',
    ]);
    const info: ClusterInfo = {
      dir,
      server,
      caFile: f('ca.crt'),
      adminCert: f('admin.crt'),
      adminKey: f('admin.key'),
      adminKubeconfig: path.join(dir, 'admin.kubeconfig'),
      nodeName: 'kwok-node-0',
      tools,
      logs,
      pids: [],
    };
    const kubeconfig = (name: string) => {
      const file = path.join(dir, `${name}.kubeconfig`);
      fs.writeFileSync(file, kubeconfigYaml(server, f('ca.crt'), { cert: f(`${name}.crt`), key: f(`${name}.key`) }));
      return file;
    };
    kubeconfig('admin');
    const logTail = (name: string) => () => {
      try {
        return fs.readFileSync(path.join(logs, `${name}.log`), 'utf8').split('\n').slice(-30).join('\n');
      } catch {
        return '';
      }
    };
    await until('kube-apiserver /readyz', async () => (await apiRequest(info, 'GET', '/readyz')).status === 200, 90_000, logTail('kube-apiserver'));
    log(`kube-apiserver ready in ${Date.now() - t0} ms`);

    const kcm = kubeconfig('kcm');
    start('kube-controller-manager', [
      `--kubeconfig=${kcm}`,
      `--authentication-kubeconfig=${kcm}`,
      `--authorization-kubeconfig=${kcm}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${kcmPort}`,
      `--cert-dir=${path.join(dir, 'kcm')}`,
      '--leader-elect=false',
      '--use-service-account-credentials=true',
      `--service-account-private-key-file=${f('sa.key')}`,
      `--root-ca-file=${f('ca.crt')}`,
      '--cluster-name=paddock-test',
      '--controllers=*,-node-lifecycle-controller',
      '--v=1',
    ]);
    const sched = kubeconfig('scheduler');
    start('kube-scheduler', [
      `--kubeconfig=${sched}`,
      `--authentication-kubeconfig=${sched}`,
      `--authorization-kubeconfig=${sched}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${schedPort}`,
      `--cert-dir=${path.join(dir, 'scheduler')}`,
      '--leader-elect=false',
      '--v=1',
    ]);
    const kwokConfig = path.join(dir, 'kwok.yaml');
    fs.writeFileSync(kwokConfig, fs.readFileSync(path.resolve(__dirname, '..', 'kwok-stages.yaml'), 'utf8'));
    // kwok's PortForward and Logs objects (which pod port goes where, which file is a container's log) are read from the API.
    await installKwokCrds(info, logTail('kube-apiserver'));
    start('kwok', [
      `--kubeconfig=${kubeconfig('kwok')}`,
      `--config=${kwokConfig}`,
      '--enable-crds=PortForward,Logs',
      `--tls-cert-file=${f('kwok-serving.crt')}`,
      `--tls-private-key-file=${f('kwok-serving.key')}`,
      // The node's status.daemonEndpoints.kubeletEndpoint.Port (test/cluster/kwok-stages.yaml).
      `--node-port=${kwokPort}`,
      '--manage-all-nodes=false',
      '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
      `--server-address=127.0.0.1:${kwokPort}`,
      '--node-ip=127.0.0.1',
      '--cidr=10.244.0.0/16',
      '--v=INFO',
    ]);
    // The fake node kwok manages.
    const node = await apiRequest(info, 'POST', '/api/v1/nodes', {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: info.nodeName,
        annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
        labels: { 'kubernetes.io/hostname': info.nodeName, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64', type: 'kwok' },
      },
      status: { allocatable: { cpu: '32', memory: '256Gi', pods: '110' }, capacity: { cpu: '32', memory: '256Gi', pods: '110' } },
    });
    if (node.status !== 201) throw new Error(`could not create the fake node: ${node.status} ${JSON.stringify(node.body)}`);
    await until(
      'the fake node to be Ready (kwok)',
      async () => (await apiRequest(info, 'GET', `/api/v1/nodes/${info.nodeName}`)).body?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True'),
      60_000,
      logTail('kwok'),
    );
    // TaintNodesByCondition admission gives every new node the not-ready taint; the
    // node-lifecycle controller would lift it, but it is off (no heartbeats from kwok).
    const untaint = await apiRequest(info, 'PATCH', `/api/v1/nodes/${info.nodeName}`, { spec: { taints: null } }, { contentType: 'application/merge-patch+json' });
    if (untaint.status !== 200) throw new Error(`could not lift the fake node's not-ready taint: ${untaint.status} ${JSON.stringify(untaint.body)}`);
    // The serviceaccount controller is up when namespace default has its ServiceAccount.
    await until('ServiceAccount default/default (kube-controller-manager)', async () => (await apiRequest(info, 'GET', '/api/v1/namespaces/default/serviceaccounts/default')).status === 200, 60_000, logTail('kube-controller-manager'));
    log(`control plane ready in ${Date.now() - t0} ms (${dir})`);
    return { info: { ...info, pids: procs.map((p) => p.child.pid!) }, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
