/**
 * The model providers the gateway fronts, keyed by the credential variable a harness
 * reads (its `credentialEnv`): where the gateway forwards, and how it puts the real key
 * on the way out. One table for synthesis (the gateway's routes) and the runner (how each
 * CLI is pointed at the gateway).
 */

export interface ModelProvider {
  /** Route segment: <gateway>/<pool>/<provider>/... */
  readonly name: string;
  /** Where requests go, without a trailing slash. */
  readonly upstream: string;
  /** The header the gateway sets to the real key (lower case), and its value with {key}. */
  readonly header: string;
  readonly value: string;
}

export const MODEL_PROVIDERS: Readonly<Record<string, ModelProvider>> = {
  OPENAI_API_KEY: { name: 'openai', upstream: 'https://api.openai.com', header: 'authorization', value: 'Bearer {key}' },
  ANTHROPIC_API_KEY: { name: 'anthropic', upstream: 'https://api.anthropic.com', header: 'x-api-key', value: '{key}' },
  GEMINI_API_KEY: { name: 'gemini', upstream: 'https://generativelanguage.googleapis.com', header: 'x-goog-api-key', value: '{key}' },
  // Copilot CLI's bring-your-own-key mode (an OpenAI-compatible provider).
  COPILOT_PROVIDER_API_KEY: { name: 'copilot-byok', upstream: 'https://api.openai.com', header: 'authorization', value: 'Bearer {key}' },
};

/** The host name a credential variable's provider is reached at (the gateway's egress, not the pool's). */
export function providerHost(env: string): string | undefined {
  const provider = MODEL_PROVIDERS[env];
  return provider ? new URL(provider.upstream).hostname : undefined;
}

/** The headers (and query parameter) a CLI may carry its key in: the gateway reads the caller's token from them and strips them all. */
export const CALLER_KEY_HEADERS = ['authorization', 'x-api-key', 'x-goog-api-key', 'api-key'] as const;
export const CALLER_KEY_QUERY = 'key';

/** Audience of the ServiceAccount token agent pods present to the gateway (never the API server's). */
export const GATEWAY_AUDIENCE = 'paddock-model-gateway';
/** Where agent pods get that projected token. */
export const GATEWAY_TOKEN_DIR = '/var/run/secrets/paddock/gateway';

/**
 * The cap on a CLI's retries that the gateway keeps for CLIs without a retry setting of
 * their own (a harness's `gatewayMaxRetries`): the runner appends it to the provider's
 * route segment, `<pool>/<provider>;max-retries=N/...` (every CLI takes a base URL, not
 * every CLI extra headers).
 */
export const MAX_RETRIES_PARAM = 'max-retries';
/** The most retries a harness may ask for (the presets' maxRetries limit). */
export const MAX_RETRIES_LIMIT = 10;

/**
 * What the gateway answers in place of the failure that uses up a caller's retries.
 * 424 (Failed Dependency: the request failed because the provider did) is final for every
 * preset's CLI, measured: they retry 408, 409, 429 and 5xx only.
 */
export const PROVIDER_FAILING_STATUS = 424;

/**
 * The message of that answer. Worded so opencode does not retry it anyway: opencode
 * retries any error whose text holds a 5xx or 429 status number, "server error",
 * "unavailable", "try again" and the like.
 */
export function providerFailingMessage(provider: string, failures: number, maxRetries: number): string {
  return `paddock model gateway: provider ${provider} failed ${failures} request${failures === 1 ? '' : 's'} in a row (a failure status or no answer); the harness allows ${maxRetries} retr${maxRetries === 1 ? 'y' : 'ies'} (maxRetries), so this answer is final`;
}

/** Finds that message in a CLI's output (which prints it, quoted or not). */
export const PROVIDER_FAILING_PATTERN = /paddock model gateway: provider ([A-Za-z0-9._-]+) failed (\d+) requests? in a row/;
