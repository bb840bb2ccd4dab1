/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test', '<rootDir>/src'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.(ts|js)$': '<rootDir>/test/support/esbuild-transform.js' },
  // middy 7 ships ESM only: let esbuild turn it into CommonJS for jest (Lambda bundles go through esbuild).
  transformIgnorePatterns: ['/node_modules/(?!@middy/)'],
  moduleNameMapper: {
    '^@middy/core$': '<rootDir>/node_modules/@middy/core/index.js',
    '^@middy/util$': '<rootDir>/node_modules/@middy/util/index.js',
  },
  setupFiles: ['<rootDir>/test/support/env.ts'],
  testTimeout: 60000,
  // Integration tests bind loopback ports and run emulators in-process; two workers fit a 2-core machine.
  maxWorkers: 2,
};
