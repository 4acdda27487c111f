/**
 * kubeconform's schemas from this API server's own OpenAPI (GET /openapi/v2): one
 * standalone JSON Schema per kind (every $ref inlined), strict (objects that list their
 * properties get additionalProperties: false, as openapi2jsonschema --strict does), written
 * where `-schema-location DIR/{{ .Group }}/{{ .ResourceAPIVersion }}/{{ .ResourceKind }}.json`
 * finds them. IntOrString and Quantity accept a string or a number, as the API server does.
 */
import * as fs from 'fs';
import * as path from 'path';

type Schema = Record<string, any>;

const FREE_FORM: Record<string, Schema> = {
  'io.k8s.apimachinery.pkg.util.intstr.IntOrString': { oneOf: [{ type: 'string' }, { type: 'integer' }] },
  'io.k8s.apimachinery.pkg.api.resource.Quantity': { oneOf: [{ type: 'string' }, { type: 'number' }] },
};

/** Writes one schema file per kind of `kinds` ("apps/v1/Deployment"); returns the -schema-location template. */
export function writeKubeconformSchemas(openapiV2: { definitions: Record<string, Schema> }, dir: string, kinds: ReadonlySet<string>): string {
  const defs = openapiV2.definitions;
  const inline = (schema: Schema, seen: string[]): Schema => {
    if (schema.$ref) {
      const name = String(schema.$ref).replace('#/definitions/', '');
      if (FREE_FORM[name]) return FREE_FORM[name];
      if (seen.includes(name)) return {}; // a recursive type (JSONSchemaProps): free-form below this depth
      return inline(defs[name], [...seen, name]);
    }
    const out: Schema = {};
    for (const [k, v] of Object.entries(schema)) {
      if (k === 'properties') out.properties = Object.fromEntries(Object.entries(v as Schema).map(([p, s]) => [p, inline(s as Schema, seen)]));
      else if (k === 'items' || k === 'additionalProperties') out[k] = typeof v === 'object' ? inline(v as Schema, seen) : v;
      else if (k !== 'description' && !k.startsWith('x-kubernetes-list') && k !== 'x-kubernetes-patch-strategy' && k !== 'x-kubernetes-patch-merge-key') out[k] = v;
    }
    if (out.properties && out.additionalProperties === undefined) out.additionalProperties = false;
    // Optional fields may be null in manifests (kubectl accepts it).
    if (out.type && typeof out.type === 'string' && seen.length > 1) out.type = [out.type, 'null'];
    return out;
  };
  let written = 0;
  for (const [name, def] of Object.entries(defs)) {
    for (const gvk of (def['x-kubernetes-group-version-kind'] ?? []) as Array<{ group: string; version: string; kind: string }>) {
      const apiVersion = gvk.group ? `${gvk.group}/${gvk.version}` : gvk.version;
      if (!kinds.has(`${apiVersion}/${gvk.kind}`)) continue;
      const schema = inline(def, [name]);
      const file = path.join(dir, gvk.group || gvk.version, gvk.version, `${gvk.kind.toLowerCase()}.json`);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, JSON.stringify({ $schema: 'http://json-schema.org/schema#', ...schema }));
      written++;
    }
  }
  if (written < kinds.size) throw new Error(`the API server's OpenAPI has ${written} of the ${kinds.size} kinds asked for: ${[...kinds].join(', ')}`);
  return `${dir}/{{ .Group }}/{{ .ResourceAPIVersion }}/{{ .ResourceKind }}.json`;
}
