/**
 * `npm run test:cluster`: the suites that run against a real control plane on loopback
 * (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok; test/cluster/),
 * in band, with one control plane for the whole run. The binaries come from
 * `bash test/cluster/tools/build.sh` (npm run test:cluster runs it first).
 */
const base = require('./jest.config.js');

module.exports = {
  ...base,
  roots: ['<rootDir>/test/cluster'],
  testMatch: ['**/*.cluster.test.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
  globalSetup: '<rootDir>/test/cluster/global-setup.ts',
  globalTeardown: '<rootDir>/test/cluster/global-teardown.ts',
  testTimeout: 180000,
};
