/**
 * A real dynamic import() that TypeScript's CommonJS output keeps (it would turn
 * `import()` into `require()`): @kubernetes/client-node is ESM-only. Loaded only by the
 * commands that talk to a cluster, so the package's other entry points never load it.
 */
export const importEsm = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<any>;
