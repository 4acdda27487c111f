/**
 * The bearer token a kubeconfig's current user sends, from a loaded
 * @kubernetes/client-node KubeConfig (typed structurally: core never loads client-node).
 * applyToFetchOptions also checks the cluster entry (server, CA, client certificate
 * files) and throws on a bad one. Undefined for a user without a token (a client certificate).
 */
export async function kubeconfigBearer(kc: { applyToFetchOptions(opts: { headers?: Record<string, string> }): Promise<unknown> }): Promise<string | undefined> {
  const opts: { headers?: Record<string, string> } = {};
  await kc.applyToFetchOptions(opts);
  // The auth scheme is case-insensitive (RFC 9110).
  return /^Bearer (.+)$/i.exec(opts.headers?.Authorization ?? opts.headers?.authorization ?? '')?.[1];
}
