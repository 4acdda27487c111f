/**
 * Image names and the default tag live in one place, worker-images/images.json:
 * the build script tags what it builds from it and the constructs read it.
 */
import * as catalog from '../worker-images/images.json';

export type ImageName = keyof typeof catalog.images;

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
