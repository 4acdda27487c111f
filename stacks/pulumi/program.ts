/**
 * The Pulumi program of this repository (Pulumi.yaml `main:` points at its
 * build, lib/stacks/pulumi/program.js): the example platform, the same one
 * `cdk8s synth` writes to dist/, provisioned by `pulumi up` into the cluster
 * of the ambient kubeconfig (or `pulumi config set kubernetes:context ...`).
 * Configuration: see example-args.ts. Stack outputs: the exports below.
 */
import * as pulumi from '@pulumi/pulumi';
import { AgentPlatform } from './agent-platform';
import { examplePlatformArgs } from './example-args';

const config = new pulumi.Config();
const args = examplePlatformArgs(config);

for (const credential of args.credentials ?? []) {
  if (!args.credentialValues?.[credential.secretName]) {
    pulumi.log.warn(
      `Secret "${credential.secretName}" is not created by this stack; create it in namespace "${args.namespace}" ` +
        `(keys: ${credential.keys.join(', ')}) or set its value with pulumi config set --secret`,
    );
  }
}

const platform = new AgentPlatform('paddock', args);

export const namespace = platform.namespace;
export const poolNames = platform.poolNames;
export const controllerService = platform.controllerService;
export const controllerUrl = platform.controllerUrl;
export const taskJobNames = platform.taskJobNames;
export const credentialSecretNames = platform.credentialSecretNames;
