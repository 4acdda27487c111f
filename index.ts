/**
 * `import { ... } from 'paddock'`: the construct library, the platform as data
 * (buildPlatform, PlatformDefinition) and the spec types the runner reads.
 * Nothing here loads Pulumi; the Pulumi component is `paddock/pulumi`.
 */
export * from './constructs';
export { buildPlatform } from './stacks/platform-definition';
export type {
  AllowlistDefinition,
  CredentialDefinition,
  HarnessDefinition,
  PlatformDefinition,
  PoolDefinition,
  SandboxDefinition,
  TaskDefinition,
} from './stacks/platform-definition';
export { SPEC_API_VERSION, SpecError, validateSpec } from './policy/specs';
export type {
  ConfigFileSpec,
  ConfigLayerSpec,
  CredentialEnvSpec,
  CredentialFileSpec,
  GitCredentialSpec,
  GitSourceSpec,
  HarnessSpec,
  PoolSpec,
  PromptVia,
  ResultsSpec,
  SpecKind,
  TaskSpec,
} from './policy/specs';
