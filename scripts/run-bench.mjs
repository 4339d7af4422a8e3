#!/usr/bin/env node
// `npm run bench`: measures, on this machine,
//   1. `cdk synth` wall time of the blueprint per environment, beside a one-bucket CDK app synthesized
//      by the same CLI in the same run (the ratio is the headline figure);
//   2. the size of each pre-built Lambda bundle (assets/lambda/<name>/index.js), raw and gzipped;
//   3. each handler's cold initialisation: require() of its bundle in a fresh `node` process, beside the
//      same for a bundle of a bare SageMaker Runtime client;
//   4. the RAG handlers' cold start: require() plus their first invocation against local stand-ins of the
//      services they call (bench/first-invoke.cjs);
//   5. the invoke handler's request path: wall and CPU time per request, beside a direct InvokeEndpoint call,
//      with the prediction cache off, missing and hitting, and for an ensemble, against loopback stand-ins
//      (bench/request-path.cjs; `node bench/request-path.cjs` runs this part alone).
// Prints markdown tables and writes the raw figures to bench/results/latest.json; the performance budget
// (BUDGET below: bundle sizes, cold start against the reference client, prod synth against the one-bucket
// app, the request path against a direct InvokeEndpoint call) is printed first, each figure beside its target, and the run exits 1 when one of them misses it.
//
// Knobs: BENCH_SYNTH_RUNS (default 3, after one unmeasured warm-up round), BENCH_INIT_RUNS (default 10),
// BENCH_ENVS (default "dev,staging,prod"), BENCH_FLEETS (default "5,50": prod synthesized with that many model
// families, bench/fleet-app.ts; the ratio of the largest to the smallest is how synth grows with the fleet),
// BENCH_REQUEST_PATH_REQUESTS (default 1000 per scenario) and BENCH_REQUEST_PATH_WARMUP (default 300).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, platform, release, tmpdir, totalmem, arch } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import requestPath from '../bench/request-path.cjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const benchDir = join(root, 'bench');
const cdkBin = join(root, 'node_modules', '.bin', 'cdk');
const synthRuns = positiveInt(process.env.BENCH_SYNTH_RUNS, 3);
const initRuns = positiveInt(process.env.BENCH_INIT_RUNS, 10);
const envNames = (process.env.BENCH_ENVS ?? 'dev,staging,prod').split(',').map((name) => name.trim()).filter(Boolean);
const fleetSizes = (process.env.BENCH_FLEETS ?? '5,50').split(',').map((size) => positiveInt(size.trim(), 0)).filter((size) => size > 0);
const requestPathRequests = positiveInt(process.env.BENCH_REQUEST_PATH_REQUESTS, 1000);
const requestPathWarmup = positiveInt(process.env.BENCH_REQUEST_PATH_WARMUP, 300);

// The environment a handler finds on Lambda, as far as its module scope reads it.
const HANDLER_ENV = {
  AWS_REGION: 'us-east-1',
  ROUTES_PARAMETER_PREFIX: '/cdk-ml-patterns/bench/routes/',
  POWERTOOLS_METRICS_NAMESPACE: 'x',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
};

function positiveInt(value, fallback) {
  const parsed = Number.parseInt(value ?? '', 10);
  return Number.isInteger(parsed) && parsed > 0 ? parsed : fallback;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const round = (value, digits) => Number(value.toFixed(digits));
const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
const progress = (message) => process.stderr.write(`${message}\n`);

/** The environment without what an enclosing `npm run` sets for this package. */
function baseEnv(extra = {}) {
  const env = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^npm_(package|lifecycle)_/i.test(key)) env[key] = value;
  }
  return { ...env, ...extra };
}

function run(command, args, options) {
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options });
  if (result.error || result.status !== 0) {
    const output = `${result.stdout ?? ''}${result.stderr ?? ''}`.slice(-6000);
    throw new Error(`${command} ${args.join(' ')} failed (${result.error?.message ?? `exit ${result.status}`}):\n${output}`);
  }
  return result.stdout;
}

function markdownTable(header, rows) {
  const lines = [header, header.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`);
  return lines.join('\n');
}

function gitCommit() {
  const result = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

// --- 1. cdk synth ------------------------------------------------------------------------------

/** One `cdk synth -q` into a fresh output directory; returns its wall time and what it produced. */
function synthOnce(target, scratch) {
  const outdir = mkdtempSync(join(scratch, `${target.id}-`));
  // Telemetry and notices are off so that no run waits on the network; both apps get the same CLI flags.
  const args = ['synth', '-q', '--no-notices', ...target.args, '-o', outdir];
  const start = performance.now();
  run(cdkBin, args, { cwd: target.cwd, env: baseEnv({ CDK_DISABLE_CLI_TELEMETRY: 'true', ...(target.env ?? {}) }), timeout: 900_000 });
  const ms = performance.now() - start;
  const templates = readdirSync(outdir).filter((name) => name.endsWith('.template.json'));
  const resources = templates.reduce(
    (sum, name) => sum + Object.keys(JSON.parse(readFileSync(join(outdir, name), 'utf8')).Resources ?? {}).length,
    0,
  );
  rmSync(outdir, { recursive: true, force: true });
  return { ms, stacks: templates.length, resources };
}

function benchSynth(scratch) {
  const targets = [
    {
      id: 'baseline',
      label: 'one-bucket app',
      cwd: join(benchDir, 'baseline-app'),
      args: ['--app', 'node app.js'],
    },
    ...envNames.map((env) => ({ id: env, label: `blueprint, env=${env}`, cwd: root, args: ['-c', `env=${env}`] })),
    ...fleetSizes.map((size) => ({
      id: `prod-${size}-families`,
      label: `blueprint, prod with ${size} model families`,
      cwd: root,
      args: ['--app', 'node scripts/build-lambdas.mjs --quiet && node -r ./bin/register-ts.cjs bench/fleet-app.ts'],
      env: { FLEET_FAMILIES: String(size) },
    })),
  ];
  const samples = Object.fromEntries(targets.map((target) => [target.id, []]));
  const shape = {};
  // Round-robin so that drift in the machine's load spreads over every target alike; round 0 warms up
  // the file cache and is not counted.
  for (let pass = 0; pass <= synthRuns; pass += 1) {
    for (const target of targets) {
      progress(`synth ${pass === 0 ? "warm-up" : `run ${pass}/${synthRuns}`}: ${target.label}`);
      const result = synthOnce(target, scratch);
      shape[target.id] = { stacks: result.stacks, resources: result.resources };
      if (pass > 0) samples[target.id].push(result.ms);
    }
  }
  const baselineMedian = median(samples.baseline);
  return targets.map((target) => {
    const runsMs = samples[target.id].map((ms) => round(ms, 0));
    const medianMs = round(median(samples[target.id]), 0);
    return {
      id: target.id,
      label: target.label,
      command: `cdk synth -q --no-notices ${target.args.map((arg) => (arg.includes(' ') ? `"${arg}"` : arg)).join(' ')} -o <tmp>`,
      cwd: relative(root, target.cwd) || '.',
      runsMs,
      medianMs,
      ratioToBaseline: round(median(samples[target.id]) / baselineMedian, 2),
      overBaselineMs: round(median(samples[target.id]) - baselineMedian, 0),
      ...shape[target.id],
    };
  });
}

/** One line: how prod synth time grows from the smallest to the largest fleet measured. */
function fleetGrowth(synth) {
  const fleets = synth.filter((target) => /^prod-\d+-families$/.test(target.id)).map((target) => ({ ...target, size: Number(target.id.split('-')[1]) })).sort((a, b) => a.size - b.size);
  if (fleets.length < 2) return [];
  const [small, large] = [fleets[0], fleets[fleets.length - 1]];
  const ratio = large.medianMs / small.medianMs;
  return [
    `**Fleet:** prod with ${large.size} model families synthesizes in ${(large.medianMs / 1000).toFixed(1)} s, ${ratio.toFixed(2)}x the ${(small.medianMs / 1000).toFixed(1)} s of ${small.size} families (${(large.size / small.size).toFixed(0)}x the families; ${(((large.medianMs - small.medianMs) / (large.size - small.size)) / 1000).toFixed(2)} s per family added).`,
    '',
  ];
}

// --- 2. bundle sizes -------------------------------------------------------------------------------

function handlerBundles() {
  const assets = join(root, 'assets', 'lambda');
  return readdirSync(assets, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(assets, entry.name, 'index.js')))
    .map((entry) => ({ name: entry.name, file: join(assets, entry.name, 'index.js') }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

function sizeOf(file) {
  const content = readFileSync(file);
  return { bytes: statSync(file).size, gzipBytes: gzipSync(content, { level: 9 }).length };
}

// --- 3. cold initialisation --------------------------------------------------------------------------

async function bundleBareClient(scratch) {
  const outfile = join(scratch, 'bare-client', 'index.js');
  // A fixed reference, built as the handlers were before the performance budget (the SDK's CommonJS
  // entry points, its whole default credential chain): the cold-start ratios compare against the same
  // thing from one run to the next, whatever scripts/build-lambdas.mjs does to the handlers.
  await build({
    entryPoints: [join(benchDir, 'bare-client.js')],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minify: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
  return outfile;
}

function requireOnce(file) {
  const stdout = run(process.execPath, [join(benchDir, 'measure-require.cjs'), file], {
    cwd: dirname(file),
    env: baseEnv(HANDLER_ENV),
    timeout: 60_000,
  });
  return JSON.parse(stdout.trim().split('\n').pop()).requireMs;
}

function benchColdInit(targets) {
  const samples = Object.fromEntries(targets.map((target) => [target.id, []]));
  for (let i = 0; i < initRuns; i += 1) {
    for (const target of targets) samples[target.id].push(requireOnce(target.file));
  }
  return targets.map((target) => ({
    id: target.id,
    label: target.label,
    file: relative(root, target.file).startsWith('..') ? '<tmp>/bare-client/index.js' : relative(root, target.file),
    runsMs: samples[target.id].map((ms) => round(ms, 1)),
    medianMs: round(median(samples[target.id]), 1),
    minMs: round(Math.min(...samples[target.id]), 1),
    maxMs: round(Math.max(...samples[target.id]), 1),
  }));
}

// --- 4. first invocation of the RAG handlers -----------------------------------------------------------

/** Handlers whose first invocation bench/first-invoke.cjs can run against local stand-ins of their services. */
const FIRST_INVOKE_HANDLERS = ['knn-index', 'ingest-documents', 'rag-query'];

function benchFirstInvoke(handlers) {
  const targets = handlers.filter((handler) => FIRST_INVOKE_HANDLERS.includes(handler.name));
  return targets.map((target) => {
    const runs = [];
    for (let i = 0; i < initRuns; i += 1) {
      const stdout = run(process.execPath, [join(benchDir, 'first-invoke.cjs'), target.name, target.file], { cwd: root, env: baseEnv(), timeout: 60_000 });
      const result = JSON.parse(stdout.trim().split('\n').pop());
      if (result.error) throw new Error(`first invocation of ${target.name} failed: ${result.error}`);
      runs.push(result);
    }
    const requireMs = round(median(runs.map((r) => r.requireMs)), 1);
    const firstInvokeMs = round(median(runs.map((r) => r.firstInvokeMs)), 1);
    return { id: target.name, label: `handler ${target.name}`, requireMs, firstInvokeMs, coldStartMs: round(requireMs + firstInvokeMs, 1) };
  });
}

// --- budget ------------------------------------------------------------------------------------------

/** Handlers whose only dependencies are the AWS SDK, Powertools and zod, and the RAG handlers. */
const SDK_ONLY_HANDLERS = ['analyze-experiment', 'bandit-allocation', 'detect-drift', 'endpoint-weights', 'get-features', 'ingest-features', 'ingest-features-batch', 'invoke', 'load-precomputed', 'record-outcome', 'validate-data'];
const RAG_HANDLERS = ['ingest-documents', 'knn-index', 'rag-query'];
/**
 * Handlers that reach other accounts and regions: federated-round calls S3 (REST-XML), SageMaker and SSM
 * (JSON 1.1) and STS (Query) in each silo, four clients and three protocols where an SDK-only handler has one
 * or two; that alone is about 60 KiB over validate-data's S3 + zod + Powertools.
 */
const CROSS_ACCOUNT_HANDLERS = ['federated-round'];
/**
 * Handlers that keep data in two stores: online-learning validates micro-batches in S3 (REST-XML) with the data
 * validator validate-data ships, and keeps its windows and locks in DynamoDB (JSON 1.0 with transactions): about
 * 40 KiB over validate-data for the second client.
 */
const TWO_STORE_HANDLERS = ['online-learning'];

/** The performance budget: each figure, its target and whether it holds. */
const BUDGET = {
  sdkBundleKiB: 350,
  sdkBundleStretchKiB: 250,
  ragBundleKiB: 500,
  crossAccountBundleKiB: 450,
  twoStoreBundleKiB: 400,
  sdkColdInitRatio: 1.2,
  ragColdInitRatio: 1.5,
  prodSynthRatio: 2.0,
  // Request path (bench/request-path.cjs, budgetFigures there): a cache hit's p50 wall time below the direct
  // InvokeEndpoint call's (ratio < 1), and the CPU the handler's own code adds on a miss below 1 ms: the
  // cache-miss scenario's p50 CPU per request minus the direct call's and minus a bare DynamoDB GetItem +
  // PutItem pair measured in the same run. The shared tier's two SDK calls (about 1-1.5 ms of CPU on a
  // 2-core machine) are in the table, not in this figure: they are the DynamoDB client's cost, not ours.
  requestPathHitRatio: 1.0,
  requestPathMissCpuMs: 1.0,
};

function budgetFigures({ bundles, coldInit, synth }) {
  const figures = [];
  const bundleOf = (id) => bundles.find((bundle) => bundle.id === id);
  const initOf = (id) => coldInit.find((entry) => entry.id === id);
  const bareInit = initOf('bare-client').medianMs;
  const unlisted = bundles.filter((bundle) => bundle.id !== 'bare-client' && ![...SDK_ONLY_HANDLERS, ...RAG_HANDLERS, ...CROSS_ACCOUNT_HANDLERS, ...TWO_STORE_HANDLERS].includes(bundle.id));
  if (unlisted.length > 0) {
    throw new Error(`handler ${unlisted.map((bundle) => bundle.id).join(', ')} has no budget: add it to SDK_ONLY_HANDLERS, RAG_HANDLERS, CROSS_ACCOUNT_HANDLERS or TWO_STORE_HANDLERS in scripts/run-bench.mjs`);
  }
  for (const [group, ids, kib, ratio] of [
    ['SDK-only', SDK_ONLY_HANDLERS, BUDGET.sdkBundleKiB, BUDGET.sdkColdInitRatio],
    ['RAG', RAG_HANDLERS, BUDGET.ragBundleKiB, BUDGET.ragColdInitRatio],
    ['cross-account', CROSS_ACCOUNT_HANDLERS, BUDGET.crossAccountBundleKiB, BUDGET.sdkColdInitRatio],
    ['two-store', TWO_STORE_HANDLERS, BUDGET.twoStoreBundleKiB, BUDGET.sdkColdInitRatio],
  ]) {
    for (const id of ids) {
      const bundle = bundleOf(id);
      if (bundle === undefined) throw new Error(`no bundle for handler ${id}: the budget lists a handler that does not exist`);
      const size = bundle.bytes / 1024;
      figures.push({
        figure: `${id} bundle (${group})`,
        measured: `${size.toFixed(1)} KiB`,
        target: `<= ${kib} KiB${group === 'SDK-only' ? ` (stretch ${BUDGET.sdkBundleStretchKiB})` : ''}`,
        value: round(size, 1),
        limit: kib,
        holds: size <= kib,
        ...(group === 'SDK-only' ? { stretchHolds: size <= BUDGET.sdkBundleStretchKiB } : {}),
      });
    }
    for (const id of ids) {
      const value = initOf(id).medianMs / bareInit;
      figures.push({
        figure: `${id} cold require() vs bare client (${group})`,
        measured: `${value.toFixed(2)}x`,
        target: `<= ${ratio.toFixed(1)}x`,
        value: round(value, 2),
        limit: ratio,
        holds: value <= ratio,
      });
    }
  }
  const prod = synth.find((target) => target.id === 'prod');
  if (prod !== undefined) {
    figures.push({
      figure: 'cdk synth -c env=prod vs one-bucket app',
      measured: `${prod.ratioToBaseline.toFixed(2)}x`,
      target: `<= ${BUDGET.prodSynthRatio.toFixed(1)}x`,
      value: prod.ratioToBaseline,
      limit: BUDGET.prodSynthRatio,
      holds: prod.ratioToBaseline <= BUDGET.prodSynthRatio,
    });
  }
  return figures;
}

// --- report ------------------------------------------------------------------------------------------

async function main() {
  const scratch = mkdtempSync(join(tmpdir(), 'cdk-ml-patterns-bench-'));
  try {
    progress('building the Lambda bundles (scripts/build-lambdas.mjs)');
    run(process.execPath, [join(root, 'scripts', 'build-lambdas.mjs'), '--quiet'], { cwd: root, env: baseEnv() });

    const cpu = cpus();
    const machine = {
      cpu: cpu[0]?.model?.trim() ?? 'unknown',
      cores: cpu.length,
      memoryGiB: round(totalmem() / 1024 ** 3, 1),
      os: `${platform()} ${release()} ${arch()}`,
      node: process.version,
      cdkCli: run(cdkBin, ['--version'], { cwd: root, env: baseEnv({ CDK_DISABLE_CLI_TELEMETRY: 'true' }) }).trim(),
      awsCdkLib: JSON.parse(readFileSync(join(root, 'node_modules', 'aws-cdk-lib', 'package.json'), 'utf8')).version,
    };

    const synth = benchSynth(scratch);

    progress('bundling a bare SageMaker Runtime client for reference');
    const bareClient = await bundleBareClient(scratch);
    const handlers = handlerBundles();
    const bundles = [
      ...handlers.map((handler) => ({ id: handler.name, label: `handler ${handler.name}`, file: relative(root, handler.file), ...sizeOf(handler.file) })),
      { id: 'bare-client', label: 'bare SageMakerRuntimeClient (reference)', file: '<tmp>/bare-client/index.js', ...sizeOf(bareClient) },
    ];

    progress(`cold initialisation: ${initRuns} fresh node processes per bundle`);
    const coldInit = benchColdInit([
      ...handlers.map((handler) => ({ id: handler.name, label: `handler ${handler.name}`, file: handler.file })),
      { id: 'bare-client', label: 'bare SageMakerRuntimeClient (reference)', file: bareClient },
    ]);
    const bareInit = coldInit.find((entry) => entry.id === 'bare-client').medianMs;

    progress(`first invocation of the RAG handlers: ${initRuns} fresh node processes each`);
    const firstInvoke = benchFirstInvoke(handlers);

    progress(`request path of the invoke handler: ${requestPathRequests} requests per scenario after ${requestPathWarmup} warm-up (bench/request-path.cjs)`);
    const requestPathResult = await requestPath.run({ requests: requestPathRequests, warmup: requestPathWarmup });

    const budget = [...budgetFigures({ bundles, coldInit, synth }), ...requestPath.budgetFigures(requestPathResult, BUDGET)];
    const results = {
      generatedAt: new Date().toISOString(),
      commit: gitCommit(),
      machine,
      synth: { measuredRuns: synthRuns, warmUpRuns: 1, statistic: 'median wall time', targets: synth },
      bundles,
      coldInit: { runs: initRuns, statistic: 'median require() time in a fresh node process', env: HANDLER_ENV, targets: coldInit },
      budget: { targets: BUDGET, figures: budget, holds: budget.every((figure) => figure.holds) },
      firstInvoke: { runs: initRuns, statistic: 'median require() and first-invocation times in a fresh node process, services stood in locally', targets: firstInvoke },
      requestPath: requestPathResult,
    };
    const resultsDir = join(benchDir, 'results');
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(join(resultsDir, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);

    const baseline = synth.find((target) => target.id === 'baseline');
    const blueprint = synth.filter((target) => target.id !== 'baseline');
    const report = [
      '# cdk-ml-patterns benchmarks',
      '',
      `${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB; ${machine.os}; Node ${machine.node}; CDK CLI ${machine.cdkCli}; aws-cdk-lib ${machine.awsCdkLib}${results.commit ? `; commit ${results.commit}` : ''}.`,
      '',
      `**Headline:** \`cdk synth\` of the blueprint takes ${blueprint
        .map((target) => `${(target.medianMs / 1000).toFixed(1)} s (${target.id}, ${target.ratioToBaseline.toFixed(1)}x)`)
        .join(', ')} against ${(baseline.medianMs / 1000).toFixed(1)} s for a one-bucket app on the same CLI.`,
      '',
      ...fleetGrowth(synth),
      `## Performance budget: ${budget.filter((figure) => figure.holds).length} of ${budget.length} figures hold`,
      '',
      markdownTable(
        ['figure', 'measured', 'target', 'holds'],
        budget.map((figure) => [figure.figure, figure.measured, figure.target, figure.holds ? 'yes' : '**no**']),
      ),
      '',
      `## cdk synth wall time (median of ${synthRuns}, after 1 warm-up round)`,
      '',
      markdownTable(
        ['app', 'runs (s)', 'median (s)', 'x one-bucket app', 'over one-bucket app (s)', 'stacks', 'resources'],
        synth.map((target) => [
          target.label,
          target.runsMs.map((ms) => (ms / 1000).toFixed(2)).join(', '),
          (target.medianMs / 1000).toFixed(2),
          target.ratioToBaseline.toFixed(2),
          (target.overBaselineMs / 1000).toFixed(2),
          String(target.stacks),
          String(target.resources),
        ]),
      ),
      '',
      'The one-bucket app\'s time is mostly the CLI\'s own start-up and assembly handling, which every app pays; the column over it is what the blueprint adds: its cdk.json app (scripts/build-lambdas.mjs, bin/app.ts compiled by swc through bin/register-ts.cjs), its constructs and the cdk-nag rule packs. Both apps are run by node_modules/.bin/cdk (what `npx cdk` resolves to) with telemetry and notices off.',
      '',
      '## Lambda bundles',
      '',
      markdownTable(
        ['bundle', 'file', 'bytes', 'size', 'gzip -9 bytes', 'gzip -9 size'],
        bundles.map((bundle) => [bundle.label, bundle.file, String(bundle.bytes), kib(bundle.bytes), String(bundle.gzipBytes), kib(bundle.gzipBytes)]),
      ),
      '',
      `## Cold initialisation: require() of the bundle in a fresh node process (median of ${initRuns})`,
      '',
      markdownTable(
        ['bundle', 'median (ms)', 'min (ms)', 'max (ms)', 'x bare client'],
        coldInit.map((entry) => [entry.label, entry.medianMs.toFixed(1), entry.minMs.toFixed(1), entry.maxMs.toFixed(1), (entry.medianMs / bareInit).toFixed(2)]),
      ),
      '',
      `Measured on ${machine.os} with Node ${machine.node}; Lambda runs the handlers on Node.js 24 (arm64), so absolute times there differ. Env: ${Object.entries(HANDLER_ENV)
        .map(([key, value]) => `${key}=${value}`)
        .join(' ')}.`,
      '',
      `## RAG handlers: cold start as require() plus the first invocation (median of ${initRuns})`,
      '',
      markdownTable(
        ['handler', 'require (ms)', 'first invocation (ms)', 'cold start (ms)'],
        firstInvoke.map((entry) => [entry.label, entry.requireMs.toFixed(1), entry.firstInvokeMs.toFixed(1), entry.coldStartMs.toFixed(1)]),
      ),
      '',
      'bench/first-invoke.cjs answers every call (Bedrock Runtime over HTTP/2, Bedrock Agent, S3, OpenSearch, the CloudFormation response URL) from a local stand-in, so the first invocation measures the handler: client set-up, credential resolution, SigV4 signing, parsing and its own logic, not network latency.',
      '',
      ...requestPath.reportLines(requestPathResult),
      `Raw figures: ${relative(root, join(resultsDir, 'latest.json'))}`,
    ];
    console.log(report.join('\n'));
    if (!results.budget.holds) process.exitCode = 1;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

await main();
