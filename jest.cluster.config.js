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
  // The real `pulumi up` suite has its own command (npm run test:cluster:pulumi) until it has
  // passed here once: its provider build had not finished when the rest went green.
  testPathIgnorePatterns: process.env.PADDOCK_CLUSTER_PULUMI ? ['/node_modules/'] : ['/node_modules/', '/pulumi\\.cluster\\.test\\.ts$'],
  globalSetup: '<rootDir>/test/cluster/global-setup.ts',
  globalTeardown: '<rootDir>/test/cluster/global-teardown.ts',
  testTimeout: 180000,
};
