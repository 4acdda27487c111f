/**
 * Cilium's own CiliumNetworkPolicy CRD schema (Cilium 1.18.2, as converted by
 * datreeio/CRDs-catalog; MIT, see policy/schemas/vendor/cilium/LICENSE.datree and
 * SOURCE), checked at synth time so no policy the API server would refuse is written.
 * Compiled once per process, on first use (about 2 s: the schema is large).
 */
import type { ValidateFunction } from 'ajv';
import * as fs from 'fs';
import * as path from 'path';
import type { KubeObject } from './rules';

const SCHEMA_FILE = ['schemas', 'vendor', 'cilium', 'ciliumnetworkpolicy_v2.json'];
/** Top-level fields of the object; the converter leaves the root open, the API server does not. */
const ROOT_FIELDS = new Set(['apiVersion', 'kind', 'metadata', 'spec', 'specs', 'status']);

let validator: ValidateFunction | undefined;

function schemaPath(): string {
  // From source: policy/; built: lib/policy/ (the schemas ship in policy/schemas/).
  const candidates = [path.join(__dirname, ...SCHEMA_FILE), path.join(__dirname, '..', '..', 'policy', ...SCHEMA_FILE)];
  const found = candidates.find((p) => fs.existsSync(p));
  if (!found) throw new Error(`Cilium's CiliumNetworkPolicy schema is missing (looked in ${candidates.join(', ')})`);
  return found;
}

/** Go's `\PC` (RE2 one-letter classes) is `\P{C}` in JavaScript's unicode mode. */
function goRegExp(source: string, flags: string): RegExp {
  return new RegExp(source.replace(/\\([pP])([A-Z])(?![{a-z])/g, '\\$1{$2}'), flags.includes('u') ? flags : `${flags}u`);
}
goRegExp.code = 'goRegExp';

function compile(): ValidateFunction {
  const Ajv = require('ajv').default;
  const ajv = new Ajv({ strict: false, allErrors: true, logger: false, code: { regExp: goRegExp } });
  // Formats the API server checks itself (CIDRs are checked by our own parser first).
  for (const format of ['cidr', 'idn-hostname', 'int32', 'int64']) ajv.addFormat(format, true);
  return ajv.compile(JSON.parse(fs.readFileSync(schemaPath(), 'utf8')));
}

/** Problems Cilium's CRD would report for a CiliumNetworkPolicy (empty when it is valid). */
export function validateCiliumNetworkPolicy(o: KubeObject): string[] {
  if (o.apiVersion !== 'cilium.io/v2' || o.kind !== 'CiliumNetworkPolicy') return [];
  validator ??= compile();
  const where = `CiliumNetworkPolicy "${o.metadata?.name ?? '?'}"`;
  const problems = Object.keys(o)
    .filter((k) => !ROOT_FIELDS.has(k))
    .map((k) => `${where}: ${k}: unknown field (Cilium's CRD)`);
  if (!validator(o)) {
    for (const e of validator.errors ?? []) {
      if (e.keyword === 'if' || e.keyword === 'oneOf' || e.keyword === 'anyOf') continue;
      const field = e.instancePath.split('/').slice(1).join('.') || '(root)';
      problems.push(`${where}: ${field}: ${e.message}${e.keyword === 'additionalProperties' ? ` (${String(e.params.additionalProperty)})` : ''} (Cilium's CRD)`);
    }
  }
  return [...new Set(problems)];
}
