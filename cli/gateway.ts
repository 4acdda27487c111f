/** `paddock gateway --config gateway.json`: the model gateway (controller/model-gateway.ts). */
import * as fs from 'fs';
import { GatewayConfig, kubeconfigReviewer, startGateway } from '../controller/model-gateway';
import { positiveInt, UsageError } from './args';
import type { Command } from './main';

const GATEWAY_OPTIONS = {
  config: { type: 'string', example: '/etc/paddock/gateway/gateway.json' },
  port: { type: 'string', example: '8080' },
  host: { type: 'string', example: '0.0.0.0' },
  kubeconfig: { type: 'string', example: '~/.kube/config' },
} as const;

export const gatewayCommand: Command<typeof GATEWAY_OPTIONS> = {
  usage: `Usage: paddock gateway --config FILE [--port 8080] [--host 0.0.0.0] [--kubeconfig FILE]

The model gateway: holds the model keys, authenticates each caller as its pool,
forwards only to that pool's providers with the real key, streaming.

Options:
  --config FILE        gateway.json (routes per pool)  [default /etc/paddock/gateway/gateway.json]
  --port N             listen port                     [default 8080]
  --host ADDR          listen address                  [default 0.0.0.0]
  --kubeconfig FILE    check callers' tokens (TokenReview) as this kubeconfig's user
                                                       [default: in-cluster, as the pod's ServiceAccount]
  -h, --help           this text

Exit codes: 0 on SIGTERM; 2 bad arguments or an unreadable config.
`,
  options: GATEWAY_OPTIONS,
  run: async ({ values }) => {
    const file = values.config ?? '/etc/paddock/gateway/gateway.json';
    let config: GatewayConfig;
    try {
      config = JSON.parse(fs.readFileSync(file, 'utf8')) as GatewayConfig;
    } catch (err) {
      throw new UsageError(`--config ${file}: cannot read it as JSON (${(err as Error).message}); give the gateway.json of the ConfigMap paddock-model-gateway`);
    }
    if (!config || typeof config.pools !== 'object') throw new UsageError(`--config ${file}: has no "pools" object`);
    const port = values.port !== undefined ? positiveInt(values.port, '--port', 8080) : 8080;
    let reviewer;
    try {
      reviewer = values.kubeconfig ? await kubeconfigReviewer(values.kubeconfig) : undefined;
    } catch (err) {
      throw new UsageError(`--kubeconfig ${values.kubeconfig}: ${(err as Error).message}`);
    }
    const gw = await startGateway({ config, port, host: values.host, ...(reviewer ? { reviewer } : {}), log: (l) => process.stderr.write(`[paddock gateway] ${l}\n`) });
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', resolve);
      process.once('SIGINT', resolve);
    });
    await gw.close();
    return 0;
  },
};
