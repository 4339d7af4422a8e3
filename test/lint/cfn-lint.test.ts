import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ENVIRONMENT_NAMES } from '../../config';
import { cdkSynth, REPO_ROOT, run } from '../support/cli';

const workdir = mkdtempSync(join(tmpdir(), 'cfn-lint-'));
afterAll(() => rmSync(workdir, { recursive: true, force: true }));

function cfnLint(templates: string[]) {
  // Run from the repository root so .cfnlintrc.yaml (with its documented exceptions) applies.
  return run('cfn-lint', ['--format', 'parseable', ...templates], { cwd: REPO_ROOT });
}

// prod is linted by fleet.test.ts, with 50 model families.
describe.each(ENVIRONMENT_NAMES.filter((envName) => envName !== 'prod'))('the %s environment', (envName) => {
  const outdir = join(workdir, envName);
  let templates: string[] = [];

  beforeAll(() => {
    const synth = cdkSynth(envName, outdir);
    if (synth.status !== 0) {
      throw new Error(`cdk synth -c env=${envName} failed (${synth.status}):\n${synth.stdout}\n${synth.stderr}`);
    }
    templates = readdirSync(outdir)
      .filter((file) => file.endsWith('.template.json'))
      .map((file) => join(outdir, file));
  }, 120_000);

  test('synthesizes every stack with the real cdk CLI and no AWS credentials', () => {
    // The shared stacks, then one per model family.
    // staging adds the two silos of churn's federation, each in its own account and region, and the offers family.
    const expected = [...(envName === 'dev' ? [] : ['Experiments']), 'Features', 'Foundation', 'Lifecycle', 'Observability', 'Rag', 'Serving', 'churn', ...(envName === 'staging' ? ['churn-Silo-europe', 'churn-Silo-north-america', 'offers'] : [])];
    expect(templates.map((file) => file.replace(`${outdir}/`, '')).sort()).toEqual(expected.map((stack) => `MlPlatform-${envName}-${stack}.template.json`).sort());
  });

  test('passes cfn-lint with no errors and no warnings', () => {
    const lint = cfnLint(templates);
    expect(lint.stdout + lint.stderr).toBe('');
    expect(lint.status).toBe(0);
  });
});

test('cfn-lint reports a broken template, so a clean lint means something', () => {
  const broken = join(workdir, 'broken.template.json');
  writeFileSync(
    broken,
    JSON.stringify({
      Resources: {
        Endpoint: { Type: 'AWS::SageMaker::Endpoint', Properties: { EndpointConfigName: 'x', NotAProperty: true } },
      },
    }),
  );
  const lint = cfnLint([broken]);
  expect(lint.status).not.toBe(0);
  expect(lint.stdout).toMatch(/E3002.*NotAProperty/);
});

test('an unknown environment fails synth with a message that lists the valid ones', () => {
  const synth = cdkSynth('qa', join(workdir, 'qa'));
  expect(synth.status).not.toBe(0);
  expect(synth.stdout + synth.stderr).toContain("Unknown environment 'qa'. Valid environments: dev, staging, prod");
});
