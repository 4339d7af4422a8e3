// The request-path benchmark (bench/request-path.cjs, part of `npm run bench`) run with a handful of
// requests: its result's shape, and that each scenario did what it is named after, as the stand-ins counted
// it (a hit reaches the endpoint once, an ensemble three times per request...). No timing is asserted: the
// figures are only meaningful from a full run, as ratios against the direct call of the same run.
import { join } from 'node:path';
import { REPO_ROOT, run } from '../support/cli';
import { handlerModulePaths } from '../support/handler-harness';

interface Scenario {
  readonly id: string;
  readonly requests: number;
  readonly measured: number;
  readonly wallMs: Record<'p50' | 'p99' | 'mean' | 'min' | 'max', number>;
  readonly cpuUs: Record<'p50' | 'p99' | 'mean', number>;
  readonly outcomes: Record<string, number>;
  readonly failures: number;
  readonly calls: unknown;
  readonly callsMatch: boolean;
  readonly vsDirect: Record<string, number>;
}

interface BudgetFigure {
  readonly figure: string;
  readonly value: number;
  readonly limit: number;
  readonly holds: boolean;
}

interface Result {
  readonly bundle: string;
  readonly requests: number;
  readonly warmup: number;
  readonly rounds: number;
  readonly handlerStderr: Record<string, number>;
  readonly cpuBreakdownUs: Record<string, number>;
  readonly scenarios: Scenario[];
  readonly budget: BudgetFigure[];
}

const REQUESTS = 8;
const WARMUP = 2;
/** Every request of a scenario, warm-up included: what the stand-ins see. */
const TOTAL = REQUESTS + WARMUP;
const noDynamodb = { GetItem: 0, PutItem: 0 };

describe('bench/request-path.cjs', () => {
  let result: Result;

  beforeAll(() => {
    const { status, stdout, stderr } = run(
      process.execPath,
      [join(REPO_ROOT, 'bench', 'request-path.cjs'), '--requests', String(REQUESTS), '--warmup', String(WARMUP), '--rounds', '2', '--bundle', handlerModulePaths('invoke').bundle, '--json'],
      { env: { PATH: process.env.PATH ?? '' }, timeoutMs: 60_000 },
    );
    // 1: a budget figure missed (expected of a cold run this short, and not this test's business); 2: an error.
    expect(stderr).toBe('');
    expect([0, 1]).toContain(status);
    result = JSON.parse(stdout.trim().split('\n').pop() as string) as Result;
  }, 60_000);

  test('reports every scenario, the direct call first, with its figures', () => {
    expect(result).toMatchObject({ bundle: 'assets/lambda/invoke/index.js', requests: REQUESTS, warmup: WARMUP, rounds: 2 });
    expect(result.scenarios.map((scenario) => scenario.id)).toEqual(['direct', 'cache-off', 'cache-miss', 'cache-hit', 'ensemble', 'dynamodb']);
    for (const scenario of result.scenarios) {
      expect(scenario).toMatchObject({ requests: TOTAL, measured: REQUESTS, failures: 0, callsMatch: true });
      for (const value of [...Object.values(scenario.wallMs), ...Object.values(scenario.cpuUs)]) expect(value).toBeGreaterThanOrEqual(0);
      expect(scenario.wallMs.p50).toBeGreaterThan(0);
      expect(scenario.wallMs.p99).toBeGreaterThanOrEqual(scenario.wallMs.p50);
      expect(Object.keys(scenario.vsDirect).sort()).toEqual(['addedCpuMeanUs', 'addedCpuP50Us', 'addedP50Ms', 'cpuP50Ratio', 'p50Ratio', 'p99Ratio']);
    }
    expect(result.scenarios[0]?.vsDirect).toMatchObject({ p50Ratio: 1, addedP50Ms: 0 });
    expect(Object.keys(result.cpuBreakdownUs).sort()).toEqual(['cacheMissPath', 'dynamodbGetAndPut', 'handlerWithoutCache', 'missAdded', 'missAddedWithoutDynamodb']);
  });

  test('each scenario reached the stand-ins as often as it must', () => {
    const calls = Object.fromEntries(result.scenarios.map((scenario) => [scenario.id, scenario.calls]));
    expect(calls).toEqual({
      // The reference: one InvokeEndpoint per request, nothing else.
      direct: { sagemaker: { 'bench-direct': { AllTraffic: TOTAL } }, dynamodb: noDynamodb, ssm: 0 },
      // One InvokeEndpoint per request; the route is read from SSM once.
      'cache-off': { sagemaker: { 'bench-plain': { AllTraffic: TOTAL } }, dynamodb: noDynamodb, ssm: 1 },
      // Every request misses both tiers: GetItem, InvokeEndpoint, PutItem.
      'cache-miss': { sagemaker: { 'bench-cached-miss': { AllTraffic: TOTAL } }, dynamodb: { GetItem: TOTAL, PutItem: TOTAL }, ssm: 1 },
      // Only the first (warm-up) request misses; every other one is answered from memory, with no call at all.
      'cache-hit': { sagemaker: { 'bench-cached-hit': { AllTraffic: 1 } }, dynamodb: { GetItem: 1, PutItem: 1 }, ssm: 1 },
      // Three members per request, each its own production variant (TargetVariant); two routes read.
      ensemble: { sagemaker: { 'bench-trio': { blue: TOTAL, green: TOTAL, red: TOTAL } }, dynamodb: noDynamodb, ssm: 2 },
      // The second reference: the shared tier's two calls, no handler.
      dynamodb: { sagemaker: {}, dynamodb: { GetItem: TOTAL, PutItem: TOTAL }, ssm: 0 },
    });
  });

  test('every measured answer is what its scenario is about', () => {
    const outcomes = Object.fromEntries(result.scenarios.map((scenario) => [scenario.id, scenario.outcomes]));
    expect(outcomes).toEqual({
      direct: { answered: REQUESTS },
      'cache-off': { '200': REQUESTS },
      'cache-miss': { '200 miss': REQUESTS },
      'cache-hit': { '200 hit': REQUESTS },
      ensemble: { '200': REQUESTS },
      dynamodb: { 'missed and stored': REQUESTS },
    });
    // The handler wrote no warning or error (Powertools warns when a request sets its Model dimension twice).
    expect(result.handlerStderr).toEqual({});
  });

  test('gives the two budget figures, each with its limit and whether it holds', () => {
    expect(result.budget).toEqual([
      expect.objectContaining({ figure: 'cache hit p50 vs direct InvokeEndpoint p50 (request path)', limit: 1, holds: expect.any(Boolean), value: expect.any(Number) }),
      expect.objectContaining({ figure: 'CPU the handler adds on a cache miss, beside its two DynamoDB calls, p50 (request path)', limit: 1, holds: expect.any(Boolean), value: expect.any(Number) }),
    ]);
    for (const figure of result.budget) expect(figure.holds).toBe(figure.value < figure.limit);
  });
});
