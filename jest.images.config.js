/**
 * `npm run test:images` (with --runInBand): builds the worker images with podman and runs
 * them like the synthesized agent pod (test/images/*.images.test.ts). Needs root, podman,
 * runc, debootstrap, iproute2 and util-linux: `sudo worker-images/setup-podman.sh`.
 * Slow the first time (debootstrap + the CLI downloads); cached after that.
 */
const base = require('./jest.config.js');

module.exports = {
  ...base,
  testMatch: ['**/test/images/**/*.images.test.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
  // One test may build images from scratch (debootstrap, apt, npm ci of a 400 MB CLI).
  testTimeout: 30 * 60 * 1000,
};
