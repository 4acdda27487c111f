#!/usr/bin/env node
/**
 * Bakes a harness preset's default config layer into an image (run by the preset
 * Dockerfiles in a build stage, with the paddock package of the base image):
 *
 *   <out>/harness.json           the preset's harness spec, byte for byte what the Platform
 *                                synthesizes into the harness-<name> ConfigMap (so
 *                                `paddock run --harness <out>` works in the image)
 *   <out>/<base>/<path>          each file of the preset's config layer, where the runner
 *                                writes it (<base> is home or workdir), e.g.
 *                                <out>/home/.codex/config.toml
 *
 * Both come from the same templates/ the constructs and the runner read, so the image and
 * the synthesized harness spec cannot disagree. Usage:
 *   node bake-defaults.js PRESET OUT_DIR [--paddock /opt/paddock]
 * PADDOCK_IMAGE_REGISTRY / PADDOCK_IMAGE_TAG: the registry and tag the image is built
 * with (build.sh --registry/--tag), so harness.json names the image it is in.
 */
'use strict';
const fs = require('fs');
const path = require('path');

function main(argv) {
  const args = [...argv];
  let paddock = '/opt/paddock';
  const i = args.indexOf('--paddock');
  if (i >= 0) {
    paddock = args[i + 1];
    args.splice(i, 2);
  }
  const [preset, out] = args;
  if (!preset || !out) {
    process.stderr.write('usage: node bake-defaults.js PRESET OUT_DIR [--paddock DIR]\n');
    return 2;
  }
  const { Harness } = require(path.join(paddock, 'lib', 'core', 'harness'));
  const { stableJson } = require(path.join(paddock, 'lib', 'core', 'stable-json'));
  if (!Harness.presets().includes(preset)) {
    process.stderr.write(`bake-defaults: unknown preset "${preset}"; known: ${Harness.presets().join(', ')}\n`);
    return 2;
  }
  const imageOptions = {
    ...(process.env.PADDOCK_IMAGE_REGISTRY ? { registry: process.env.PADDOCK_IMAGE_REGISTRY } : {}),
    ...(process.env.PADDOCK_IMAGE_TAG ? { tag: process.env.PADDOCK_IMAGE_TAG } : {}),
  };
  const spec = Harness.fromPreset(preset, { imageOptions }).spec;
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'harness.json'), stableJson(spec), { mode: 0o644 });
  for (const file of spec.config?.files ?? []) {
    const target = path.join(out, file.base ?? 'home', file.path);
    if (!target.startsWith(path.resolve(out) + path.sep)) throw new Error(`config path escapes ${out}: ${file.path}`);
    fs.mkdirSync(path.dirname(target), { recursive: true, mode: 0o755 });
    fs.writeFileSync(target, file.content, { mode: 0o644 });
  }
  process.stdout.write(`baked the ${preset} defaults into ${out}: harness.json${(spec.config?.files ?? []).map((f) => `, ${f.base ?? 'home'}/${f.path}`).join('')}\n`);
  return 0;
}

process.exitCode = main(process.argv.slice(2));
