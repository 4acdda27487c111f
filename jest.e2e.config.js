/** `npm run test:e2e`: everything `npm test` runs plus the slow suites (*.slow.test.ts). */
const base = require('./jest.config.js');

module.exports = {
  ...base,
  testPathIgnorePatterns: ['/node_modules/', '\\.images\\.test\\.ts$'],
};
