// Jest globalSetup: bundles the Lambda handlers (lambda/<name>/index.ts -> assets/lambda/<name>/index.js)
// once per run, so construct tests can reference the assets and handler tests can load the bundles.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export default function globalSetup(): void {
  const root = join(__dirname, '..', '..');
  execFileSync(process.execPath, [join(root, 'scripts', 'build-lambdas.mjs'), '--quiet'], {
    cwd: root,
    stdio: 'inherit',
  });
}
