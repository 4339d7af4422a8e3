// Composite models as a CDK user meets them: addEnsemble, addCascade and addChain on RealTimeInferenceApi,
// the route document the handler reads (checked with the handler's own schema), and the problems named at
// construction and at synth.
import { App, CfnElement, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { CompositeRouteSchema } from '../../../lambda/shared/composite';
import { formatIssues } from '../../../lambda/shared/inference';
import { DataKey, EnsembleCombiner, ModelEndpoint, OutputField, RealTimeInferenceApi } from '../../../lib';
import { loadConfig } from '../../../config';
import { staging } from '../../../config/staging';
import { configProblems } from '../../support/config-problems';
import { nagFindings, synthesizePlatform } from '../../support/platform';

const IMAGE = '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1';
const capacity = { kind: 'instance' as const, instanceType: 'ml.m5.large', initialInstanceCount: 1 };

function build() {
  const app = new App();
  const stack = new Stack(app, 'Api', { env: { account: '111111111111', region: 'us-east-1' } });
  const key = new DataKey(stack, 'Key').key;
  const endpoint = (name: string, variants: string[]) =>
    new ModelEndpoint(stack, name, { modelName: name, encryptionKey: key, variants: variants.map((variant) => ({ name: variant, weight: 1, model: { version: `${variant}-1`, image: IMAGE }, capacity })) });
  const api = new RealTimeInferenceApi(stack, 'Inference', { encryptionKey: key });
  const churn = api.addEndpoint(endpoint('churn', ['champion', 'challenger']));
  const lite = api.addEndpoint(endpoint('churn-lite', ['only']));
  return { app, stack, api, churn, lite };
}

/** The composite document of a route parameter, resolved, as the handler would read it. */
function documentOf(stack: Stack, name: string): unknown {
  const template = Template.fromStack(stack);
  const found = Object.values(template.findResources('AWS::SSM::Parameter')).find((resource) => String(resource.Properties.Description).startsWith(`Route of composite model ${name} `));
  return JSON.parse(stack.resolve(found?.Properties.Value) as string);
}

function expectHandlerAccepts(document: unknown): void {
  const parsed = CompositeRouteSchema.safeParse(document);
  expect(parsed.success ? '' : formatIssues(parsed.error.issues, '(root)')).toBe('');
}

describe('RealTimeInferenceApi composites', () => {
  test('an ensemble of two variants and a model: the route the handler reads, under the API\'s prefix', () => {
    const { stack, api, churn } = build();
    const ensemble = api.addEnsemble('churn-blend', {
      members: [{ model: churn, variant: 'champion' }, { model: churn, variant: 'challenger', weight: 2 }, { model: 'churn-lite' }],
      combiner: EnsembleCombiner.WEIGHTED_MEAN,
      output: OutputField.jsonPointer('/predictions/0/score'),
      quorum: 2,
      timeout: Duration.millis(800),
    });
    expect(ensemble.models).toEqual(['churn', 'churn-lite']);
    expect(api.compositeNames).toEqual(['churn-blend']);
    const document = documentOf(stack, 'churn-blend');
    expect(document).toEqual({
      composite: {
        kind: 'ensemble',
        members: [{ model: 'churn', variant: 'champion' }, { model: 'churn', variant: 'challenger', weight: 2 }, { model: 'churn-lite' }],
        combiner: 'weighted-mean',
        output: { pointer: '/predictions/0/score' },
        quorum: 2,
        timeoutMs: 800,
      },
    });
    expectHandlerAccepts(document);
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::SSM::Parameter', { Name: `${api.routeParameterPrefix}churn-blend`, Type: 'String' });
  });

  test('a cascade and a chain, with stacking: every document is one the handler accepts', () => {
    const { stack, api } = build();
    api.addCascade('churn-tiered', { stages: [{ model: 'churn-lite', confidence: OutputField.csvColumn(1), threshold: 0.9 }, { model: 'churn', variant: 'champion' }] });
    api.addChain('churn-explain', { stages: [{ model: 'churn-lite' }, { model: 'churn', input: { features: '/request/features', prior: '/previous' } }], timeout: Duration.seconds(2) });
    api.addEnsemble('churn-stacked', { members: [{ model: 'churn', variant: 'champion' }, { model: 'churn', variant: 'challenger' }], combiner: EnsembleCombiner.STACKING, metaModel: { model: 'churn-lite', contentType: 'text/csv' } });
    const cascade = documentOf(stack, 'churn-tiered');
    expect(cascade).toEqual({ composite: { kind: 'cascade', stages: [{ model: 'churn-lite', confidence: { csvColumn: 1 }, threshold: 0.9 }, { model: 'churn', variant: 'champion' }] } });
    const chain = documentOf(stack, 'churn-explain');
    expect(chain).toEqual({ composite: { kind: 'chain', stages: [{ model: 'churn-lite' }, { model: 'churn', input: { features: '/request/features', prior: '/previous' } }], timeoutMs: 2000 } });
    for (const document of [cascade, chain, documentOf(stack, 'churn-stacked')]) expectHandlerAccepts(document);
  });

  test('a definition\'s problems are named at construction, every one at once', () => {
    const { api } = build();
    expect(() =>
      api.addEnsemble('Blend!', {
        members: [{ model: 'churn', weight: -1 }, { model: 'churn', weight: -1 }],
        combiner: 'average' as EnsembleCombiner,
        output: OutputField.jsonPointer('score'),
        quorum: 3,
        timeout: Duration.minutes(1),
      }),
    ).toThrow(
      /name: must be 2-32 lowercase letters.*; timeout: must be whole milliseconds from 10 ms to 25 seconds.*got 60000 ms; combiner: must be one of mean, weighted-mean, median, vote, weighted-vote, stacking; got "average"; output: must be a JSON pointer.*; members\[0\]\.weight: must be above 0.*; members\[1\]\.weight: must be above 0.*; members\[1\]: repeats an earlier member.*; quorum: must be a whole number from 1 to the number of members \(2\); got 3/,
    );
    expect(() => api.addCascade('tiered', { stages: [{ model: 'churn-lite' }, { model: 'churn', threshold: 1 }] })).toThrow(
      /stages\[0\]\.confidence: is required on every stage but the last; stages\[0\]\.threshold: is required on every stage but the last; stages\[1\]: is the last stage, which always answers/,
    );
    expect(() => api.addChain('chained', { stages: [{ model: 'churn-lite', input: { x: '/body/x' } }] })).toThrow(/stages: must list 2-5 stages; got 1; stages\[0\]\.input\.x: must start with \/request, \/previous or \/stages/);
    expect(() => api.addEnsemble('stacked', { members: [{ model: 'churn' }, { model: 'churn-lite' }], combiner: EnsembleCombiner.STACKING })).toThrow(/metaModel: is required with the stacking combiner/);
    expect(() => api.addEnsemble('churn', { members: [{ model: 'churn' }, { model: 'churn-lite' }], combiner: EnsembleCombiner.MEAN })).toThrow(/a model named 'churn' is already served/);
  });

  test('models the API does not serve, and variants the endpoint does not have, are named at synth', () => {
    const { app, api } = build();
    api.addEnsemble('blend', { members: [{ model: 'churn', variant: 'shadow' }, { model: 'fraud' }], combiner: EnsembleCombiner.MEAN });
    expect(() => app.synth()).toThrow(/members\[0\]\.variant: 'shadow' is not a production variant of 'churn' \(champion, challenger\)[\s\S]*members\[1\]\.model: 'fraud' is not a model the API serves \(churn, churn-lite\)/);
  });

  test('passes the three cdk-nag packs', () => {
    const { app, stack, api } = build();
    api.addEnsemble('blend', { members: [{ model: 'churn' }, { model: 'churn-lite' }], combiner: EnsembleCombiner.MEDIAN });
    app.synth();
    expect(nagFindings(stack)).toEqual([]);
  });
});

describe('config: composites', () => {
  test('staging blends the churn champion and challenger; the route is one the handler accepts, on the overview dashboard', () => {
    expect(loadConfig('staging').composites).toEqual([
      { kind: 'ensemble', name: 'churn-blend', members: [{ model: 'churn', variant: 'champion' }, { model: 'churn', variant: 'challenger' }], combiner: 'mean', output: { jsonPointer: '/predictions/0/score' }, quorum: 1, timeoutMs: 1000 },
    ]);
    const platform = synthesizePlatform('staging');
    const serving = platform.stacks.serving;
    const route = serving.inferenceApi.compositeOf('churn-blend')!;
    const parameter = platform.templates[serving.stackName].toJSON().Resources[serving.getLogicalId(route.parameter.node.defaultChild as CfnElement)];
    const document = JSON.parse(parameter.Properties.Value);
    expectHandlerAccepts(document);
    expect(document.composite).toMatchObject({ kind: 'ensemble', combiner: 'mean', output: { pointer: '/predictions/0/score' }, quorum: 1, timeoutMs: 1000 });
    const [dashboard] = Object.values<any>(platform.templates[platform.stacks.observability.stackName].findResources('AWS::CloudWatch::Dashboard'));
    const body = JSON.stringify(dashboard.Properties.DashboardBody);
    expect(body).toContain('Composites: parts failed; cascade escalations');
    expect(body).toContain('CompositePartsFailed');
  });

  test('every problem of every composite is named in one run, by its path', () => {
    const found = configProblems(staging, (config) => {
      config.composites = [
        { kind: 'ensemble', name: 'churn', members: [{ model: 'churn', variant: 'shadow' }], combiner: 'stacking', quorum: 3, timeoutMs: 5.5 },
        { kind: 'cascade', name: 'tiered', stages: [{ model: 'fraud' }, { model: 'churn', confidence: { jsonPointer: 'no-slash' }, threshold: 0.9 }] },
        { kind: 'chain', name: 'tiered', stages: [{ model: 'churn', input: { user: '/elsewhere' } }, { model: 'churn' }] },
        { kind: 'vote', name: 'odd' },
      ];
    });
    expect(found).toEqual(
      expect.arrayContaining([
        "composites[0].name: 'churn' is the name of a model family; a composite is served under its own name",
        'composites[0].timeoutMs: must be whole milliseconds from 10 to 25000 (API Gateway gives up at 29 s); got 5.5',
        'composites[0].members: must list 2-10 members; got 1',
        'composites[0].quorum: must be a whole number from 1 to the number of members (1); got 3',
        'composites[0].metaModel: is required with the stacking combiner',
        'composites[0].quorum: must be every member (1) with the stacking combiner: the meta-model takes one output per member',
        "composites[0].members[0].variant: 'shadow' is not a production variant of churn (champion, challenger)",
        'composites[1].stages[0].confidence: is required on every stage but the last',
        'composites[1].stages[0].threshold: is required on every stage but the last',
        "composites[1].stages[0].model: 'fraud' is not a model family of this config (churn, offers)",
        'composites[1].stages[1]: is the last stage, which always answers: it takes no confidence or threshold',
        "composites[2].name: 'tiered' is already used by another composite",
        'composites[2].stages[0].input.user: must start with /request, /previous or /stages; got "/elsewhere"',
        'composites[3].kind: must be ensemble, cascade or chain',
      ]),
    );
    expect(found).toHaveLength(14);
  });

  test('prod serves no composite, so its overview has no composite section; churn\'s dashboard shows its breaker\'s state', () => {
    expect(loadConfig('prod').composites).toEqual([]);
    const platform = synthesizePlatform('prod');
    const bodyOf = (stackName: string) => JSON.stringify(Object.values<any>(platform.templates[stackName].findResources('AWS::CloudWatch::Dashboard')).map((dashboard) => dashboard.Properties.DashboardBody));
    expect(bodyOf(platform.stacks.observability.stackName)).not.toContain('Composite models');
    const churn = platform.stacks.families.find((family) => family.modelName === 'churn')!;
    const alarm = platform.stacks.serving.inferenceApi.routeOf('churn')!.circuitOpenAlarm!;
    const body = bodyOf(churn.stackName);
    expect(body).toContain('Circuit breakers open');
    expect(body).toContain(churn.getLogicalId(alarm.node.defaultChild as CfnElement));
  });
});
