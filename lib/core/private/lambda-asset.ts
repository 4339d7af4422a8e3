import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as lambda from 'aws-cdk-lib/aws-lambda';

const PACKAGE_NAME = 'cdk-ml-patterns';

/**
 * The package root, found by walking up from this file: `lib/core/private` in a clone,
 * `dist/lib/core/private` in the published package. Both keep the pre-built bundles in `assets/`.
 */
function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === PACKAGE_NAME) {
      return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error(`cdk-ml-patterns: cannot find the package root above ${__dirname}`);
    }
    dir = parent;
  }
}

/** The directory of a pre-built handler bundle, checked to exist so a missing build fails clearly at synth. */
export function lambdaBundleDir(handler: string): string {
  const dir = join(packageRoot(), 'assets', 'lambda', handler);
  if (!existsSync(join(dir, 'index.js'))) {
    throw new Error(`cdk-ml-patterns: the bundle of Lambda handler '${handler}' is missing at ${dir}. Run \`npm run build:lambda\` (\`cdk synth\` and \`npm test\` run it for you).`);
  }
  return dir;
}

/** Lambda code of a pre-built handler: no bundler and no Docker at synth. */
export function lambdaBundle(handler: string): lambda.Code {
  return lambda.Code.fromAsset(lambdaBundleDir(handler));
}
