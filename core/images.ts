/**
 * Image names and the default tag live in one place, worker-images/images.json:
 * the build script tags what it builds from it and the constructs read it.
 * Read at load time (not a JSON import), so consumers' compilers need no
 * resolveJsonModule for Paddock's declarations.
 */
import * as fs from 'fs';
import * as path from 'path';

/** Paddock's images, as named in worker-images/images.json (a test keeps the two equal). */
export type ImageName = 'runner' | 'controller' | 'codex' | 'claude-code' | 'gemini-cli' | 'opencode' | 'copilot' | 'egress-proxy';

interface ImageCatalog {
  readonly registry: string;
  readonly tag: string;
  readonly images: Readonly<Record<ImageName, string>>;
}

/** From source, worker-images/ is a sibling of core/; from lib/core/ it is two levels up. */
const catalog: ImageCatalog = JSON.parse(
  fs.readFileSync(
    [path.join(__dirname, '..', 'worker-images', 'images.json'), path.join(__dirname, '..', '..', 'worker-images', 'images.json')].find((f) => fs.existsSync(f)) as string,
    'utf8',
  ),
);

export interface ImageOptions {
  /** @default - the registry in worker-images/images.json */
  readonly registry?: string;
  /** @default - the tag in worker-images/images.json (the package version) */
  readonly tag?: string;
}

export const IMAGE_NAMES = Object.keys(catalog.images) as ImageName[];

/** Full reference of one of Paddock's images, e.g. ghcr.io/paddock-dev/paddock-codex:0.1.0. */
export function imageRef(name: ImageName, options: ImageOptions = {}): string {
  const registry = (options.registry ?? catalog.registry).replace(/\/+$/, '');
  return `${registry}/${catalog.images[name]}:${options.tag ?? catalog.tag}`;
}

/** The bare image name, e.g. "paddock-opencode" for "opencode". */
export function imageName(name: ImageName): string {
  return catalog.images[name];
}
