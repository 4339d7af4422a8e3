import { ProductionVariantInstanceType } from '@aws-sdk/client-sagemaker';
import fc from 'fast-check';
import { ENVIRONMENT_NAMES, loadConfig, parseConfig } from '../../config';
import { fleetConfig } from '../../config/fleet';
import { configProblems } from '../support/config-problems';
import { dev } from '../../config/dev';
import { prod } from '../../config/prod';
import { staging } from '../../config/staging';

const clone = <T>(value: T): T => structuredClone(value);

const problems = configProblems;

describe('environment configs', () => {
  test.each(ENVIRONMENT_NAMES)('the shipped %s config is valid', (envName) => {
    expect(loadConfig(envName).envName).toBe(envName);
  });

  test('an unknown environment is rejected with the list of valid ones', () => {
    expect(() => loadConfig('qa')).toThrow("Unknown environment 'qa'. Valid environments: dev, staging, prod");
  });

  test('dev favours idle cost: serverless, no VPC, no WAF, data not retained', () => {
    const config = loadConfig('dev');
    expect(config.models.every((m) => m.variants.every((v) => v.capacity.kind === 'serverless'))).toBe(true);
    expect(config).toMatchObject({ retainData: false, network: { vpc: false }, api: { waf: false } });
  });

  test('prod favours resilience: several autoscaled instances, VPC, WAF and retained data', () => {
    const config = loadConfig('prod');
    expect(config).toMatchObject({ retainData: true, network: { vpc: true, availabilityZones: expect.arrayContaining(['us-east-1c']) }, api: { waf: true } });
    for (const variant of config.models.flatMap((m) => m.variants)) {
      expect(variant.capacity).toMatchObject({ kind: 'instance', autoscaling: { minCapacity: expect.any(Number) } });
      if (variant.capacity.kind === 'instance') expect(variant.capacity.initialInstanceCount).toBeGreaterThanOrEqual(2);
    }
  });
});

describe('config validation names the bad field', () => {
  test('a variant weight of zero is allowed (reached by targetVariant only), all weights zero is not', () => {
    expect(problems(staging, (c) => (c.models[0].variants[1].weight = 0))).toEqual([]);
    expect(
      problems(staging, (c) => {
        c.models[0].variants[0].weight = 0;
        c.models[0].variants[1].weight = 0;
      }),
    ).toEqual(["models[0].variants: the production variants' weights must not all be 0: at least one variant must take a share of the traffic that names no variant"]);
  });

  test('a negative variant weight', () => {
    expect(problems(staging, (c) => (c.models[0].variants[1].weight = -0.5))).toEqual(['models[0].variants[1].weight: must be a finite number >= 0; got -0.5']);
  });

  test('an instance type SageMaker does not offer, checked against the SDK enum', () => {
    expect(problems(staging, (c) => (c.models[0].variants[0].capacity.instanceType = 'ml.m5.huge'))).toEqual([
      expect.stringMatching(/^models\[0\]\.variants\[0\]\.capacity\.instanceType: must be a SageMaker hosting instance type .* got 'ml\.m5\.huge'$/),
    ]);
  });

  test('a value of the wrong type', () => {
    expect(problems(prod, (c) => (c.models[0].variants[0].capacity.initialInstanceCount = 'two'))).toEqual([
      expect.stringMatching(/^models\[0\]\.variants\[0\]\.capacity\.initialInstanceCount: .*number/),
    ]);
  });

  test('an unknown field, so that a typo is not silently ignored', () => {
    expect(problems(dev, (c) => (c.api.wafEnabled = true))).toEqual([expect.stringMatching(/^api: Unrecognized key.*wafEnabled/)]);
  });

  test('a second production variant on a serverless endpoint', () => {
    const result = problems(dev, (c) => c.models[0].variants.push({ ...clone(c.models[0].variants[0]), name: 'challenger' }));
    expect(result).toContain(
      'models[0].variants[0].capacity: serverless inference supports a single production variant per endpoint; use instance-based variants for A/B or champion-challenger splits',
    );
  });

  test('a shadow variant beside two production variants', () => {
    const result = problems(staging, (c) => (c.models[0].shadowVariants = [{ ...clone(c.models[0].variants[1]), name: 'shadow', weight: undefined }]));
    expect(result).toContain('models[0].shadowVariants: an endpoint with a shadow variant must have exactly one production variant to copy traffic from; got 2');
  });

  test('a serverless model in an environment with a VPC is reported where the VPC is set', () => {
    expect(problems(dev, (c) => (c.network.vpc = true))).toEqual(["network.vpc: models[0] (churn): serverless inference cannot run in a VPC (variant 'champion' is serverless)"]);
  });

  test('autoscaling bounds that exclude the initial instance count', () => {
    expect(problems(prod, (c) => (c.models[0].variants[0].capacity.autoscaling.minCapacity = 3))).toEqual([
      'models[0].variants[0].capacity.initialInstanceCount: must lie between autoscaling.minCapacity (3) and maxCapacity (8); got 2',
    ]);
  });

  test('duplicate model names and duplicate variant names', () => {
    expect(problems(staging, (c) => c.models.push(clone(c.models[0])))).toEqual(["models[2].name: 'churn' is already used by another model"]);
    expect(problems(staging, (c) => (c.models[0].variants[1].name = 'champion'))).toContain(
      "models[0].variants[1].name: 'champion' is already used by variants[0]; variant names must be unique",
    );
  });

  test('a malformed image URI, region, account, email and log retention', () => {
    const result = problems(dev, (c) => {
      c.models[0].variants[0].model.image = 'xgboost:latest';
      c.region = 'Europe';
      c.account = '123';
      c.alarmEmails = ['not-an-email'];
      c.logRetentionDays = 31;
    });
    expect(result).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^models\[0\]\.variants\[0\]\.model\.image: must be an ECR image URI/),
        expect.stringMatching(/^region: must be an AWS region code/),
        expect.stringMatching(/^account: must be a 12-digit AWS account id/),
        expect.stringMatching(/^alarmEmails\[0\]: /),
        expect.stringMatching(/^logRetentionDays: must be one of CloudWatch Logs' retention periods: .*30, 60, 90/),
      ]),
    );
  });

  test('more than two zones without naming them, which an account-less synth cannot honour', () => {
    expect(problems(prod, (c) => (c.network = { vpc: true, maxAzs: 3 }))).toEqual([
      'network.maxAzs: an environment-agnostic synth (no account) spreads over at most 2 zones; list network.availabilityZones to use 3',
    ]);
    expect(problems(prod, (c) => (c.network.availabilityZones = ['us-east-1a', 'eu-west-1b']))).toEqual(["network.availabilityZones[1]: 'eu-west-1b' is not in region us-east-1"]);
  });

  test('experiments that do not fit the model, each named', () => {
    expect(problems(dev, (c) => (c.models[0].experiments = { stickyRouting: true, shadowComparison: {} }))).toEqual([
      'models[0].experiments.stickyRouting: needs at least two production variants; churn has 1',
      'models[0].experiments.shadowComparison: needs a shadow variant; churn has none',
    ]);
    expect(problems(staging, (c) => (c.api.predictionLog = false))).toEqual([
      'models[0].experiments.abTest: needs api.predictionLog: true (the analysis reads the logged predictions and outcomes)',
      'models[1].experiments.bandit: needs api.predictionLog: true (the bandit learns from the logged predictions and outcomes)',
    ]);
    expect(problems(staging, (c) => (c.models[0].experiments.promotion.trafficSteps = [50, 25]))).toEqual([
      'models[0].experiments.promotion.trafficSteps[1]: must be above the previous step and at most 100; got 25',
      'models[0].experiments.promotion.trafficSteps: must end at 100 (all traffic on the challenger); got [50, 25]',
    ]);
    expect(problems(staging, (c) => (c.models[0].experiments.abTest.variantB = 'blue'))).toEqual([
      "models[0].experiments.abTest.variantB: 'blue' is not a production variant of churn (champion, challenger)",
    ]);
    expect(problems(prod, (c) => (c.models[0].deploymentGuardrails = { mode: 'linear', percent: undefined }))).toEqual([
      'models[0].deploymentGuardrails.percent: is required for linear traffic shifting',
    ]);
  });

  test('a lifecycle that does not fit the model or the environment, each field named', () => {
    expect(problems(staging, (c) => (c.models[0].lifecycle.approval = 'automatic'))).toEqual([
      'models[0].lifecycle.approval: automatic approval deploys every version that passes the gate; it is allowed in dev only, not staging',
    ]);
    expect(problems(prod, (c) => (c.models[0].lifecycle.deployment = { targetVariant: 'challenger' }))).toEqual([
      "models[0].lifecycle.deployment.targetVariant: 'challenger' is not a production variant of churn (champion)",
    ]);
    expect(
      problems(prod, (c) => {
        c.models[0].lifecycle.training.instanceType = 'ml.m5.mega';
        c.models[0].lifecycle.preprocessing.image = 'scikit-learn:latest';
        c.models[0].lifecycle.evaluation.metric = 'auc score';
        c.models[0].lifecycle.evaluation.threshold = 'high';
        c.models[0].lifecycle.retrainSchedule = 'every sunday';
        c.models[0].lifecycle.batchInference.instanceType = 'ml.t2.medium';
        c.models[0].lifecycle.transferLearning = { baseModelS3Uri: 'https://example.com/model' };
      }),
    ).toEqual([
      'models[0].lifecycle.preprocessing.image: must be an ECR image URI: <account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag> or @sha256:<digest>',
      'models[0].lifecycle.training.instanceType: must be a SageMaker training instance type, such as ml.m5.xlarge',
      'models[0].lifecycle.transferLearning.baseModelS3Uri: must be an s3://bucket/key URI',
      'models[0].lifecycle.evaluation.metric: must be a dotted path such as binary_classification_metrics.auc.value',
      'models[0].lifecycle.evaluation.threshold: Invalid input: expected number, received string',
      'models[0].lifecycle.retrainSchedule: must be rate(<n> <unit>) or cron(<6 fields>)',
      'models[0].lifecycle.batchInference.instanceType: must be a SageMaker transform instance type, such as ml.m5.xlarge',
    ]);
  });

  test('the lifecycle per environment: automatic approval only in dev, the challenger as staging\'s target', () => {
    expect(loadConfig('dev').models[0].lifecycle).toMatchObject({ approval: 'automatic', trainOnDataArrival: true });
    expect(loadConfig('staging').models[0].lifecycle).toMatchObject({ approval: 'manual', deployment: { targetVariant: 'challenger', deployOnApproval: true }, retrainSchedule: 'rate(7 days)' });
    expect(loadConfig('prod').models[0].lifecycle).toMatchObject({ approval: 'manual', batchInference: { schedule: 'cron(0 2 * * ? *)', instanceCount: 2 } });
  });

  test('a field of the wrong type does not hide the rules across fields elsewhere', () => {
    const config = clone(staging) as any;
    config.api.throttlingRateLimit = 'fast';
    config.featureStore.groups[0].features = 'none';
    config.models[0].variants[0].weight = 0;
    config.models[0].variants[1].weight = 0;
    expect(() => parseConfig(config, 'config/staging.ts')).toThrow(
      [
        'Invalid configuration config/staging.ts:',
        '  - api.throttlingRateLimit: Invalid input: expected number, received string',
        '  - featureStore.groups[0].features: Invalid input: expected array, received string',
        "  - models[0].variants: the production variants' weights must not all be 0: at least one variant must take a share of the traffic that names no variant",
      ].join('\n'),
    );
  });

  test('every problem is reported at once, one line each', () => {
    const config = clone(staging) as any;
    config.models[0].variants[0].weight = -1;
    config.models[0].variants[1].weight = -2;
    expect(() => parseConfig(config, 'config/staging.ts')).toThrow(
      'Invalid configuration config/staging.ts:\n  - models[0].variants[0].weight: must be a finite number >= 0; got -1\n  - models[0].variants[1].weight: must be a finite number >= 0; got -2',
    );
  });
});

describe('instance types come from the AWS SDK', () => {
  const known = Object.values(ProductionVariantInstanceType);

  test('every hosting instance type in the SDK enum is accepted', () => {
    fc.assert(
      fc.property(fc.constantFrom(...known), (instanceType) => {
        expect(problems(staging, (c) => (c.models[0].variants[0].capacity.instanceType = instanceType))).toEqual([]);
      }),
      { numRuns: 50 },
    );
  });

  test('any other string is rejected with the field named', () => {
    fc.assert(
      fc.property(
        fc.string().filter((s) => !(known as string[]).includes(s)),
        (instanceType) => {
          const result = problems(staging, (c) => (c.models[0].variants[0].capacity.instanceType = instanceType));
          expect(result).toHaveLength(1);
          expect(result[0]).toMatch(/^models\[0\]\.variants\[0\]\.capacity\.instanceType: /);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('modelDefaults: settings many families share, written once', () => {
  const family = (name: string) => ({ ...clone(prod.models[0]), name, lifecycle: undefined, modelMonitor: undefined });

  test('fill in what a family leaves out, key by key, and a family overrides or drops any of them', () => {
    const config = parseConfig(
      {
        ...clone(prod),
        models: [
          family('churn'),
          { ...family('fraud'), alarms: { modelLatencyP99Ms: 800 }, deploymentGuardrails: { mode: 'all-at-once' } },
          { ...family('upsell'), driftDetection: undefined },
        ],
      },
      'test',
    );
    const [churn, fraud, upsell] = config.models;
    expect(churn.alarms).toMatchObject({ error5xxRatePercent: 0.5, modelLatencyP99Ms: 300, anomalyDetection: true });
    expect(churn.dataCapture).toMatchObject({ samplingPercentage: 20 });
    // Objects merge key by key: fraud keeps the default error rate under its own latency.
    expect(fraud.alarms).toMatchObject({ error5xxRatePercent: 0.5, modelLatencyP99Ms: 800 });
    // A family's value of a key wins whole over the default's, down to the keys it does not repeat.
    expect(fraud.deploymentGuardrails).toMatchObject({ mode: 'all-at-once' });
    expect(churn.driftDetection).toMatchObject({ intervalMinutes: 10 });
    expect(upsell.driftDetection).toBeUndefined();
  });

  test('a bad default is reported at every family it reaches, with the model path and where the value comes from', () => {
    expect(
      problems(prod, (c) => {
        c.modelDefaults.alarms.modelLatencyP99Ms = -1;
        c.models.push({ ...family('fraud'), alarms: { modelLatencyP99Ms: 900 } }, family('upsell'));
      }),
    ).toEqual([
      'models[0].alarms.modelLatencyP99Ms: Too small: expected number to be >0 (the value comes from modelDefaults.alarms.modelLatencyP99Ms)',
      'models[2].alarms.modelLatencyP99Ms: Too small: expected number to be >0 (the value comes from modelDefaults.alarms.modelLatencyP99Ms)',
    ]);
  });

  test('cannot name a model, and must be an object', () => {
    expect(problems(prod, (c) => (c.modelDefaults.name = 'shared'))).toEqual(['modelDefaults.name: a name is never shared; set it on each model']);
    expect(problems(prod, (c) => (c.modelDefaults = []))).toEqual([
      'modelDefaults: must be an object of model settings; got an array',
      expect.stringMatching(/^models\[0\]\.modelMonitor: needs dataCapture/),
    ]);
  });

  test('a family cannot take the name of a shared stack', () => {
    expect(problems(prod, (c) => c.models.push(family('serving'), family('rag')))).toEqual([
      "models[1].name: 'serving' is the name of a shared stack (MlPlatform-<env>-<name>); choose another family name",
      "models[2].name: 'rag' is the name of a shared stack (MlPlatform-<env>-<name>); choose another family name",
    ]);
  });

  test('a 50-family fleet of the prod config is one default block and 50 short families, and valid', () => {
    const fleet = fleetConfig(prod, 50);
    const config = parseConfig(fleet, 'fleet');
    expect(config.models.map((model) => model.name)).toEqual(Array.from({ length: 50 }, (_, i) => `churn-${i}`));
    expect(config.models[49].variants[0].model.modelData).toEqual({ key: 'churn-49/1.0.0/model.tar.gz' });
    expect(config.models.every((model) => model.deploymentGuardrails?.mode === 'canary')).toBe(true);
    expect(() => fleetConfig(prod, 0)).toThrow('fleetConfig: count: must be a whole number from 1 to 500; got 0');
  });
});

test('lifecycle.modelPackageGroupName keeps an existing registry, and must be a SageMaker group name', () => {
  expect(loadConfig('prod').models[0].lifecycle?.modelPackageGroupName).toBeUndefined();
  expect(problems(prod, (c) => (c.models[0].lifecycle.modelPackageGroupName = 'old_registry'))).toEqual([
    'models[0].lifecycle.modelPackageGroupName: must be 1-63 letters, digits or hyphens, starting and ending with a letter or digit (SageMaker ModelPackageGroupName)',
  ]);
  expect(problems(prod, (c) => (c.models[0].lifecycle.modelPackageGroupName = 'mlplatformprodlifecycle-registrychurn-b498213f'))).toEqual([]);
});
