import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { VALIDATION_REPORT_FILE } from 'aws-cdk-lib/cx-api';
import { App, Stack } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { ENVIRONMENT_NAMES, nagFindings, synthesizePlatform } from '../support/platform';

const ACKNOWLEDGED = 'aws:cdk:acknowledged-rules';
/** One finding of one rule: `Pack-Rule` or `Pack-Rule[Kind::detail]`, never a bare pack or prefix. */
const SPECIFIC_FINDING = /^(Annotation::)?(AwsSolutions|HIPAA\.Security|NIST\.800\.53\.R5)-[A-Za-z0-9]+(\[[A-Za-z]+::.+\])?$/;

// Compliance at synth, as bin/app.ts does it: with aws-cdk-lib's template validation too (test-env.ts
// turns it off for the other tests).
delete process.env.CDK_VALIDATION;

describe.each(ENVIRONMENT_NAMES)('cdk-nag on the %s environment', (envName) => {
  const platform = synthesizePlatform(envName);

  test("aws-cdk-lib's CloudFormation template validation finds nothing", () => {
    const report = JSON.parse(readFileSync(join(platform.outdir, VALIDATION_REPORT_FILE), 'utf8'));
    // The report lists the plugins that found something.
    expect(report.pluginReports.flatMap((plugin: { summary?: unknown; violations?: unknown[] }) => plugin.violations ?? [plugin.summary])).toEqual([]);
  });

  test('AwsSolutions, HIPAA Security and NIST 800-53 R5 report no unacknowledged finding', () => {
    const findings = nagFindings(platform.app);
    expect(findings.map((f) => `${f.rule} on ${f.resource}: ${f.description}`)).toEqual([]);
  });

  test('every acknowledgement names one specific finding and gives a real reason', () => {
    const acknowledgements = platform.app.node
      .findAll()
      .flatMap((construct) => construct.node.metadata.filter((entry) => entry.type === ACKNOWLEDGED).map((entry) => ({ path: construct.node.path, data: entry.data as Record<string, string> })))
      .flatMap(({ path, data }) => Object.entries(data).map(([id, reason]) => ({ path, id, reason })))
      // aws-cdk-lib records acknowledgements of its own CloudFormation validation; only cdk-nag's are ours.
      .filter(({ id }) => /AwsSolutions|HIPAA|NIST/.test(id));
    expect(acknowledgements.length).toBeGreaterThan(0);
    for (const { path, id, reason } of acknowledgements) {
      expect({ path, id, specific: SPECIFIC_FINDING.test(id) }).toEqual({ path, id, specific: true });
      expect({ path, id, reasonLength: reason.length >= 60 }).toEqual({ path, id, reasonLength: true });
    }
  });
});

test('the nag sweep reports findings on a stack that breaks the rules, so a clean sweep means something', () => {
  const app = new App();
  const stack = new Stack(app, 'Insecure');
  new s3.Bucket(stack, 'PlainBucket');
  app.synth();
  const rules = new Set(nagFindings(app).map((finding) => finding.rule));
  expect([...rules]).toEqual(expect.arrayContaining(['AwsSolutions-S1', 'AwsSolutions-S10', 'HIPAA.Security-S3DefaultEncryptionKMS', 'NIST.800.53.R5-S3BucketLoggingEnabled']));
});
