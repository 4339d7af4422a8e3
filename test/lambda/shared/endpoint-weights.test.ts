// The decisions of the endpoint-weights custom resource: when CloudFormation's event means "apply the
// declared weights" and when it means "keep what the endpoint runs with".
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import fc from 'fast-check';
import {
  customResourceResponse,
  endpointState,
  parseWeightsProperties,
  sameWeights,
  unknownVariants,
  weightsAction,
  WeightsPropertiesError,
  type WeightsProperties,
} from '../../../lambda/shared/endpoint-weights';

const BASE = {
  ServiceToken: 'arn:aws:lambda:us-east-1:111111111111:function:weights',
  ResponseURL: 'https://example.com/response',
  StackId: 'arn:aws:cloudformation:us-east-1:111111111111:stack/s/1',
  RequestId: 'request-1',
  LogicalResourceId: 'ChurnWeights',
  ResourceType: 'Custom::EndpointWeights',
};

/** Properties as CloudFormation delivers them: every number as a string. */
const wire = (properties: WeightsProperties): Record<string, unknown> => ({
  ServiceToken: BASE.ServiceToken,
  EndpointName: properties.EndpointName,
  Weights: properties.Weights.map((weight) => ({ VariantName: weight.VariantName, DesiredWeight: String(weight.DesiredWeight) })),
});

const create = (properties: WeightsProperties): CloudFormationCustomResourceEvent => ({ ...BASE, RequestType: 'Create', ResourceProperties: wire(properties) as never });
const update = (old: WeightsProperties | Record<string, unknown>, next: WeightsProperties): CloudFormationCustomResourceEvent => ({
  ...BASE,
  RequestType: 'Update',
  PhysicalResourceId: 'churn/weights',
  ResourceProperties: wire(next) as never,
  OldResourceProperties: ('Weights' in old && Array.isArray(old.Weights) && 'EndpointName' in old && typeof old.EndpointName === 'string' ? wire(old as WeightsProperties) : old) as never,
});

const champion95: WeightsProperties = { EndpointName: 'churn', Weights: [{ VariantName: 'champion', DesiredWeight: 95 }, { VariantName: 'challenger', DesiredWeight: 5 }] };

describe('parseWeightsProperties', () => {
  test('reads the weights CloudFormation sends as strings as numbers', () => {
    expect(parseWeightsProperties(wire(champion95))).toEqual(champion95);
    expect(parseWeightsProperties({ EndpointName: 'e', Weights: [{ VariantName: 'a', DesiredWeight: '0.5' }] }).Weights[0].DesiredWeight).toBe(0.5);
  });

  test('names every bad field at once', () => {
    let error: unknown;
    try {
      parseWeightsProperties({ EndpointName: '', Weights: [{ VariantName: 'bad name', DesiredWeight: '-1' }, { VariantName: 'b', DesiredWeight: 'x' }] });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(WeightsPropertiesError);
    const message = (error as Error).message;
    expect(message).toContain('ResourceProperties.EndpointName');
    expect(message).toContain('ResourceProperties.Weights[0].VariantName');
    expect(message).toContain('ResourceProperties.Weights[0].DesiredWeight');
    expect(message).toContain('ResourceProperties.Weights[1].DesiredWeight');
  });

  test('refuses weights that are all 0, a variant named twice, and no variants', () => {
    expect(() => parseWeightsProperties({ EndpointName: 'e', Weights: [{ VariantName: 'a', DesiredWeight: '0' }] })).toThrow(/above 0/);
    expect(() => parseWeightsProperties({ EndpointName: 'e', Weights: [{ VariantName: 'a', DesiredWeight: '1' }, { VariantName: 'a', DesiredWeight: '2' }] })).toThrow(/each variant once/);
    expect(() => parseWeightsProperties({ EndpointName: 'e', Weights: [] })).toThrow(/at least one variant/);
  });
});

describe('weightsAction', () => {
  test('create and delete touch nothing', () => {
    expect(weightsAction(create(champion95)).kind).toBe('none');
    expect(weightsAction({ ...BASE, RequestType: 'Delete', PhysicalResourceId: 'churn/weights', ResourceProperties: wire(champion95) as never }).kind).toBe('none');
  });

  test('an update with the same weights keeps the deployed ones; changed weights are applied', () => {
    expect(weightsAction(update(champion95, champion95))).toMatchObject({ kind: 'none', reason: expect.stringContaining('deployed weights are kept') });
    const split: WeightsProperties = { ...champion95, Weights: [{ VariantName: 'champion', DesiredWeight: 50 }, { VariantName: 'challenger', DesiredWeight: 50 }] };
    expect(weightsAction(update(champion95, split))).toEqual({ kind: 'apply', endpointName: 'churn', weights: split.Weights, reason: 'update: the declared weights changed' });
  });

  test('a variant added or removed in the props is a change', () => {
    const three: WeightsProperties = { ...champion95, Weights: [...champion95.Weights, { VariantName: 'explorer', DesiredWeight: 1 }] };
    expect(weightsAction(update(champion95, three)).kind).toBe('apply');
    expect(weightsAction(update(three, champion95)).kind).toBe('apply');
  });

  test('a replaced endpoint (new name) starts with the declared weights: nothing to apply', () => {
    expect(weightsAction(update(champion95, { ...champion95, EndpointName: 'churn-2' })).kind).toBe('none');
  });

  test('old properties that do not parse (a release before this resource existed) count as changed', () => {
    expect(weightsAction(update({ ServiceToken: 'x' }, champion95)).kind).toBe('apply');
  });

  test('bad new properties throw, naming the field', () => {
    const event = update(champion95, champion95);
    (event.ResourceProperties as unknown as { Weights: unknown }).Weights = [{ VariantName: 'champion', DesiredWeight: 'lots' }];
    expect(() => weightsAction(event)).toThrow(/ResourceProperties\.Weights\[0\]\.DesiredWeight/);
  });

  const weightsArb = fc
    .uniqueArray(fc.stringMatching(/^[a-z][a-z0-9]{0,8}$/), { minLength: 1, maxLength: 6 })
    .chain((names) => fc.tuple(fc.constant(names), fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: names.length, maxLength: names.length })))
    .filter(([, weights]) => weights.some((weight) => weight > 0))
    .map(([names, weights]): WeightsProperties => ({ EndpointName: 'e', Weights: names.map((name, index) => ({ VariantName: name, DesiredWeight: weights[index] })) }));

  test('property: the order of the variants never makes a change, and any changed weight always does', () => {
    fc.assert(
      fc.property(weightsArb, fc.nat(), fc.integer({ min: 1, max: 50 }), (properties, seed, delta) => {
        const shuffled = { ...properties, Weights: [...properties.Weights].sort((a, b) => ((a.VariantName.charCodeAt(0) * seed) % 7) - ((b.VariantName.charCodeAt(0) * seed) % 7)) };
        expect(sameWeights(properties, shuffled)).toBe(true);
        expect(weightsAction(update(properties, shuffled)).kind).toBe('none');
        const index = seed % properties.Weights.length;
        const changed = { ...properties, Weights: properties.Weights.map((weight, at) => (at === index ? { ...weight, DesiredWeight: weight.DesiredWeight + delta } : weight)) };
        expect(sameWeights(properties, changed)).toBe(false);
        const action = weightsAction(update(properties, changed));
        expect(action).toMatchObject({ kind: 'apply', weights: changed.Weights });
      }),
    );
  });
});

describe('endpoint states and variants', () => {
  test('waits through transitions, fails on terminal states and on ones it does not know', () => {
    expect(endpointState('InService')).toBe('ready');
    for (const status of ['Creating', 'Updating', 'SystemUpdating', 'RollingBack']) expect(endpointState(status)).toBe('wait');
    for (const status of ['Failed', 'OutOfService', 'Deleting', 'UpdateRollbackFailed', 'SomethingNew', undefined]) expect(endpointState(status)).toBe('failed');
  });

  test('names the declared variants the endpoint lacks', () => {
    expect(unknownVariants(champion95.Weights, ['champion', 'challenger', 'shadow'])).toEqual([]);
    expect(unknownVariants(champion95.Weights, ['champion'])).toEqual(['challenger']);
  });
});

describe('customResourceResponse', () => {
  test('echoes the request, names the resource on create and keeps its id afterwards', () => {
    expect(customResourceResponse(create(champion95), { status: 'SUCCESS', reason: 'ok' })).toEqual({
      Status: 'SUCCESS',
      Reason: 'ok',
      PhysicalResourceId: 'churn/weights',
      StackId: BASE.StackId,
      RequestId: BASE.RequestId,
      LogicalResourceId: BASE.LogicalResourceId,
    });
    const updated = customResourceResponse(update(champion95, champion95), { status: 'FAILED', reason: 'x'.repeat(5000), data: { Weights: 'a=1' } });
    expect(updated.PhysicalResourceId).toBe('churn/weights');
    expect(updated.Reason.length).toBe(1000);
    expect(updated.Data).toEqual({ Weights: 'a=1' });
  });
});
