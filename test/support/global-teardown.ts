// Jest globalTeardown: nothing to clean up (each test file stops the servers it started).
export default function globalTeardown(): void {}
