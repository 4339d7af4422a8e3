import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REPO_ROOT = join(__dirname, '..', '..');

/** The environment with every AWS credential and profile removed, as on a machine with no account. */
export function credentialFreeEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^AWS_/.test(key)) env[key] = value;
  }
  // The CLI synthesizes as a user's would: with aws-cdk-lib's template validation (see test-env.ts).
  delete env.CDK_VALIDATION;
  // Point the SDK at files that do not exist, so no shared credentials or config can be found.
  env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent/credentials';
  env.AWS_CONFIG_FILE = '/nonexistent/config';
  env.AWS_EC2_METADATA_DISABLED = 'true';
  return env;
}

export interface CommandResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): CommandResult {
  const result = spawnSync(command, args, {
    cwd: options.cwd ?? REPO_ROOT,
    env: options.env ?? process.env,
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Runs the real `cdk synth` of the blueprint for one environment, without AWS credentials. */
export function cdkSynth(envName: string, outdir: string): CommandResult {
  return run(join(REPO_ROOT, 'node_modules', '.bin', 'cdk'), ['synth', '-q', '-c', `env=${envName}`, '-o', outdir], { env: credentialFreeEnv() });
}

/**
 * Runs cfn-lint, from the repository root so that .cfnlintrc.yaml applies as in test/lint/cfn-lint.test.ts, on one
 * synthesized template. The CDKMetadata resource the cdk CLI writes is added (version reporting is off in tests):
 * cfn-lint recognises a CDK template by it and leaves W3010 (subnets placed by zone) to the VPC construct.
 */
export function cfnLintTemplate(name: string, template: Record<string, unknown>): CommandResult {
  const workdir = mkdtempSync(join(tmpdir(), `${name}-`));
  try {
    const file = join(workdir, `${name}.template.json`);
    const resources = { ...(template.Resources as Record<string, unknown>), CDKMetadata: { Type: 'AWS::CDK::Metadata', Properties: { Analytics: 'v2:deflate64:H4sIAAAAAAAA/wMAAAAAAAAAAAA=' } } };
    writeFileSync(file, JSON.stringify({ ...template, Resources: resources }));
    return run('cfn-lint', ['--format', 'parseable', file], { cwd: REPO_ROOT });
  } finally {
    rmSync(workdir, { recursive: true, force: true });
  }
}

/** A request shape's members as botocore's model defines them: nested structures as objects, anything else null. */
export type ShapeMembers = { readonly [member: string]: ShapeMembers | null };

/** The members of `shape` (e.g. `CreateModelPackageInput`) in botocore's model of `service` at `version` (e.g. sagemaker, 2017-07-24). */
export function botocoreShapeMembers(service: string, version: string, shape: string): ShapeMembers {
  const script = [
    'import botocore, gzip, json, os, sys',
    "path = os.path.join(os.path.dirname(botocore.__file__), 'data', sys.argv[1], sys.argv[2], 'service-2.json.gz')",
    "shapes = json.load(gzip.open(path))['shapes']",
    'def members(name):',
    '    shape = shapes[name]',
    "    return {key: members(value['shape']) if shapes[value['shape']]['type'] == 'structure' else None for key, value in shape.get('members', {}).items()}",
    'print(json.dumps(members(sys.argv[3])))',
  ].join('\n');
  const python = run('python3', ['-c', script, service, version, shape]);
  if (python.status !== 0) throw new Error(`botocore has no ${service} ${version} ${shape}: ${python.stderr}`);
  return JSON.parse(python.stdout) as ShapeMembers;
}

/** The parameters (`Key` or `Key.$`, nested) that are no members of the shape, by their dotted paths. */
export function unknownParameters(parameters: Record<string, unknown>, shape: ShapeMembers, path = ''): string[] {
  return Object.entries(parameters).flatMap(([key, value]) => {
    const name = key.replace(/\.\$$/, '');
    if (!(name in shape)) return [`${path}${name}`];
    const nested = shape[name];
    return nested && value && typeof value === 'object' && !Array.isArray(value) ? unknownParameters(value as Record<string, unknown>, nested, `${path}${name}.`) : [];
  });
}
