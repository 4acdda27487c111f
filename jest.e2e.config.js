/** `npm run test:e2e`: the slow suites (*.slow.test.ts) that `npm test` leaves out; CI runs both. */
const base = require('./jest.config.js');

module.exports = {
  ...base,
  testMatch: ['**/*.slow.test.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
};
