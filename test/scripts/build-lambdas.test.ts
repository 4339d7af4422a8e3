// scripts/build-lambdas.mjs records what each bundle was built from, so that a later build can skip esbuild. A
// source edited while esbuild runs must not be recorded as built: the next build would skip it and ship a bundle
// without the edit. The script is an ES module: its functions run in a child node process.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, run } from '../support/cli';

const workdir = mkdtempSync(join(tmpdir(), 'build-stamp-'));
afterAll(() => rmSync(workdir, { recursive: true, force: true }));

/** Snapshots `dir`, runs `between` (a shell-free edit in node), then settles the fingerprints of `files`. */
function settle(dir: string, files: readonly string[], between: string): Record<string, { hash: string; size: number }> {
  const script = [
    `import { snapshot, settledFingerprint } from ${JSON.stringify(join(REPO_ROOT, 'scripts', 'build-lambdas.mjs'))};`,
    "import { appendFileSync, writeFileSync, utimesSync } from 'node:fs';",
    `const dir = ${JSON.stringify(dir)};`,
    'const before = snapshot(dir);',
    between,
    `const out = {};`,
    `for (const file of ${JSON.stringify(files)}) { const { hash, size } = settledFingerprint(file, before, dir); out[file] = { hash, size }; }`,
    'console.log(JSON.stringify(out));',
  ].join('\n');
  const result = run(process.execPath, ['--input-type=module', '-e', script]);
  if (result.status !== 0) throw new Error(result.stderr);
  return JSON.parse(result.stdout);
}

test('a source edited, touched or added while the build ran is recorded as never matching; the rest by content', () => {
  const dir = join(workdir, 'lambda');
  mkdirSync(join(dir, 'shared'), { recursive: true });
  const [kept, edited, touched, added] = ['kept.ts', 'edited.ts', 'shared/touched.ts', 'added.ts'].map((name) => join(dir, name));
  const outside = join(workdir, 'node_modules-file.js');
  for (const file of [kept!, edited!, touched!, outside]) writeFileSync(file, `export const x = '${file}';\n`);
  const settled = settle(
    dir,
    [kept!, edited!, touched!, added!, outside],
    [
      `appendFileSync(${JSON.stringify(edited)}, 'export const y = 1;\\n');`,
      `utimesSync(${JSON.stringify(touched)}, new Date(), new Date(Date.now() + 5000));`,
      `writeFileSync(${JSON.stringify(added)}, 'export const z = 2;\\n');`,
    ].join('\n'),
  );
  for (const file of [edited!, touched!, added!]) expect(settled[file]).toEqual({ hash: 'changed-during-build', size: -1 });
  for (const file of [kept!, outside]) {
    expect(settled[file]!.hash).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(settled[file]!.size).toBeGreaterThan(0);
  }
});
