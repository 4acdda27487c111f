/**
 * `import { AgentPlatform } from 'paddock/pulumi'`: Paddock as a Pulumi
 * component, for your own stacks. Needs @pulumi/pulumi and @pulumi/kubernetes
 * (optional peer dependencies of the package).
 */
export {
  AGENT_PLATFORM_TYPE,
  AgentPlatform,
  SKIP_AWAIT_ANNOTATION,
  checkCredentialValues,
  findCredentialLeaks,
  kubernetesResourceName,
  synthesizePlatform,
} from './agent-platform';
export type { AgentPlatformArgs, CredentialValues } from './agent-platform';
export { EXAMPLE_CREDENTIAL_CONFIG, examplePlatformArgs } from './example-args';
export { examplePlatform } from '../example-platform';
export type {
  AllowlistDefinition,
  CredentialDefinition,
  HarnessDefinition,
  PlatformDefinition,
  PoolDefinition,
  SandboxDefinition,
  TaskDefinition,
} from '../platform-definition';
