/**
 * Pulumi's documented unit-test mode: `pulumi.runtime.setMocks` replaces the engine
 * and the providers, so no CLI and no cluster are involved. Each registration the
 * SDK sends is recorded as the mock sees it (inputs serialized and deserialized as on
 * the wire: secrets stay wrapped in Pulumi's secret envelope).
 *
 * Import this module before anything that constructs resources: it installs the
 * mocks when loaded.
 */
import * as pulumi from '@pulumi/pulumi';

export interface Registration {
  readonly type: string;
  readonly name: string;
  /** Inputs as the mock monitor received them; secrets are `{ [SECRET_SIG_KEY]: SECRET_SIG, value }`. */
  readonly inputs: any;
  /** Provider reference `urn::id`, or "" for the default provider. */
  readonly provider: string;
  readonly custom: boolean;
  /** Order in which the mock saw the registrations. */
  readonly seq: number;
}

/** Pulumi's wire signature for a secret value (sdk/nodejs/runtime/rpc.ts specialSigKey / specialSecretSig). */
export const SECRET_SIG_KEY = '4dabf18193072939515e22adb298388d';
export const SECRET_SIG = '1b47061264138c4ac30d75fd1eb44270';

export const registrations: Registration[] = [];

/** Installs the mocks on the given SDK instance (a fresh one inside jest.isolateModules). */
export function installMocks(sdk: typeof pulumi = pulumi, sink: Registration[] = registrations, project = 'paddock'): void {
  sdk.runtime.setMocks(
    {
      newResource: (args) => {
        sink.push({ type: args.type, name: args.name, inputs: args.inputs, provider: args.provider ?? '', custom: args.custom ?? false, seq: sink.length });
        return { id: `${args.name}-id`, state: args.inputs };
      },
      call: (args) => args.inputs,
    },
    project,
    'test',
    false,
  );
}

installMocks();

/** The value of an Output, once known (under mocks every value is known). */
export function valueOf<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => output.apply((v) => resolve(v)));
}

export function isSecretEnvelope(value: unknown): value is { value: unknown } {
  return typeof value === 'object' && value !== null && (value as Record<string, unknown>)[SECRET_SIG_KEY] === SECRET_SIG;
}

/** A copy with every secret envelope replaced by its value (for schema checks and comparisons). */
export function unwrapSecrets(value: any): any {
  if (isSecretEnvelope(value)) return unwrapSecrets(value.value);
  if (Array.isArray(value)) return value.map(unwrapSecrets);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unwrapSecrets(v)]));
  return value;
}

/**
 * Every path (e.g. `stringData.OPENAI_API_KEY`) where `needle` occurs in plain text,
 * walking objects, arrays, keys and strings, but not into secret envelopes: what is
 * inside one is encrypted in the state and masked in previews.
 */
export function plaintextOccurrences(value: unknown, needle: string, path = ''): string[] {
  if (isSecretEnvelope(value)) return [];
  if (typeof value === 'string') return value.includes(needle) ? [path || '(root)'] : [];
  if (Array.isArray(value)) return value.flatMap((v, i) => plaintextOccurrences(v, needle, `${path}[${i}]`));
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => [
      ...(k.includes(needle) ? [`${path}.${k} (key)`] : []),
      ...plaintextOccurrences(v, needle, path ? `${path}.${k}` : k),
    ]);
  }
  return [];
}
