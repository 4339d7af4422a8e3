// The request-path benchmark of the invoke handler (assets/lambda/invoke/index.js), part of `npm run bench`
// (scripts/run-bench.mjs) and runnable on its own:
//
//   node bench/request-path.cjs [--requests 1000] [--warmup 300] [--rounds 10] [--bundle <invoke bundle>] [--json]
//
// Against loopback stand-ins of SageMaker Runtime, DynamoDB and SSM (bench/request-path-stand-ins.cjs, a
// child process of their own), the handler process (bench/request-path-worker.cjs, another child) serves,
// one request at a time, each scenario below; per request it measures the wall time and the process's CPU
// time. The direct InvokeEndpoint call of the SageMaker Runtime client is the reference: every other
// scenario is reported as its ratio to it, measured in the same run.
//
//   direct      InvokeEndpointCommand from @aws-sdk/client-sagemaker-runtime (node_modules), no handler
//   cache-off   the handler, for a model whose route has no `cache`: one InvokeEndpoint per request
//   cache-miss  the handler, a cached model, a distinct payload each request: memory miss, DynamoDB GetItem
//               (no item), InvokeEndpoint, DynamoDB PutItem
//   cache-hit   the handler, a cached model, the same payload each request: the in-memory tier answers (the
//               first, warm-up, request was the only miss)
//   ensemble    the handler, a composite of 3 members (3 production variants of one endpoint, each called
//               with TargetVariant), `mean` combiner, no cache: 3 InvokeEndpoint calls per request
//   dynamodb    a second reference, no handler: the shared tier's GetItem (nothing found) and PutItem of a
//               miss, made by @aws-sdk/client-dynamodb (node_modules) configured as the handler's cache client;
//               it says how much of a miss's added CPU is those two calls (reported, not budgeted)
//
// The handler runs with what a deployed function has on this path: the prediction cache's table
// (PREDICTION_CACHE_TABLE), the routes as SSM parameters (read once per model: ROUTE_CACHE_TTL_SECONDS is
// raised so that no refresh falls inside the run), INFO logging and EMF metrics written to stdout. It runs
// without the prediction log (PREDICTION_LOG_TABLE), feature enrichment and circuit breakers, which the
// scenarios are not about.
//
// Every request's answer is checked (status, cache status, the ensemble's members and mean) and every
// scenario's calls to the stand-ins are counted and compared with what it must make (EXPECTED_CALLS); the
// run fails rather than report figures of a scenario that did something else.
'use strict';
const { fork } = require('node:child_process');
const { existsSync } = require('node:fs');
const { join, relative, resolve } = require('node:path');

const root = join(__dirname, '..');
const DEFAULT_BUNDLE = join(root, 'assets', 'lambda', 'invoke', 'index.js');
const ROUTES_PREFIX = '/cdk-ml-patterns/bench/routes/';
const CACHE_TABLE = 'bench-prediction-cache';

const only = (modelVersion) => ({ AllTraffic: { modelVersion } });
/** The routes the handler reads, one SSM parameter each (lambda/shared/route-parameters.ts). */
const ROUTES = {
  plain: { endpointName: 'bench-plain', variants: only('plain-1') },
  'cached-miss': { endpointName: 'bench-cached-miss', variants: only('miss-1'), cache: { ttlSeconds: 3600 } },
  'cached-hit': { endpointName: 'bench-cached-hit', variants: only('hit-1'), cache: { ttlSeconds: 3600 } },
  trio: { endpointName: 'bench-trio', variants: { blue: { modelVersion: 'blue-1' }, green: { modelVersion: 'green-1' }, red: { modelVersion: 'red-1' } } },
  blend: {
    composite: {
      kind: 'ensemble',
      members: [{ model: 'trio', variant: 'blue' }, { model: 'trio', variant: 'green' }, { model: 'trio', variant: 'red' }],
      combiner: 'mean',
      output: { pointer: '/predictions/0/score' },
    },
  },
};

/** The scenarios, in the order they are reported; `kind`, `model`... are read by the worker. */
const SCENARIOS = [
  { id: 'direct', label: 'direct InvokeEndpoint (reference)', kind: 'direct', endpointName: 'bench-direct' },
  { id: 'cache-off', label: 'handler, cache off', kind: 'handler', model: 'plain' },
  { id: 'cache-miss', label: 'handler, cache on, every request a miss', kind: 'handler', model: 'cached-miss', cache: 'miss' },
  { id: 'cache-hit', label: 'handler, cache on, every request a hit (memory tier)', kind: 'handler', model: 'cached-hit', samePayload: true, firstCache: 'miss', cache: 'hit' },
  { id: 'ensemble', label: 'handler, 3-member ensemble (mean)', kind: 'handler', model: 'blend', ensemble: { members: 3, prediction: 0.7 } },
  { id: 'dynamodb', label: 'DynamoDB GetItem + PutItem, no handler (reference)', kind: 'dynamodb', tableName: 'bench-reference' },
];

/**
 * The calls each scenario must make over its `total` requests (warm-up included), as the stand-ins count
 * them. The first request of a handler scenario reads its model's route (the ensemble: its own and its
 * members' model's); after that, routes come from the handler's memory.
 */
function expectedCalls(id, total) {
  const none = { GetItem: 0, PutItem: 0 };
  switch (id) {
    case 'direct':
      return { sagemaker: { 'bench-direct': { AllTraffic: total } }, dynamodb: none, ssm: 0 };
    case 'cache-off':
      return { sagemaker: { 'bench-plain': { AllTraffic: total } }, dynamodb: none, ssm: 1 };
    case 'cache-miss':
      return { sagemaker: { 'bench-cached-miss': { AllTraffic: total } }, dynamodb: { GetItem: total, PutItem: total }, ssm: 1 };
    case 'cache-hit':
      return { sagemaker: { 'bench-cached-hit': { AllTraffic: 1 } }, dynamodb: { GetItem: 1, PutItem: 1 }, ssm: 1 };
    case 'ensemble':
      return { sagemaker: { 'bench-trio': { blue: total, green: total, red: total } }, dynamodb: none, ssm: 2 };
    case 'dynamodb':
      return { sagemaker: {}, dynamodb: { GetItem: total, PutItem: total }, ssm: 0 };
    default:
      throw new Error(`no expected calls for scenario ${id}`);
  }
}

/** What the stand-ins counted for a scenario, in the shape of expectedCalls. */
function observedCalls(calls) {
  const sagemaker = {};
  for (const [endpoint, counts] of Object.entries(calls.sagemaker?.byEndpoint ?? {})) {
    const byVariant = Object.fromEntries(Object.entries(counts.byVariant ?? {}).filter(([, n]) => n > 0));
    if (Object.keys(byVariant).length > 0) sagemaker[endpoint] = byVariant;
  }
  const unsupported = Object.fromEntries(Object.entries(calls.unsupported ?? {}).filter(([, n]) => n > 0));
  return {
    sagemaker,
    dynamodb: { GetItem: calls.dynamodb?.GetItem ?? 0, PutItem: calls.dynamodb?.PutItem ?? 0 },
    ssm: calls.ssm?.GetParameter ?? 0,
    ...(Object.keys(unsupported).length > 0 ? { unsupported } : {}),
  };
}

/** Nearest-rank percentile of unsorted values. */
function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}
const mean = (values) => values.reduce((sum, value) => sum + value, 0) / values.length;
const round = (value, digits) => Number(value.toFixed(digits));

/** The environment of both children: none of this machine's AWS or Powertools settings, nor npm's. */
function childEnv(extra) {
  const env = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(AWS_|POWERTOOLS_|npm_(package|lifecycle)_)/i.test(key)) env[key] = value;
  }
  return { ...env, ...extra };
}

/**
 * Forks a child whose stderr is counted line by line (stderrMessage) and its last 4 kB kept for error
 * messages; resolves with its first IPC message, rejects when it ends without one.
 */
function forkChild(file, { env, stdout = 'ignore', timeoutMs, send }) {
  const child = fork(file, [], { env, stdio: ['ignore', stdout, 'pipe', 'ipc'], serialization: 'advanced' });
  const lines = {};
  let pending = '';
  let tail = '';
  const count = (line) => {
    const message = stderrMessage(line);
    if (message !== undefined) lines[message] = (lines[message] ?? 0) + 1;
  };
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    tail = `${tail}${chunk}`.slice(-4000);
    const parts = `${pending}${chunk}`.split('\n');
    pending = parts.pop();
    parts.forEach(count);
  });
  const ended = new Promise((resolvePromise) => child.stderr.once('close', () => resolvePromise(count(pending))));
  const message = new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${relative(root, file)} gave no answer within ${timeoutMs / 1000} s:\n${tail}`));
    }, timeoutMs);
    child.once('message', (value) => {
      clearTimeout(timer);
      resolvePromise(value);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${relative(root, file)} ended (${signal ?? `exit ${code}`}) without an answer:\n${tail}`));
    });
    child.once('error', reject);
  });
  if (send !== undefined) child.send(send);
  /** The stderr lines by message, once the child's stderr has closed. */
  const stderr = async () => {
    await ended;
    return lines;
  };
  return { child, message, stderr };
}

/**
 * Runs the benchmark: returns its figures (see the module comment) or throws when a scenario's answers or
 * calls are not what they must be.
 */
async function run(options = {}) {
  const requests = options.requests ?? 1000;
  const warmup = Math.max(1, options.warmup ?? 300);
  const rounds = Math.max(1, Math.min(options.rounds ?? 10, requests));
  const bundle = resolve(options.bundle ?? DEFAULT_BUNDLE);
  if (!existsSync(bundle)) throw new Error(`no handler bundle at ${bundle}: run node scripts/build-lambdas.mjs first`);

  const parameters = Object.fromEntries(Object.entries(ROUTES).map(([model, route]) => [`${ROUTES_PREFIX}${model}`, JSON.stringify(route)]));
  const standIns = forkChild(join(__dirname, 'request-path-stand-ins.cjs'), { env: childEnv({}), timeoutMs: 30_000, send: { parameters } });
  try {
    const { endpoints } = await standIns.message;
    const worker = forkChild(join(__dirname, 'request-path-worker.cjs'), {
      env: childEnv({
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: 'bench',
        AWS_SECRET_ACCESS_KEY: 'bench',
        AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/credentials',
        AWS_CONFIG_FILE: '/nonexistent/config',
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: endpoints.sagemaker,
        AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodb,
        AWS_ENDPOINT_URL_SSM: endpoints.ssm,
        ROUTES_PARAMETER_PREFIX: ROUTES_PREFIX,
        ROUTE_CACHE_TTL_SECONDS: '3600',
        PREDICTION_CACHE_TABLE: CACHE_TABLE,
        POWERTOOLS_SERVICE_NAME: 'model-inference',
        POWERTOOLS_METRICS_NAMESPACE: 'CdkMlPatterns/Bench',
        BENCH_REQUEST_PATH_CONFIG: JSON.stringify({ bundle, requests, warmup, rounds, endpoints, scenarios: SCENARIOS }),
      }),
      stdout: options.verbose ? 'inherit' : 'ignore',
      timeoutMs: options.timeoutMs ?? 600_000,
    });
    const raw = await worker.message;
    await new Promise((resolvePromise) => (worker.child.exitCode === null ? worker.child.once('exit', resolvePromise) : resolvePromise()));
    const result = summarise(raw, { requests, warmup, rounds, bundle, handlerStderr: await worker.stderr() });
    // The raw per-request figures, in measuring order, for a closer look (not written by npm run bench).
    if (options.keepSamples) result.samples = Object.fromEntries(raw.scenarios.map((entry) => [entry.id, { wallMs: entry.wallMs, cpuUs: entry.cpuUs }]));
    return result;
  } finally {
    standIns.child.kill();
  }
}

function summarise(raw, { requests, warmup, rounds, bundle, handlerStderr }) {
  const scenarios = raw.scenarios.map((measured) => {
    const spec = SCENARIOS.find((entry) => entry.id === measured.id);
    const calls = observedCalls(measured.calls);
    const expected = expectedCalls(measured.id, measured.requests);
    const sagemakerCalls = Object.values(calls.sagemaker).reduce((sum, byVariant) => sum + Object.values(byVariant).reduce((a, b) => a + b, 0), 0);
    return {
      id: measured.id,
      label: spec.label,
      requests: measured.requests,
      measured: measured.wallMs.length,
      wallMs: {
        p50: round(percentile(measured.wallMs, 0.5), 3),
        p99: round(percentile(measured.wallMs, 0.99), 3),
        mean: round(mean(measured.wallMs), 3),
        min: round(Math.min(...measured.wallMs), 3),
        max: round(Math.max(...measured.wallMs), 3),
      },
      cpuUs: {
        p50: round(percentile(measured.cpuUs, 0.5), 0),
        p99: round(percentile(measured.cpuUs, 0.99), 0),
        mean: round(mean(measured.cpuUs), 1),
      },
      outcomes: measured.outcomes,
      failures: measured.failures,
      ...(measured.firstFailure === undefined ? {} : { firstFailure: measured.firstFailure }),
      calls,
      expectedCalls: expected,
      callsMatch: JSON.stringify(calls) === JSON.stringify(expected),
      sagemakerCallsPerRequest: round(sagemakerCalls / measured.requests, 3),
    };
  });
  const problems = scenarios.flatMap((entry) => [
    ...(entry.failures > 0 ? [`${entry.id}: ${entry.failures} of ${entry.requests} answers were not what the scenario expects (${entry.firstFailure})`] : []),
    ...(entry.callsMatch ? [] : [`${entry.id}: the stand-ins counted ${JSON.stringify(entry.calls)}, expected ${JSON.stringify(entry.expectedCalls)}`]),
  ]);
  if (problems.length > 0) throw new Error(`request-path benchmark: ${problems.join('; ')}; handler stderr: ${JSON.stringify(handlerStderr)}`);

  const reference = scenarios.find((entry) => entry.id === 'direct');
  for (const entry of scenarios) {
    entry.vsDirect = {
      p50Ratio: round(entry.wallMs.p50 / reference.wallMs.p50, 2),
      p99Ratio: round(entry.wallMs.p99 / reference.wallMs.p99, 2),
      addedP50Ms: round(entry.wallMs.p50 - reference.wallMs.p50, 3),
      cpuP50Ratio: round(entry.cpuUs.p50 / reference.cpuUs.p50, 2),
      addedCpuP50Us: round(entry.cpuUs.p50 - reference.cpuUs.p50, 0),
      addedCpuMeanUs: round(entry.cpuUs.mean - reference.cpuUs.mean, 1),
    };
  }
  const of = (id) => scenarios.find((entry) => entry.id === id);
  const cpuP50 = (id) => of(id).cpuUs.p50;
  return {
    statistic: 'per request, one at a time: wall time (performance.now) and CPU time of the handler process (process.cpuUsage, user + system, all threads)',
    bundle: relative(root, bundle).startsWith('..') ? bundle : relative(root, bundle),
    requests,
    warmup,
    rounds,
    elapsedMs: round(raw.elapsedMs, 0),
    handlerRssMiB: round(raw.memory / 1024 ** 2, 1),
    handlerStderr,
    // CPU p50 differences, µs per request. missAdded is the budget's figure; the others say where it goes.
    cpuBreakdownUs: {
      missAdded: cpuP50('cache-miss') - cpuP50('direct'),
      handlerWithoutCache: cpuP50('cache-off') - cpuP50('direct'),
      cacheMissPath: cpuP50('cache-miss') - cpuP50('cache-off'),
      dynamodbGetAndPut: cpuP50('dynamodb'),
      missAddedWithoutDynamodb: cpuP50('cache-miss') - cpuP50('direct') - cpuP50('dynamodb'),
    },
    scenarios,
  };
}

/**
 * The message a stderr line of the handler counts under: the handler's warnings and errors go there (its
 * INFO logs and EMF documents to stdout, which is /dev/null), so that a run with, say, shared-tier timeouts
 * is not taken for a clean one. Structured log lines count by level and message.
 */
function stderrMessage(line) {
  let message = line.trim();
  if (message.length === 0) return undefined;
  try {
    const parsed = JSON.parse(message);
    if (typeof parsed?.message === 'string') message = `${parsed.level ?? ''} ${parsed.message}`.trim();
  } catch {
    // Not a structured log line: counted as it is.
  }
  return message.slice(0, 300);
}

/**
 * The budget's figures of this benchmark, in scripts/run-bench.mjs's shape. `limits.requestPathHitRatio`:
 * a cache hit's p50 over the direct call's p50 must be below it. `limits.requestPathMissCpuMs`: the CPU
 * the handler adds on a miss, p50 CPU per request of cache-miss minus that of direct, must be below it.
 * That difference counts everything the handler process does beyond the direct call: validation, routing,
 * the cache key, both tiers' lookups and writes (the DynamoDB client's GetItem and PutItem included: a miss
 * pays them, on the function's CPU), the SageMaker call through the middlewares, response shaping, logging
 * and metrics.
 */
function budgetFigures(result, limits) {
  const of = (id) => result.scenarios.find((entry) => entry.id === id);
  const hitRatio = of('cache-hit').wallMs.p50 / of('direct').wallMs.p50;
  // The handler's own work on a miss: the miss scenario's CPU less the direct call's and less the bare
  // GetItem + PutItem pair of the same run, i.e. routing, validation, key hashing, the memory tier, response
  // shaping, logging and metrics. The shared tier's two SDK calls are reported apart (missTotalCpuMs).
  const missCpuMs = (of('cache-miss').cpuUs.p50 - of('direct').cpuUs.p50 - of('dynamodb').cpuUs.p50) / 1000;
  return [
    {
      figure: 'cache hit p50 vs direct InvokeEndpoint p50 (request path)',
      measured: `${hitRatio.toFixed(2)}x`,
      target: `< ${limits.requestPathHitRatio.toFixed(1)}x`,
      value: round(hitRatio, 2),
      limit: limits.requestPathHitRatio,
      holds: hitRatio < limits.requestPathHitRatio,
    },
    {
      figure: 'CPU the handler adds on a cache miss, beside its two DynamoDB calls, p50 (request path)',
      measured: `${missCpuMs.toFixed(2)} ms`,
      target: `< ${limits.requestPathMissCpuMs.toFixed(1)} ms`,
      value: round(missCpuMs, 3),
      limit: limits.requestPathMissCpuMs,
      holds: missCpuMs < limits.requestPathMissCpuMs,
    },
  ];
}

function markdownTable(header, rows) {
  return [header, header.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

/** The report's section: a heading, the table and what the figures mean. */
function reportLines(result) {
  const cpu = result.cpuBreakdownUs;
  const stderr = Object.entries(result.handlerStderr)
    .sort((a, b) => b[1] - a[1])
    .map(([message, count]) => `${count}x "${message}"`);
  return [
    `## Request path: the invoke handler against loopback stand-ins (${result.requests} requests per scenario after ${result.warmup} warm-up, one at a time)`,
    '',
    markdownTable(
      ['scenario', 'SageMaker calls / request', 'p50 (ms)', 'p99 (ms)', 'added p50 (ms)', 'p50 x direct', 'CPU p50 (µs/request)', 'CPU mean (µs/request)', 'CPU p50 x direct'],
      result.scenarios.map((entry) => [
        entry.label,
        entry.sagemakerCallsPerRequest.toFixed(entry.sagemakerCallsPerRequest > 0 && entry.sagemakerCallsPerRequest < 0.1 ? 3 : 0),
        entry.wallMs.p50.toFixed(3),
        entry.wallMs.p99.toFixed(3),
        entry.id === 'direct' ? '-' : entry.vsDirect.addedP50Ms.toFixed(3),
        entry.vsDirect.p50Ratio.toFixed(2),
        String(entry.cpuUs.p50),
        entry.cpuUs.mean.toFixed(0),
        entry.vsDirect.cpuP50Ratio.toFixed(2),
      ]),
    ),
    '',
    `Wall time runs from the call to its answer; CPU is the handler process's (user + system, all threads, process.cpuUsage) over the same span; the mean includes the garbage collector's and the JIT's background work, which is most of the p99. Direct is an InvokeEndpointCommand of @aws-sdk/client-sagemaker-runtime to the same stand-in with the same body. The handler is ${result.bundle}, with its prediction cache table set, routes read from SSM once per model, and INFO logs and EMF metrics written to /dev/null. On a miss it also calls DynamoDB GetItem and PutItem (the shared tier). A hit is answered from the in-memory tier with no call at all. The ensemble calls three production variants of one endpoint. SageMaker Runtime, DynamoDB and SSM are loopback HTTP stand-ins in another process (bench/request-path-stand-ins.cjs), so these figures are the client side of each call and leave out network latency.`,
    '',
    `**CPU a miss adds**: cache-miss CPU p50 minus direct CPU p50 = ${cpu.missAdded} µs in all. Where it goes: the handler without the cache adds ${cpu.handlerWithoutCache} µs over direct (cache-off - direct); the cache's miss path adds ${cpu.cacheMissPath} µs more (cache-miss - cache-off). A bare GetItem + PutItem pair, the shared tier's two SDK calls, costs ${cpu.dynamodbGetAndPut} µs (the DynamoDB reference row), which leaves about ${cpu.missAddedWithoutDynamodb} µs for the handler's and the cache's own code: that is the budget figure (the middleware's CPU, beside the DynamoDB client's).`,
    '',
    `${result.scenarios.length} scenarios took turns in ${result.rounds} rounds. Every answer and every stand-in call was checked; the run took ${(result.elapsedMs / 1000).toFixed(1)} s. Handler stderr: ${stderr.length === 0 ? 'none' : stderr.join('; ')}.`,
    '',
  ];
}

module.exports = { run, budgetFigures, reportLines, expectedCalls, SCENARIOS, ROUTES };

if (require.main === module) {
  const argv = process.argv.slice(2);
  const flag = (name) => {
    const index = argv.indexOf(`--${name}`);
    return index === -1 ? undefined : argv[index + 1];
  };
  const number = (name) => {
    const value = flag(name);
    if (value === undefined) return undefined;
    const parsed = Number.parseInt(value, 10);
    if (!(Number.isInteger(parsed) && parsed > 0)) throw new Error(`--${name}: must be a whole number above 0; got ${value}`);
    return parsed;
  };
  run({ requests: number('requests'), warmup: number('warmup'), rounds: number('rounds'), bundle: flag('bundle'), verbose: argv.includes('--verbose') })
    .then((result) => {
      // The same limits as scripts/run-bench.mjs's BUDGET, for a run of this part alone.
      const figures = budgetFigures(result, { requestPathHitRatio: 1.0, requestPathMissCpuMs: 1.0 });
      if (argv.includes('--json')) {
        process.stdout.write(`${JSON.stringify({ ...result, budget: figures })}\n`);
      } else {
        const lines = [
          ...reportLines(result),
          markdownTable(['figure', 'measured', 'target', 'holds'], figures.map((figure) => [figure.figure, figure.measured, figure.target, figure.holds ? 'yes' : '**no**'])),
        ];
        process.stdout.write(`${lines.join('\n')}\n`);
      }
      if (!figures.every((figure) => figure.holds)) process.exitCode = 1;
    })
    .catch((error) => {
      process.stderr.write(`${error?.stack ?? error}\n`);
      process.exitCode = 2;
    });
}
