// lib/core/private/aws-enums.ts: the AWS enums the constructs and the config check values against,
// generated from the AWS SDK clients (development dependencies) by scripts/generate-aws-enums.mjs so that
// the package needs no SDK at synth. These tests fail when the installed clients and the module differ.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as generated from '../../lib/core/private/aws-enums';
import { REPO_ROOT } from '../support/cli';

const run = promisify(execFile);
const SCRIPT = join(REPO_ROOT, 'scripts', 'generate-aws-enums.mjs');
const MODULE = join(REPO_ROOT, 'lib', 'core', 'private', 'aws-enums.ts');

/** The generator's list of `{ client: [enum, ...] }`, read from the script in a child process (it is an ES module). */
async function declaredEnums(): Promise<Record<string, string[]>> {
  const { stdout } = await run(
    process.execPath,
    ['--input-type=module', '-e', `import { ENUMS } from ${JSON.stringify(SCRIPT)}; console.log(JSON.stringify(ENUMS));`],
    { cwd: REPO_ROOT },
  );
  return JSON.parse(stdout) as Record<string, string[]>;
}

async function check(file: string): Promise<{ code: number; stderr: string }> {
  try {
    await run(process.execPath, [SCRIPT, '--check', '--file', file], { cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stderr: '' };
  } catch (error) {
    const failure = error as { code?: number; stderr?: string };
    return { code: failure.code ?? -1, stderr: failure.stderr ?? '' };
  }
}

describe('generated AWS enums', () => {
  let declared: Record<string, string[]>;
  beforeAll(async () => {
    declared = await declaredEnums();
  });

  test('every generated enum equals the installed SDK client\'s own, member for member', () => {
    const exported = generated as unknown as Record<string, Record<string, string>>;
    const compared: string[] = [];
    for (const [client, names] of Object.entries(declared)) {
      // The SDK itself, loaded here rather than through the generator, so the comparison is independent of it.
      const sdk = require(client) as Record<string, Record<string, string>>;
      for (const name of names) {
        expect({ name, members: exported[name] }).toEqual({ name, members: { ...sdk[name] } });
        compared.push(name);
      }
    }
    // Nothing exported that the generator does not produce, and the instance-type lists are the long ones.
    expect(Object.keys(exported).sort()).toEqual(compared.sort());
    expect(Object.values(generated.ProductionVariantInstanceType).length).toBeGreaterThan(100);
    expect(Object.values(generated.ProductionVariantInstanceType)).toContain('ml.m5.large');
    expect(Object.values(generated.TrainingInstanceType)).not.toContain('ml.t2.medium');
  });

  test('the committed module is exactly what the generator writes from the installed clients', async () => {
    expect(await check(MODULE)).toEqual({ code: 0, stderr: '' });
  }, 60_000);

  test('the check fails on a module whose enum lost or gained a member', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aws-enums-'));
    try {
      const text = readFileSync(MODULE, 'utf8');
      const dropped = join(dir, 'dropped.ts');
      writeFileSync(dropped, text.replace(/^ {2}ML_M5_LARGE: 'ml\.m5\.large',\n/m, ''));
      expect(readFileSync(dropped, 'utf8')).not.toEqual(text);
      const added = join(dir, 'added.ts');
      writeFileSync(added, text.replace(/^(export const ModelCardStatus = \{\n)/m, "$1  RETIRED: 'Retired',\n"));
      expect(readFileSync(added, 'utf8')).not.toEqual(text);
      for (const file of [dropped, added]) {
        const result = await check(file);
        expect(result.code).toBe(1);
        expect(result.stderr).toContain('npm run enums');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  test('no synth-time source imports an AWS SDK package', () => {
    const offenders: string[] = [];
    const visit = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) visit(path);
        else if (entry.name.endsWith('.ts') && /from '@aws-sdk\//.test(readFileSync(path, 'utf8'))) offenders.push(path.slice(REPO_ROOT.length + 1));
      }
    };
    for (const dir of ['lib', 'config', 'bin']) visit(join(REPO_ROOT, dir));
    expect(offenders).toEqual([]);
  });
});
