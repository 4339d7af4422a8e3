import { spawnSync } from 'node:child_process';
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
