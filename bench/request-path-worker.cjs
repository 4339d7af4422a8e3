// The handler process of bench/request-path.cjs: loads the invoke handler's bundle (and, for the reference,
// the SageMaker Runtime client from node_modules), runs every scenario's requests one at a time, as a Lambda
// execution environment serves them, and sends the raw figures to its parent over IPC.
//
// Nothing else runs here: the stand-ins are another process (bench/request-path-stand-ins.cjs) and this
// process's stdout is /dev/null (the handler's INFO logs and EMF documents are still serialised and written,
// as on Lambda, but nobody reads them), so process.cpuUsage() is the handler's and the SDK's CPU.
//
// Per request: wall time from the call to its promise settling (performance.now) and the process's CPU time
// over the same span (process.cpuUsage: user + system, all threads). Each scenario first runs `warmup`
// requests, unmeasured, then `requests` measured ones in `rounds` blocks, the scenarios taking turns block by
// block (in a rotating order) so that a change in the machine's load falls on every scenario alike. Around
// every block the stand-ins' call counts are read, so each scenario's calls are known exactly.
//
// Configuration: BENCH_REQUEST_PATH_CONFIG (JSON: bundle, requests, warmup, rounds, endpoints, scenarios);
// the handler's own variables are set by the parent.
'use strict';
const http = require('node:http');
const { randomUUID } = require('node:crypto');
const { performance } = require('node:perf_hooks');

const config = JSON.parse(process.env.BENCH_REQUEST_PATH_CONFIG ?? 'null');
if (config === null || typeof process.send !== 'function') {
  process.stderr.write('bench/request-path-worker.cjs is started by bench/request-path.cjs\n');
  process.exit(2);
}

const { handler } = require(config.bundle);
const { InvokeEndpointCommand, SageMakerRuntimeClient } = require('@aws-sdk/client-sagemaker-runtime');
const { DynamoDBClient, GetItemCommand, PutItemCommand } = require('@aws-sdk/client-dynamodb');

const direct = new SageMakerRuntimeClient({});
// As lambda/invoke/index.ts builds the prediction cache's client (PREDICTION_CACHE_TIMEOUT_MS at its default).
const dynamodb = new DynamoDBClient({ requestHandler: { requestTimeout: 100, throwOnRequestTimeout: true }, maxAttempts: 1 });
const decoder = new TextDecoder();

/** A small model input; `i` makes each one distinct (so each is a cache miss where the cache is on). */
const payload = (i) => ({ features: [i % 97, (i * 7) % 31, (i * 13) % 17, 0.25, 0.5, 0.75, 1, i], id: `request-${i}` });

/** The API Gateway (REST, proxy) event of POST /models/{model}/predict, as lambda/invoke receives it. */
function predictEvent(model, body) {
  const text = JSON.stringify(body);
  return {
    resource: '/models/{model}/predict',
    path: `/models/${model}/predict`,
    httpMethod: 'POST',
    headers: { 'content-type': 'application/json' },
    multiValueHeaders: { 'content-type': ['application/json'] },
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: { model },
    stageVariables: null,
    requestContext: { requestId: 'bench' },
    body: text,
    isBase64Encoded: false,
  };
}

/**
 * Each scenario: `prepare(total)` builds its inputs before anything is timed; `call(i)` is the timed part;
 * `check(answer, i)` (untimed) returns undefined when the answer is what the scenario is about, or what is wrong.
 */
function scenario(spec, total) {
  switch (spec.kind) {
    case 'direct': {
      const bodies = Array.from({ length: total }, (_, i) => JSON.stringify(payload(i)));
      return {
        // The same call the handler makes (body, types, an inference id), and the answer decoded as it does.
        call: async (i) => {
          const output = await direct.send(new InvokeEndpointCommand({ EndpointName: spec.endpointName, Body: bodies[i], ContentType: 'application/json', Accept: 'application/json', InferenceId: randomUUID() }));
          return JSON.parse(decoder.decode(output.Body));
        },
        check: (answer) => (typeof answer?.predictions?.[0]?.score === 'number' ? undefined : `unexpected answer ${JSON.stringify(answer)}`),
        outcome: () => 'answered',
      };
    }
    case 'dynamodb': {
      // The shared tier's calls on a miss (lambda/invoke/cache-store.ts): a GetItem that finds nothing, then
      // the PutItem of the answer, for a key of the same shape (64 hex characters).
      const keys = Array.from({ length: total }, (_, i) => String(i).padStart(64, '0'));
      const answer = JSON.stringify({ predictions: [{ score: 0.7 }] });
      return {
        call: async (i) => {
          const found = await dynamodb.send(new GetItemCommand({ TableName: spec.tableName, Key: { pk: { S: keys[i] } } }));
          const now = Date.now();
          await dynamodb.send(
            new PutItemCommand({
              TableName: spec.tableName,
              Item: {
                pk: { S: keys[i] },
                body: { S: answer },
                contentType: { S: 'application/json' },
                variant: { S: 'AllTraffic' },
                modelVersion: { S: 'miss-1' },
                cachedAt: { N: String(now) },
                expiresAt: { N: String(now + 3_600_000) },
                ttl: { N: String(Math.ceil((now + 3_600_000) / 1000)) },
              },
            }),
          );
          return found;
        },
        check: (found) => (found?.Item === undefined ? undefined : 'GetItem found an item'),
        outcome: () => 'missed and stored',
      };
    }
    case 'handler': {
      const events = spec.samePayload ? [predictEvent(spec.model, { payload: payload(0) })] : Array.from({ length: total }, (_, i) => predictEvent(spec.model, { payload: payload(i) }));
      return {
        call: (i) => handler(events[spec.samePayload ? 0 : i]),
        check: (response, i) => {
          if (response?.statusCode !== 200) return `status ${response?.statusCode}: ${response?.body}`;
          const body = JSON.parse(response.body);
          const expected = i === 0 ? (spec.firstCache ?? spec.cache) : spec.cache;
          if (body.cache !== expected) return `cache ${JSON.stringify(body.cache)}, expected ${JSON.stringify(expected)}`;
          if (spec.ensemble !== undefined) {
            if (body.composite !== 'ensemble' || body.members?.length !== spec.ensemble.members || body.members.some((member) => member.status !== 'answered')) return `ensemble answered ${response.body}`;
            if (Math.abs(body.prediction - spec.ensemble.prediction) > 1e-9) return `ensemble prediction ${body.prediction}, expected ${spec.ensemble.prediction}`;
          }
          return undefined;
        },
        outcome: (response) => {
          const body = JSON.parse(response.body);
          return `${response.statusCode}${body.cache === undefined ? '' : ` ${body.cache}`}`;
        },
      };
    }
    default:
      throw new Error(`unknown scenario kind ${spec.kind}`);
  }
}

function readCounts() {
  return new Promise((resolve, reject) => {
    http
      .get(`${config.endpoints.control}/counts`, { agent: false }, (res) => {
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8'))));
      })
      .on('error', reject);
  });
}

/** after - before, for every number in the (nested) counts; adds it into `into`. */
function addDifference(into, after, before) {
  for (const [key, value] of Object.entries(after)) {
    if (typeof value === 'number') {
      const delta = value - (typeof before?.[key] === 'number' ? before[key] : 0);
      if (delta !== 0 || key in into) into[key] = (into[key] ?? 0) + delta;
    } else {
      into[key] ??= {};
      addDifference(into[key], value, before?.[key]);
    }
  }
  return into;
}

async function main() {
  const { requests, warmup, rounds } = config;
  const total = warmup + requests;
  const states = config.scenarios.map((spec) => ({
    spec,
    run: scenario(spec, total),
    next: 0,
    wallMs: [],
    cpuUs: [],
    calls: {},
    outcomes: {},
    failures: 0,
    firstFailure: undefined,
  }));

  /** Runs `count` requests of a scenario; timed ones are recorded. */
  async function block(state, count, timed) {
    const before = await readCounts();
    for (let k = 0; k < count; k += 1) {
      const i = state.next;
      state.next += 1;
      let answer;
      let problem;
      const cpuStart = process.cpuUsage();
      const start = performance.now();
      try {
        answer = await state.run.call(i);
      } catch (error) {
        problem = `threw ${error?.name}: ${error?.message}`;
      }
      const wallMs = performance.now() - start;
      const cpu = process.cpuUsage(cpuStart);
      problem ??= state.run.check(answer, i);
      if (problem !== undefined) {
        state.failures += 1;
        state.firstFailure ??= `request ${i}: ${problem}`;
      }
      if (timed) {
        state.wallMs.push(wallMs);
        state.cpuUs.push(cpu.user + cpu.system);
        const outcome = problem === undefined ? state.run.outcome(answer) : 'failed';
        state.outcomes[outcome] = (state.outcomes[outcome] ?? 0) + 1;
      }
    }
    addDifference(state.calls, await readCounts(), before);
  }

  const started = performance.now();
  for (const state of states) await block(state, warmup, false);
  for (let round = 0; round < rounds; round += 1) {
    const size = Math.floor(requests / rounds) + (round < requests % rounds ? 1 : 0);
    for (let s = 0; s < states.length; s += 1) await block(states[(s + round) % states.length], size, true);
  }
  const elapsedMs = performance.now() - started;

  const result = {
    elapsedMs,
    memory: process.memoryUsage().rss,
    scenarios: states.map((state) => ({
      id: state.spec.id,
      requests: state.next,
      wallMs: state.wallMs,
      cpuUs: state.cpuUs,
      calls: state.calls,
      outcomes: state.outcomes,
      failures: state.failures,
      ...(state.firstFailure === undefined ? {} : { firstFailure: state.firstFailure }),
    })),
  };
  // Kept-alive connections of the clients would hold the process open: leave once the result is sent.
  process.send(result, () => process.exit(0));
}

main().catch((error) => {
  process.stderr.write(`${error?.stack ?? error}\n`);
  process.exit(1);
});
