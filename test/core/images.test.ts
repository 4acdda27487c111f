import * as fs from 'fs';
import * as path from 'path';
import { IMAGE_NAMES, imageName, ImageName, imageRef } from '../../core/images';

test('the ImageName type names exactly the images of worker-images/images.json', () => {
  // A Record over the union: the compiler insists on every member, the test on nothing more.
  const every: Record<ImageName, true> = { runner: true, controller: true, codex: true, 'claude-code': true, 'gemini-cli': true, opencode: true, copilot: true, 'egress-proxy': true };
  const catalog = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'worker-images', 'images.json'), 'utf8'));
  expect(Object.keys(every).sort()).toEqual(Object.keys(catalog.images).sort());
  expect([...IMAGE_NAMES].sort()).toEqual(Object.keys(catalog.images).sort());
  expect(imageName('opencode')).toBe(catalog.images.opencode);
  expect(imageRef('codex', { registry: 'registry.example/', tag: '9' })).toBe(`registry.example/${catalog.images.codex}:9`);
});
