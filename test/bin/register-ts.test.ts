// bin/register-ts.cjs: how the cdk.json app runs the blueprint's TypeScript (swc, no ts-node).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../support/cli';

const REGISTER = join(REPO_ROOT, 'bin', 'register-ts.cjs');

function script(source: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'register-ts-')), 'script.ts');
  writeFileSync(file, source);
  return file;
}

describe('the TypeScript loader of the cdk.json app', () => {
  test('runs TypeScript with types, enums, imports of other .ts files and default-import interop', () => {
    const file = script(
      [
        "import path from 'node:path';",
        "import { ENVIRONMENT_NAMES, type EnvironmentName } from '" + join(REPO_ROOT, 'config').replace(/\\/g, '/') + "';",
        'enum Kind { A = 1 }',
        'const names: readonly EnvironmentName[] = ENVIRONMENT_NAMES;',
        'console.log(JSON.stringify({ names, kind: Kind.A, sep: path.sep.length }));',
      ].join('\n'),
    );
    const out = execFileSync(process.execPath, ['-r', REGISTER, file], { encoding: 'utf8', cwd: REPO_ROOT });
    expect(JSON.parse(out)).toEqual({ names: ['dev', 'staging', 'prod'], kind: 1, sep: 1 });
  });

  test('reports errors at the line and column of the TypeScript source', () => {
    const file = script(['interface Shape {', '  readonly a: number;', '}', 'const shape: Shape = { a: 1 };', 'throw new Error(`boom ${shape.a}`);', ''].join('\n'));
    const run = spawnSync(process.execPath, ['-r', REGISTER, file], { encoding: 'utf8', cwd: REPO_ROOT });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('Error: boom 1');
    expect(run.stderr).toContain(`${file}:5:7`);
  });
});
