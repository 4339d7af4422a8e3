// bin/background-validation.ts: aws-cdk-lib's CloudFormation template validation on a worker thread must
// find exactly what the built-in validation finds, on the worker, and fall back when the worker cannot help.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, CfnResource, CloudFormationValidatePlugin, Stack, Validations } from 'aws-cdk-lib';
import { BackgroundCloudFormationValidation } from '../../bin/background-validation';

const STRICT = { '@aws-cdk/core:validateAgainstDefaultRules': true };

/** An app with one bucket whose properties the CloudFormation schema rejects twice (or none, when `valid`). */
function appWithBucket(valid: boolean): App {
  const app = new App({ context: STRICT, outdir: mkdtempSync(join(tmpdir(), 'background-validation-')) });
  const stack = new Stack(app, 'Bucket');
  new CfnResource(stack, 'Resource', {
    type: 'AWS::S3::Bucket',
    properties: valid ? { BucketName: 'lower-case-name' } : { NotAProperty: 1, BucketName: 'UPPER_case' },
  });
  return app;
}

/** The synth error's message: the report lines that name rules and properties. */
function synthError(app: App): string {
  try {
    app.synth();
  } catch (error) {
    return (error as Error).message;
  }
  return '';
}

describe('template validation on a worker thread', () => {
  const saved = process.env.CDK_VALIDATION;
  beforeAll(() => {
    delete process.env.CDK_VALIDATION;
  });
  afterAll(() => {
    process.env.CDK_VALIDATION = saved;
  });
  afterEach(() => {
    jest.restoreAllMocks();
  });

  test('reports the same findings as the built-in validation, and does the work on the worker', () => {
    const builtIn = synthError(appWithBucket(false));
    expect(builtIn).toMatch(/NotAProperty: Additional properties are not allowed/);
    expect(builtIn).toMatch(/BucketName: 'UPPER_case' does not match pattern/);

    const onMainThread = jest.spyOn(CloudFormationValidatePlugin.prototype, 'validate');
    const app = appWithBucket(false);
    const plugin = BackgroundCloudFormationValidation.start();
    expect(plugin).toBeInstanceOf(CloudFormationValidatePlugin);
    Validations.of(app).addPlugins(plugin!);
    const background = synthError(app);

    expect(onMainThread).not.toHaveBeenCalled();
    const findings = (message: string) => message.split('\n').filter((line) => /^(WARNING|ERROR|\s+Acknowledge with)/.test(line.trim()) || /Additional properties|does not match/.test(line));
    expect(findings(background)).toEqual(findings(builtIn));
    expect(findings(background).length).toBeGreaterThanOrEqual(2);
  });

  test('passes a valid template, and replaces the default plugin rather than running beside it', () => {
    const app = appWithBucket(true);
    const plugin = BackgroundCloudFormationValidation.start()!;
    const validate = jest.spyOn(plugin, 'validate');
    Validations.of(app).addPlugins(plugin);
    expect(synthError(app)).toBe('');
    expect(validate).toHaveBeenCalledTimes(1);
  });

  test('validates on the main thread when the worker fails, and still finds the problems', () => {
    const broken = join(mkdtempSync(join(tmpdir(), 'background-validation-')), 'worker.cjs');
    writeFileSync(broken, "throw new Error('the worker could not start');\n");
    const onMainThread = jest.spyOn(CloudFormationValidatePlugin.prototype, 'validate');
    const warning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const app = appWithBucket(false);
    Validations.of(app).addPlugins(BackgroundCloudFormationValidation.start({ workerScript: broken, startTimeoutMs: 2_000 })!);
    expect(synthError(app)).toMatch(/NotAProperty: Additional properties are not allowed/);
    expect(onMainThread).toHaveBeenCalledTimes(1);
    expect(warning).toHaveBeenCalledWith('template validation worker failed (it did not start); validating on the main thread');
  });

  test('validates on the main thread when the worker ends in the middle of the work', () => {
    const dying = join(mkdtempSync(join(tmpdir(), 'background-validation-')), 'worker.cjs');
    // Starts as the real worker does (signal[1] = 1, an exit handler that sets signal[0] = 2), then quits on the request.
    writeFileSync(
      dying,
      [
        "const { workerData } = require('node:worker_threads');",
        'const flag = new Int32Array(workerData.signal);',
        "process.on('exit', () => { Atomics.store(flag, 0, 2); Atomics.notify(flag, 0); });",
        'Atomics.store(flag, 1, 1); Atomics.notify(flag, 1);',
        "workerData.port.once('message', () => process.exit(3));",
      ].join('\n'),
    );
    const onMainThread = jest.spyOn(CloudFormationValidatePlugin.prototype, 'validate');
    const warning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const app = appWithBucket(false);
    Validations.of(app).addPlugins(BackgroundCloudFormationValidation.start({ workerScript: dying })!);
    const started = Date.now();
    expect(synthError(app)).toMatch(/BucketName: 'UPPER_case' does not match pattern/);
    expect(onMainThread).toHaveBeenCalledTimes(1);
    // It did not sit out the ten-minute wait for an answer.
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(warning).toHaveBeenCalledWith('template validation worker failed (it ended without an answer); validating on the main thread');
  });

  test('is off when CDK_VALIDATION=false turns template validation off', () => {
    process.env.CDK_VALIDATION = 'false';
    try {
      expect(BackgroundCloudFormationValidation.start()).toBeUndefined();
    } finally {
      delete process.env.CDK_VALIDATION;
    }
  });
});
