// ModelEndpoint model versions given as serial inference pipelines (`containers`): the CloudFormation
// they make, the grants, SageMaker's rules checked at synth, and what else depends on a model's containers
// (data capture, Model Monitor and its baselines, ModelDeployment's CreateModel).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import {
  DataKey,
  ModelData,
  ModelDeployment,
  ModelEndpoint,
  MonitoringBaselineWorkflow,
  SecureBucket,
  type ContainerDefinition,
  type ModelEndpointProps,
  type ModelVersionProps,
  type ProductionVariantProps,
} from '../../../lib';
import { expectValidStateMachines } from '../../support/asl';
import { REPO_ROOT, run } from '../../support/cli';
import { nagFindings } from '../../support/platform';
import { endpointIn, lifecycleStack } from '../lifecycle/fixtures';
import { allMonitors, monitorWorld } from '../monitoring/monitor-fixtures';

const PRE = '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3';
const MODEL = '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1';
const POST = '111111111111.dkr.ecr.us-east-1.amazonaws.com/churn-postprocess:2.0.0';
const instance = { kind: 'instance' as const, instanceType: 'ml.m5.large', initialInstanceCount: 1 };

const pipelineVersion = (containers: ContainerDefinition[], version = '2.0.0'): ModelVersionProps => ({ version, containers });
const threeContainers = (): ContainerDefinition[] => [
  { image: PRE, containerHostname: 'preprocess', environment: { SAGEMAKER_PROGRAM: 'preprocess.py' } },
  { image: MODEL, containerHostname: 'model' },
  { image: POST, containerHostname: 'postprocess' },
];
const variant = (name: string, model: ModelVersionProps, capacity: ProductionVariantProps['capacity'] = instance): ProductionVariantProps => ({ name, model, capacity });

function build(props: Partial<ModelEndpointProps> = {}) {
  const app = new App();
  const stack = new Stack(app, 'Test', { env: { account: '111111111111', region: 'us-east-1' } });
  const key = new DataKey(stack, 'Key').key;
  const artifacts = new SecureBucket(stack, 'Artifacts', { encryptionKey: key }).bucket;
  const containers = threeContainers();
  const endpoint = new ModelEndpoint(stack, 'Churn', {
    modelName: 'churn',
    encryptionKey: key,
    variants: [
      variant('champion', pipelineVersion([containers[0], { ...containers[1], modelData: ModelData.fromBucket(artifacts, 'churn/2.0.0/model.tar.gz') }, containers[2]])),
      variant('challenger', { version: '1.9.0', image: MODEL, modelData: ModelData.fromBucket(artifacts, 'churn/1.9.0/model.tar.gz') }),
    ],
    ...props,
  });
  return { app, stack, key, artifacts, endpoint, template: Template.fromStack(stack) };
}

const modelOf = (template: Template, variantName: string) =>
  Object.values(template.findResources('AWS::SageMaker::Model')).find((model) => model.Properties.Tags.some((tag: { Key: string; Value: string }) => tag.Key === 'ml:variant' && tag.Value === variantName))!;

const errorOf = (props: Partial<ModelEndpointProps>): string => {
  try {
    build(props);
  } catch (error) {
    return (error as Error).message;
  }
  return '(no error)';
};

describe('ModelEndpoint with a serial inference pipeline', () => {
  test('runs the containers of a pipeline version in order as one SageMaker model, serially, without a PrimaryContainer', () => {
    const { template } = build();
    const pipeline = modelOf(template, 'champion').Properties;
    expect(pipeline.InferenceExecutionConfig).toEqual({ Mode: 'Serial' });
    expect(pipeline.PrimaryContainer).toBeUndefined();
    expect(pipeline.Containers).toEqual([
      { Image: PRE, ContainerHostname: 'preprocess', Environment: { SAGEMAKER_PROGRAM: 'preprocess.py' } },
      { Image: MODEL, ContainerHostname: 'model', ModelDataUrl: { 'Fn::Join': ['', ['s3://', { Ref: expect.stringMatching(/^Artifacts/) }, '/churn/2.0.0/model.tar.gz']] } },
      { Image: POST, ContainerHostname: 'postprocess' },
    ]);
    // The whole pipeline runs with the endpoint's network settings, like a single container.
    expect(pipeline.EnableNetworkIsolation).toBe(true);
  });

  test('keeps a single-container version beside it exactly as before: a PrimaryContainer, no Containers, no execution config', () => {
    const { template } = build();
    const single = modelOf(template, 'challenger').Properties;
    expect(single.PrimaryContainer).toEqual({ Image: MODEL, ModelDataUrl: expect.objectContaining({ 'Fn::Join': expect.anything() }) });
    expect(single).not.toHaveProperty('Containers');
    expect(single).not.toHaveProperty('InferenceExecutionConfig');
  });

  test('lets the execution role pull every container image and read every container artifact, one statement per repository', () => {
    const { template } = build();
    const statements = Object.values(template.findResources('AWS::IAM::ManagedPolicy')).flatMap((policy) => policy.Properties.PolicyDocument.Statement as Array<{ Action: unknown; Resource: unknown }>);
    const pulls = statements.filter((statement) => JSON.stringify(statement.Action).includes('ecr:BatchGetImage')).map((statement) => JSON.stringify(statement.Resource));
    for (const repository of [':683313688378:repository/sagemaker-scikit-learn', ':683313688378:repository/sagemaker-xgboost', ':111111111111:repository/churn-postprocess']) {
      expect(pulls.filter((resource) => resource.includes(repository))).toHaveLength(1);
    }
    expect(pulls).toHaveLength(3);
    const reads = statements.filter((statement) => JSON.stringify(statement.Action).includes('s3:GetObject')).map((statement) => JSON.stringify(statement.Resource));
    expect(reads.some((resource) => resource.includes('/churn/2.0.0/model.tar.gz'))).toBe(true);
    expect(reads.some((resource) => resource.includes('/churn/1.9.0/model.tar.gz'))).toBe(true);
  });

  test('reports how many containers each variant runs', () => {
    const { endpoint } = build();
    expect(endpoint.variants.map((deployed) => [deployed.name, deployed.containerCount])).toEqual([['champion', 3], ['challenger', 1]]);
  });

  test('leaves the hostnames to SageMaker when no container names one', () => {
    const { template } = build({ variants: [variant('champion', pipelineVersion([{ image: PRE }, { image: MODEL }]))] });
    expect(modelOf(template, 'champion').Properties.Containers).toEqual([{ Image: PRE }, { Image: MODEL }]);
  });

  test('captures the pipeline\'s requests and answers like a single container\'s', () => {
    const { template } = build({ dataCapture: { samplingPercentage: 10 } });
    template.hasResourceProperties('AWS::SageMaker::EndpointConfig', { DataCaptureConfig: Match.objectLike({ EnableCapture: true, InitialSamplingPercentage: 10 }) });
  });

  test('passes the AwsSolutions, HIPAA Security and NIST 800-53 R5 packs', () => {
    const { app, stack } = build({ dataCapture: { samplingPercentage: 10 } });
    app.synth();
    expect(nagFindings(stack).map((finding) => `${finding.rule} ${finding.resource}`)).toEqual([]);
  });

  test('passes cfn-lint with no errors and no warnings', () => {
    const { template } = build({ dataCapture: { samplingPercentage: 10 } });
    const workdir = mkdtempSync(join(tmpdir(), 'serial-pipeline-'));
    try {
      const file = join(workdir, 'serial-pipeline.template.json');
      writeFileSync(file, JSON.stringify(template.toJSON()));
      // From the repository root, so that .cfnlintrc.yaml applies as in test/lint/cfn-lint.test.ts.
      const lint = run('cfn-lint', ['--format', 'parseable', file], { cwd: REPO_ROOT });
      expect(lint.stdout + lint.stderr).toBe('');
      expect(lint.status).toBe(0);
    } finally {
      rmSync(workdir, { recursive: true, force: true });
    }
  }, 120_000);

  describe('rejects a pipeline SageMaker would refuse, naming the prop and the construct path', () => {
    const sixteen = Array.from({ length: 16 }, (): ContainerDefinition => ({ image: MODEL }));
    const cases: Array<[string, Partial<ModelEndpointProps>, string]> = [
      [
        'both the single-container form and containers',
        { variants: [variant('a', { version: '1', image: MODEL, environment: { A: 'b' }, containers: threeContainers() })] },
        'variants[0].model.image: give either image, modelData and environment (one container) or containers (a serial inference pipeline), not both',
      ],
      [
        'neither an image nor containers',
        { variants: [variant('a', { version: '1' })] },
        'variants[0].model.image: is required unless containers is given (a serial inference pipeline of 2-15 containers)',
      ],
      [
        'a pipeline of one container',
        { variants: [variant('a', pipelineVersion([{ image: MODEL }]))] },
        'variants[0].model.containers: must hold 2 to 15 containers; got 1; for one container give image, modelData and environment on the model version instead',
      ],
      ['a pipeline of sixteen containers', { variants: [variant('a', pipelineVersion(sixteen))] }, "variants[0].model.containers: must hold 2 to 15 containers; got 16 (SageMaker's limit for a serial inference pipeline)"],
      [
        'a container image outside Amazon ECR',
        { variants: [variant('a', pipelineVersion([{ image: PRE }, { image: 'nginx:latest' }]))] },
        'variants[0].model.containers[1].image: must be an Amazon ECR image URI (<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag> or @sha256:<digest>); got "nginx:latest"',
      ],
      [
        'a hostname SageMaker\'s pattern refuses',
        { variants: [variant('a', pipelineVersion([{ image: PRE, containerHostname: 'pre' }, { image: MODEL, containerHostname: 'model_1' }]))] },
        'variants[0].model.containers[1].containerHostname: must be 1-63 letters, digits or hyphens, starting and ending with a letter or digit; got "model_1"',
      ],
      [
        'a hostname over 63 characters',
        { variants: [variant('a', pipelineVersion([{ image: PRE, containerHostname: 'pre' }, { image: MODEL, containerHostname: `m${'-'.repeat(62)}x` }]))] },
        'variants[0].model.containers[1].containerHostname: must be 1-63 letters, digits or hyphens',
      ],
      [
        'two containers with one hostname',
        { variants: [variant('a', pipelineVersion([{ image: PRE, containerHostname: 'step' }, { image: MODEL, containerHostname: 'model' }, { image: POST, containerHostname: 'step' }]))] },
        "variants[0].model.containers[2].containerHostname: 'step' is already the hostname of containers[0]; the hostnames of a pipeline's containers must be unique",
      ],
      [
        'hostnames on some containers only',
        { variants: [variant('a', pipelineVersion([{ image: PRE, containerHostname: 'preprocess' }, { image: MODEL, containerHostname: 'model' }, { image: POST }]))] },
        'variants[0].model.containers: give containerHostname on every container or on none (SageMaker names them by position only when none is named); containers[2] has none',
      ],
      [
        'an environment variable name SageMaker refuses',
        { variants: [variant('a', pipelineVersion([{ image: PRE, environment: { 'MODEL-NAME': 'x' } }, { image: MODEL }]))] },
        'variants[0].model.containers[0].environment: variable names must be at most 1024 letters, digits or underscores, not starting with a digit; got "MODEL-NAME"',
      ],
      [
        'environments over 32 KB together',
        {
          variants: [
            variant('a', pipelineVersion(Array.from({ length: 3 }, (_, index): ContainerDefinition => ({ image: MODEL, environment: Object.fromEntries(Array.from({ length: 12 }, (__, n) => [`V${n}`, 'x'.repeat(1000)])), containerHostname: `c${index}` })))),
          ],
        },
        'variants[0].model.containers: the environment variables of all containers take 36078 bytes together; SageMaker allows 32 KB (32768 bytes) for all the containers of a model combined',
      ],
      [
        'a pipeline on a serverless variant',
        { variants: [variant('a', pipelineVersion(threeContainers()), { kind: 'serverless', memorySizeInMb: 2048, maxConcurrency: 5 })], networkIsolation: false },
        "variants[0].model.containers: serverless inference does not support inference pipelines (variant 'a' is serverless)",
      ],
      [
        'a pipeline on an endpoint with a shadow variant',
        { variants: [variant('a', { version: '1', image: MODEL })], shadowVariants: [{ name: 's', model: pipelineVersion(threeContainers()), capacity: instance }] },
        "shadowVariants[0].model.containers: SageMaker does not run shadow variants on an endpoint that serves a multi-container model (variant 's')",
      ],
      // What a JavaScript caller, without the type checker, can get wrong.
      ['containers that are not a list', { variants: [variant('a', { version: '1', containers: 'pre,model' as never })] }, 'variants[0].model.containers: must be an array; got the string "pre,model"'],
      ['a container without an image', { variants: [variant('a', pipelineVersion([{ image: PRE }, {} as ContainerDefinition]))] }, 'variants[0].model.containers[1].image: is required'],
    ];
    test.each(cases)('%s', (_name, props, message) => {
      const error = errorOf(props);
      expect(error).toMatch(/^Test\/Churn \(ModelEndpoint\): invalid props:\n/);
      expect(error).toContain(message);
    });
  });

  test('reports every problem of the props at once, the pipeline\'s among the others', () => {
    const error = errorOf({
      modelName: 'Churn',
      dataCapture: { samplingPercentage: 101 },
      variants: [
        variant('champion', pipelineVersion([{ image: PRE, containerHostname: 'pre' }, { image: 'nginx:latest', containerHostname: 'pre' }])),
        variant('challenger', pipelineVersion([{ image: MODEL }])),
        variant('third', { version: '1' }),
      ],
    });
    expect(error.split('\n').slice(1)).toEqual([
      expect.stringContaining('variants[0].model.containers[1].image: must be an Amazon ECR image URI'),
      expect.stringContaining("variants[0].model.containers[1].containerHostname: 'pre' is already the hostname of containers[0]"),
      expect.stringContaining('variants[1].model.containers: must hold 2 to 15 containers; got 1'),
      expect.stringContaining('variants[2].model.image: is required unless containers is given'),
      expect.stringContaining('dataCapture.samplingPercentage: must be a whole number from 1 to 100; got 101'),
      expect.stringContaining('modelName: must be 2-32 lowercase letters'),
    ]);
  });
});

describe('what depends on the model\'s containers', () => {
  test('Model Monitor and its baselining workflow attach to an endpoint that serves a pipeline', () => {
    const world = monitorWorld({ endpoint: { variants: [variant('champion', pipelineVersion(threeContainers()))] } });
    const monitor = allMonitors(world);
    new MonitoringBaselineWorkflow(world.stack, 'Baselines', { monitor, encryptionKey: world.key, failureAlarmAction: new actions.SnsAction(world.topic) });
    const template = Template.fromStack(world.stack);
    template.resourceCountIs('AWS::SageMaker::MonitoringSchedule', 4);
    // Clarify's shadow endpoint starts from the pipeline model, by name.
    expect(monitor.endpoint.variants[0]).toMatchObject({ containerCount: 3 });
    expectValidStateMachines(template.toJSON());
  });

  describe('ModelDeployment', () => {
    const deploy = (endpointProps: Partial<ModelEndpointProps>, targetVariant?: string) => {
      const world = lifecycleStack();
      const endpoint = endpointIn(world, endpointProps);
      const construct = new ModelDeployment(world.stack, 'Deployment', { modelPackageGroup: world.group, endpoint, notificationTopic: world.topic, encryptionKey: world.key, targetVariant });
      const [machine] = expectValidStateMachines(Template.fromStack(world.stack).toJSON());
      return { construct, states: (machine.definition as any).States as Record<string, any> };
    };
    const withPipelineChampion: Partial<ModelEndpointProps> = {
      variants: [variant('champion', pipelineVersion(threeContainers())), { ...variant('challenger', { version: '1.1.0', image: MODEL }), weight: 10 }],
    };

    test('refuses to deploy registry versions in place of a pipeline, named by targetVariant', () => {
      expect(() => deploy(withPipelineChampion)).toThrow(
        "Lifecycle/Deployment (ModelDeployment): targetVariant: 'champion' (the default, the endpoint's first production variant) serves a serial inference pipeline of 3 containers; ModelDeployment deploys each registry version as a one-container model and would drop the others: target a variant with one container",
      );
      expect(() => deploy(withPipelineChampion, 'champion')).toThrow("targetVariant: 'champion' serves a serial inference pipeline of 3 containers");
    });

    test('deploys to a single-container variant beside a pipeline, and an execution that names the pipeline fails validation', () => {
      const { states } = deploy(withPipelineChampion, 'challenger');
      expect(states['Create model'].Parameters.PrimaryContainer).toEqual({ 'ModelPackageName.$': '$.config.modelPackageArn' });
      const validation = JSON.stringify(states);
      expect(validation).toContain('config.targetVariant: must be a string and not a variant that serves a serial inference pipeline (champion)');
    });

    test('has no pipeline check when the endpoint serves none', () => {
      expect(JSON.stringify(deploy({}).states)).not.toContain('serial inference pipeline');
    });

    test('creates models with parameters of the CreateModel request only, as botocore\'s SageMaker model defines it', () => {
      const script = [
        'import botocore, gzip, json, os',
        "path = os.path.join(os.path.dirname(botocore.__file__), 'data', 'sagemaker', '2017-07-24', 'service-2.json.gz')",
        "print(json.dumps(sorted(json.load(gzip.open(path))['shapes']['CreateModelInput']['members'])))",
      ].join('\n');
      const python = run('python3', ['-c', script]);
      expect(python.stderr).toBe('');
      const members: string[] = JSON.parse(python.stdout);
      expect(members).toEqual(expect.arrayContaining(['Containers', 'InferenceExecutionConfig', 'PrimaryContainer']));
      for (const endpointProps of [{}, withPipelineChampion]) {
        const { states } = deploy(endpointProps, 'challenger');
        const createModels = Object.values(states).filter((state) => state.Type === 'Task' && String(state.Resource).endsWith(':sagemaker:createModel'));
        expect(createModels).toHaveLength(1);
        for (const state of createModels) {
          const names = Object.keys(state.Parameters).map((name) => name.replace(/\.\$$/, ''));
          expect(names.filter((name) => !members.includes(name))).toEqual([]);
        }
      }
    });
  });
});
