import fc from 'fast-check';
import {
  classifySageMakerError,
  composeBackend,
  ConfigError,
  errorResponse,
  handlePrediction,
  isJsonContentType,
  loadRoutingTable,
  MAX_REQUEST_BODY_BYTES,
  parseRequest,
  predict,
  PredictRequestSchema,
  RequestError,
  resolveRoute,
  sageMakerBackend,
  toHttpResponse,
  UpstreamError,
  type InferenceBackend,
  type InferenceMiddleware,
  type ModelInvocation,
  type ModelRoute,
  type ModelResult,
  type PredictRequest,
  type ResolvedRoute,
  type RoutingTable,
} from '../../../lambda/shared/inference';
import { catchError } from '../../support/assertions';

const table: RoutingTable = {
  churn: {
    endpointName: 'churn-endpoint',
    variants: { blue: { modelVersion: '3' }, green: { modelVersion: '4' } },
  },
  fraud: {
    endpointName: 'fraud-endpoint',
    variants: { AllTraffic: { modelVersion: '2024-06-01' } },
  },
};

const validVariantName = fc.stringMatching(/^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/);
const validInferenceId = fc.stringMatching(/^[A-Za-z0-9\-_.]{1,64}$/);

function requestOf(overrides: Partial<PredictRequest> = {}): PredictRequest {
  return { payload: { x: 1 }, contentType: 'application/json', accept: 'application/json', ...overrides };
}

function recordingBackend(result: ModelResult = { body: '{"score":0.5}', contentType: 'application/json', invokedVariant: 'blue' }): {
  backend: InferenceBackend;
  calls: ModelInvocation[];
} {
  const calls: ModelInvocation[] = [];
  return {
    calls,
    backend: async (invocation) => {
      calls.push(invocation);
      return result;
    },
  };
}


describe('parseRequest', () => {
  it('applies application/json as the default content type and accept', () => {
    expect(parseRequest('{"payload":{"features":[1,2,3]}}')).toEqual({
      payload: { features: [1, 2, 3] },
      contentType: 'application/json',
      accept: 'application/json',
    });
  });

  it('accepts a CSV string payload with a target variant and inference id', () => {
    const request = parseRequest(
      JSON.stringify({ payload: '1,2,3\n4,5,6', contentType: 'text/csv', accept: 'text/csv', targetVariant: 'blue', inferenceId: 'req-1.a_b' }),
    );
    expect(request).toEqual({
      payload: '1,2,3\n4,5,6',
      contentType: 'text/csv',
      accept: 'text/csv',
      targetVariant: 'blue',
      inferenceId: 'req-1.a_b',
    });
  });

  it('accepts null and scalars as JSON payloads', () => {
    expect(parseRequest('{"payload":null}').payload).toBeNull();
    expect(parseRequest('{"payload":"text"}').payload).toBe('text');
  });

  it('rejects a missing, null or empty body naming body', () => {
    for (const body of [undefined, null, '']) {
      const error = catchError(() => parseRequest(body));
      expect(error).toBeInstanceOf(RequestError);
      expect(error).toMatchObject({ status: 400, field: 'body' });
      expect((error as Error).message).toMatch(/^body: is required/);
    }
  });

  it('rejects malformed JSON with "body: must be valid JSON"', () => {
    expect(() => parseRequest('{"payload":')).toThrow(new RequestError(400, 'body: must be valid JSON'));
  });

  it('rejects a JSON body that is not an object naming body', () => {
    expect(() => parseRequest('[1,2]')).toThrow(/^body: Invalid input: expected object, received array$/);
  });

  it('rejects a request without payload naming payload', () => {
    const error = catchError(() => parseRequest('{"contentType":"application/json"}'));
    expect(error).toMatchObject({ status: 400, field: 'payload', message: 'payload: is required' });
  });

  it('rejects unknown fields naming them', () => {
    const error = catchError(() => parseRequest('{"payload":1,"modle":"x"}'));
    expect(error).toMatchObject({ status: 400, field: 'modle', message: 'modle: unknown field' });
  });

  it('rejects an unsupported content type naming contentType', () => {
    expect(() => parseRequest('{"payload":1,"contentType":"application/xml"}')).toThrow(/^contentType: Invalid content type/);
    expect(() => parseRequest('{"payload":1,"accept":"image/png"}')).toThrow(/^accept: Invalid content type/);
  });

  it('rejects a CSV request whose payload is not a string naming payload', () => {
    const error = catchError(() => parseRequest('{"payload":[1,2],"contentType":"text/csv"}'));
    expect(error).toMatchObject({ status: 400, field: 'payload', message: 'payload: must be a string when contentType is text/csv' });
  });

  it.each(['-blue', 'blue-', 'blue_green', 'a'.repeat(64), '', 'bl ue'])('rejects the invalid variant name %j naming targetVariant', (name) => {
    const error = catchError(() => parseRequest(JSON.stringify({ payload: 1, targetVariant: name })));
    expect(error).toMatchObject({ status: 400, field: 'targetVariant' });
    expect((error as Error).message).toMatch(/^targetVariant: Invalid variant name/);
  });

  it.each(['', 'a'.repeat(65), 'has space', 'semi;colon'])('rejects the invalid inference id %j naming inferenceId', (id) => {
    expect(() => parseRequest(JSON.stringify({ payload: 1, inferenceId: id }))).toThrow(/^inferenceId: Invalid inference id/);
  });

  it('rejects a non-string target variant naming targetVariant', () => {
    expect(() => parseRequest('{"payload":1,"targetVariant":7}')).toThrow(/^targetVariant: Invalid variant name: expected a string/);
  });

  it('reports every invalid field, separated by semicolons', () => {
    expect(() => parseRequest('{"payload":1,"contentType":"x","targetVariant":"-"}')).toThrow(/^contentType: .*; targetVariant: /);
  });

  it('decodes a base64-encoded body', () => {
    const body = Buffer.from('{"payload":{"é":1}}', 'utf8').toString('base64');
    expect(parseRequest(body, true).payload).toEqual({ é: 1 });
  });

  it('rejects a base64 body that is not UTF-8 naming body', () => {
    const body = Buffer.from([0xff, 0xfe, 0xfd]).toString('base64');
    expect(() => parseRequest(body, true)).toThrow(/^body: must be UTF-8 encoded JSON$/);
  });

  it('accepts a body of exactly the size limit and rejects one byte more with 413', () => {
    const envelope = '{"payload":""}';
    const atLimit = `{"payload":"${'a'.repeat(MAX_REQUEST_BODY_BYTES - envelope.length)}"}`;
    expect(Buffer.byteLength(atLimit)).toBe(MAX_REQUEST_BODY_BYTES);
    expect(() => parseRequest(atLimit)).not.toThrow();

    const overLimit = `{"payload":"${'a'.repeat(MAX_REQUEST_BODY_BYTES - envelope.length + 1)}"}`;
    const error = catchError(() => parseRequest(overLimit));
    expect(error).toMatchObject({ status: 413, code: 'PayloadTooLarge', field: 'body' });
    expect((error as Error).message).toMatch(/^body: exceeds the 5 MB limit/);
  });

  it('measures the size limit in UTF-8 bytes, not characters', () => {
    const envelope = '{"payload":""}';
    const chars = Math.floor((MAX_REQUEST_BODY_BYTES - envelope.length) / 2) + 1;
    const body = `{"payload":"${'é'.repeat(chars)}"}`;
    expect(body.length).toBeLessThan(MAX_REQUEST_BODY_BYTES);
    expect(() => parseRequest(body)).toThrow(expect.objectContaining({ status: 413 }));
  });

  it('applies the size limit to the decoded size of a base64 body', () => {
    const big = Buffer.alloc(MAX_REQUEST_BODY_BYTES + 1, 'a').toString('base64');
    expect(() => parseRequest(big, true)).toThrow(expect.objectContaining({ status: 413 }));
  });

  it('never throws anything but a RequestError for arbitrary strings', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.json()), fc.boolean(), (raw, base64) => {
        try {
          parseRequest(raw, base64);
        } catch (error) {
          expect(error).toBeInstanceOf(RequestError);
          expect([400, 413]).toContain((error as RequestError).status);
          expect((error as RequestError).message).toMatch(/^[A-Za-z_.,\s[\]0-9$-]+: /);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('never throws anything but a RequestError for arbitrary JSON objects', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.constantFrom('payload', 'contentType', 'accept', 'targetVariant', 'inferenceId', 'other'), fc.jsonValue()),
        (body) => {
          try {
            parseRequest(JSON.stringify(body));
          } catch (error) {
            expect(error).toBeInstanceOf(RequestError);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('round-trips every valid request', () => {
    const validRequest = fc.oneof(
      fc.record(
        {
          payload: fc.jsonValue(),
          contentType: fc.constant('application/json' as const),
          accept: fc.constantFrom('application/json' as const, 'text/csv' as const),
          targetVariant: validVariantName,
          inferenceId: validInferenceId,
        },
        { requiredKeys: ['payload'] },
      ),
      fc.record(
        {
          payload: fc.string(),
          contentType: fc.constant('text/csv' as const),
          accept: fc.constantFrom('application/json' as const, 'text/csv' as const),
          targetVariant: validVariantName,
          inferenceId: validInferenceId,
        },
        { requiredKeys: ['payload', 'contentType'] },
      ),
    );
    fc.assert(
      fc.property(validRequest, fc.boolean(), (request, base64) => {
        const raw = JSON.stringify(request);
        const parsed = parseRequest(base64 ? Buffer.from(raw, 'utf8').toString('base64') : raw, base64);
        // Compare through JSON so -0 and 0 (indistinguishable on the wire) are equal.
        expect(JSON.stringify(parsed.payload)).toBe(JSON.stringify(request.payload));
        expect(parsed.contentType).toBe(request.contentType ?? 'application/json');
        expect(parsed.accept).toBe(request.accept ?? 'application/json');
        expect(parsed.targetVariant).toBe(request.targetVariant);
        expect(parsed.inferenceId).toBe(request.inferenceId);
        expect(PredictRequestSchema.safeParse(parsed).success).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe('loadRoutingTable', () => {
  it('parses a valid MODEL_ROUTES value', () => {
    expect(loadRoutingTable(JSON.stringify(table))).toEqual(table);
  });

  it('ignores unknown route fields so the table can grow', () => {
    const raw = JSON.stringify({ m: { endpointName: 'e', variants: { v: { modelVersion: '1', instanceType: 'ml.m5.large' } }, description: 'x' } });
    expect(loadRoutingTable(raw)).toEqual({ m: { endpointName: 'e', variants: { v: { modelVersion: '1' } } } });
  });

  it.each([
    [undefined, 'MODEL_ROUTES: is not set'],
    ['  ', 'MODEL_ROUTES: is not set'],
    ['{', 'MODEL_ROUTES: is not valid JSON'],
    ['{}', 'MODEL_ROUTES: (root): must define at least one model'],
    ['[]', 'MODEL_ROUTES: (root): Invalid input: expected record, received array'],
    ['{"m":{"endpointName":"e","variants":{}}}', 'MODEL_ROUTES: m.variants: must define at least one variant'],
    ['{"m":{"endpointName":"e","variants":{"v":{}}}}', 'MODEL_ROUTES: m.variants.v.modelVersion: Invalid input: expected string, received undefined'],
    ['{"m":{"endpointName":"bad_name","variants":{"v":{"modelVersion":"1"}}}}', 'MODEL_ROUTES: m.endpointName: Invalid endpoint name'],
    ['{"m":{"endpointName":"e","variants":{"bad_variant":{"modelVersion":"1"}}}}', 'MODEL_ROUTES: m.variants.bad_variant: invalid key: Invalid variant name'],
  ])('rejects %j with a ConfigError naming the path', (raw, message) => {
    const error = catchError(() => loadRoutingTable(raw));
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).status).toBe(500);
    expect((error as Error).message.startsWith(message)).toBe(true);
  });
});

describe('resolveRoute', () => {
  it('resolves a known model and keeps the requested variant', () => {
    expect(resolveRoute(table, 'churn', 'green')).toEqual({
      model: 'churn',
      endpointName: 'churn-endpoint',
      targetVariant: 'green',
      variants: (table.churn as ModelRoute).variants,
    });
    expect(resolveRoute(table, 'fraud')).not.toHaveProperty('targetVariant');
  });

  it('answers 404 for an unknown model, listing the known models', () => {
    const error = catchError(() => resolveRoute(table, 'nope'));
    expect(error).toMatchObject({ status: 404, code: 'NotFound', field: 'model', message: 'model: unknown model "nope"; known models: churn, fraud' });
  });

  it('answers 400 for an unknown variant, naming it and listing the variants', () => {
    const error = catchError(() => resolveRoute(table, 'churn', 'red'));
    expect(error).toMatchObject({
      status: 400,
      field: 'targetVariant',
      message: 'targetVariant: unknown variant "red" for model "churn"; variants: blue, green',
    });
  });

  it.each(['__proto__', 'constructor', 'toString', 'hasOwnProperty'])('does not resolve the inherited property %s as a model or variant', (name) => {
    expect(() => resolveRoute(table, name)).toThrow(expect.objectContaining({ status: 404 }));
    expect(() => resolveRoute(table, 'churn', name)).toThrow(expect.objectContaining({ status: 400 }));
  });

  it('always names the field in its errors', () => {
    fc.assert(
      fc.property(fc.string(), fc.option(fc.string(), { nil: undefined }), (model, variant) => {
        try {
          const route = resolveRoute(table, model, variant);
          expect(Object.keys(table)).toContain(route.model);
        } catch (error) {
          expect(error).toBeInstanceOf(RequestError);
          const requestError = error as RequestError;
          if (requestError.status === 404) {
            expect(requestError.message).toBe(`model: unknown model ${JSON.stringify(model)}; known models: churn, fraud`);
          } else {
            expect(requestError.status).toBe(400);
            expect(requestError.message.startsWith(`targetVariant: unknown variant ${JSON.stringify(variant)}`)).toBe(true);
          }
        }
      }),
    );
  });
});

describe('predict', () => {
  const churn = resolveRoute(table, 'churn');
  const ids = () => 'generated-id';

  it('sends the JSON-serialised payload and returns the parsed prediction with the invoked variant and its model version', async () => {
    const { backend, calls } = recordingBackend();
    const result = await predict(requestOf({ payload: { features: [1, 2] } }), churn, backend, ids);
    expect(calls).toEqual([
      { endpointName: 'churn-endpoint', body: '{"features":[1,2]}', contentType: 'application/json', accept: 'application/json', inferenceId: 'generated-id' },
    ]);
    expect(result).toEqual({
      predictionId: 'generated-id',
      model: 'churn',
      variant: 'blue',
      modelVersion: '3',
      prediction: { score: 0.5 },
      contentType: 'application/json',
    });
  });

  it('sends a CSV payload verbatim', async () => {
    const { backend, calls } = recordingBackend({ body: '0.1\n0.9', contentType: 'text/csv; charset=utf-8', invokedVariant: 'green' });
    const result = await predict(requestOf({ payload: '1,2\n3,4', contentType: 'text/csv', accept: 'text/csv' }), churn, backend, ids);
    expect(calls[0]).toMatchObject({ body: '1,2\n3,4', contentType: 'text/csv', accept: 'text/csv' });
    expect(result).toMatchObject({ prediction: '0.1\n0.9', contentType: 'text/csv; charset=utf-8', variant: 'green', modelVersion: '4' });
  });

  it('JSON-encodes a string payload sent as application/json', async () => {
    const { backend, calls } = recordingBackend();
    await predict(requestOf({ payload: 'hello' }), churn, backend, ids);
    expect(calls[0]!.body).toBe('"hello"');
  });

  it('uses the caller inference id as prediction id and forwards the target variant', async () => {
    const { backend, calls } = recordingBackend({ body: '{}', contentType: 'application/json', invokedVariant: 'green' });
    const generate = jest.fn(ids);
    const result = await predict(requestOf({ inferenceId: 'mine', targetVariant: 'green' }), resolveRoute(table, 'churn', 'green'), backend, generate);
    expect(calls[0]).toMatchObject({ inferenceId: 'mine', targetVariant: 'green' });
    expect(result.predictionId).toBe('mine');
    expect(generate).not.toHaveBeenCalled();
  });

  it("reports modelVersion 'unknown' when SageMaker names a variant the route does not know", async () => {
    const { backend } = recordingBackend({ body: '1', contentType: 'application/json', invokedVariant: 'shadow' });
    expect(await predict(requestOf(), churn, backend, ids)).toMatchObject({ variant: 'shadow', modelVersion: 'unknown' });
  });

  it('falls back to the target variant, then to a sole variant, when SageMaker does not name one', async () => {
    const { backend } = recordingBackend({ body: '1', contentType: 'application/json' });
    expect(await predict(requestOf({ targetVariant: 'green' }), churn, backend, ids)).toMatchObject({ variant: 'green', modelVersion: '4' });
    expect(await predict(requestOf(), resolveRoute(table, 'fraud'), backend, ids)).toMatchObject({ variant: 'AllTraffic', modelVersion: '2024-06-01' });
    expect(await predict(requestOf(), churn, backend, ids)).toMatchObject({ variant: 'unknown', modelVersion: 'unknown' });
  });

  it('returns the raw text when a JSON response does not parse', async () => {
    const { backend } = recordingBackend({ body: 'not json', contentType: 'application/json', invokedVariant: 'blue' });
    expect((await predict(requestOf(), churn, backend, ids)).prediction).toBe('not json');
  });

  it('parses the response according to accept when SageMaker omits the content type', async () => {
    const { backend } = recordingBackend({ body: '[1]', invokedVariant: 'blue' });
    expect(await predict(requestOf(), churn, backend, ids)).toMatchObject({ prediction: [1], contentType: 'application/json' });
    expect(await predict(requestOf({ accept: 'text/csv' }), churn, backend, ids)).toMatchObject({ prediction: '[1]', contentType: 'text/csv' });
  });

  it('rethrows backend failures as UpstreamErrors carrying the prediction id', async () => {
    const backend: InferenceBackend = async () => {
      throw Object.assign(new Error('boom'), { name: 'ServiceUnavailable' });
    };
    const error = await predict(requestOf(), churn, backend, ids).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error).toMatchObject({ status: 503, code: 'ServiceUnavailable', predictionId: 'generated-id' });
    expect((error as UpstreamError).toBody()).toEqual({ error: 'ServiceUnavailable', message: 'SageMaker is temporarily unavailable; retry later: boom', predictionId: 'generated-id' });
  });

  it('lets a RequestError thrown by a middleware through unchanged', async () => {
    const refuse: InferenceMiddleware = () => async () => {
      throw new RequestError(400, 'payload: rejected by stage one', 'payload');
    };
    const { backend } = recordingBackend();
    await expect(predict(requestOf(), churn, composeBackend(backend, refuse), ids)).rejects.toMatchObject({ status: 400, message: 'payload: rejected by stage one' });
  });

  it('answers 400 instead of crashing when the payload is too deeply nested to serialise', async () => {
    const { backend } = recordingBackend();
    const deep = JSON.parse(`${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}`) as unknown;
    await expect(predict(requestOf({ payload: deep }), churn, backend, ids)).rejects.toMatchObject({ status: 400, field: 'payload' });
  });
});

describe('isJsonContentType', () => {
  it.each([
    ['application/json', true],
    ['Application/JSON; charset=utf-8', true],
    ['application/vnd.api+json', true],
    ['application/jsonlines', false],
    ['text/csv', false],
    ['text/json', false],
  ])('classifies %s as JSON: %s', (contentType, expected) => {
    expect(isJsonContentType(contentType)).toBe(expected);
  });
});

describe('composeBackend', () => {
  it('returns the backend itself when there are no middlewares', () => {
    const { backend } = recordingBackend();
    expect(composeBackend(backend)).toBe(backend);
  });

  it('runs middlewares outermost-first on the way in and in reverse on the way out', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.string({ minLength: 1, maxLength: 5 }), { maxLength: 8 }), async (labels) => {
        const trace: string[] = [];
        const middlewares = labels.map<InferenceMiddleware>((label) => (next) => async (invocation) => {
          trace.push(`in:${label}`);
          const result = await next(invocation);
          trace.push(`out:${label}`);
          return { ...result, body: `${result.body}|${label}` };
        });
        const backend: InferenceBackend = async () => {
          trace.push('backend');
          return { body: 'b' };
        };
        const result = await composeBackend(backend, ...middlewares)({
          endpointName: 'e',
          body: '',
          contentType: 'application/json',
          accept: 'application/json',
          inferenceId: 'i',
        });
        expect(trace).toEqual([...labels.map((l) => `in:${l}`), 'backend', ...[...labels].reverse().map((l) => `out:${l}`)]);
        expect(result.body).toBe(['b', ...[...labels].reverse()].join('|'));
      }),
    );
  });

  it('lets a middleware short-circuit the model call, as a cache would', async () => {
    const { backend, calls } = recordingBackend();
    const cache: InferenceMiddleware = (next) => async (invocation) =>
      invocation.inferenceId === 'cached' ? { body: '"hit"', contentType: 'application/json', invokedVariant: 'blue' } : next(invocation);
    const composed = composeBackend(backend, cache);
    const result = await predict(requestOf({ inferenceId: 'cached' }), resolveRoute(table, 'churn'), composed, () => 'x');
    expect(result.prediction).toBe('hit');
    expect(calls).toHaveLength(0);
  });
});

describe('classifySageMakerError', () => {
  function sdkError(name: string, fields: Record<string, unknown> = {}): Error {
    return Object.assign(new Error(typeof fields.message === 'string' ? fields.message : `${name} happened`), { name, $fault: 'server', $metadata: {} }, fields);
  }

  it('maps ModelError to 502 including the original status and message', () => {
    const error = classifySageMakerError(
      sdkError('ModelError', { Message: 'Received server error (500) from primary', OriginalStatusCode: 500, OriginalMessage: 'division by zero' }),
    );
    expect(error).toMatchObject({ status: 502, code: 'ModelError', message: 'the model container returned an error (status 500): division by zero' });
  });

  it('maps ModelError without details to 502 with the SageMaker message', () => {
    expect(classifySageMakerError(sdkError('ModelError', { message: 'model failed' }))).toMatchObject({
      status: 502,
      message: 'the model container returned an error: model failed',
    });
  });

  it.each([
    ['ModelNotReadyException', 503, 'ModelNotReady'],
    ['ServiceUnavailable', 503, 'ServiceUnavailable'],
    ['InternalFailure', 502, 'InternalFailure'],
    ['InternalDependencyException', 502, 'InternalDependencyFailure'],
    ['ThrottlingException', 429, 'Throttled'],
    ['TimeoutError', 504, 'Timeout'],
    ['AbortError', 504, 'Timeout'],
    ['AccessDeniedException', 502, 'UpstreamFailure'],
  ])('maps %s to %i %s', (name, status, code) => {
    expect(classifySageMakerError(sdkError(name))).toMatchObject({ status, code });
  });

  it('maps ValidationError to 502 "endpoint rejected the request" with the reason', () => {
    expect(classifySageMakerError(sdkError('ValidationError', { message: 'Endpoint x of account 1 not found.' }))).toMatchObject({
      status: 502,
      code: 'EndpointRejectedRequest',
      message: 'endpoint rejected the request: Endpoint x of account 1 not found.',
    });
  });

  it('maps refused connections to 503 and socket timeouts to 504', () => {
    expect(classifySageMakerError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }))).toMatchObject({
      status: 503,
      code: 'EndpointUnreachable',
      message: 'could not reach the model endpoint (ECONNREFUSED)',
    });
    const aggregate = new AggregateError([Object.assign(new Error('a'), { code: 'ECONNREFUSED' })], 'connect failed');
    expect(classifySageMakerError(aggregate)).toMatchObject({ status: 503 });
    expect(classifySageMakerError(new Error('wrapped', { cause: Object.assign(new Error('x'), { code: 'ENOTFOUND' }) }))).toMatchObject({ status: 503 });
    expect(classifySageMakerError(Object.assign(new Error('t'), { code: 'ETIMEDOUT' }))).toMatchObject({ status: 504 });
  });

  it('recognises a network error code that a wrapper kept only in the message', () => {
    // What the SDK's retry middleware makes of an error from another realm (as under Jest).
    const wrapped = new Error('AWS SDK error wrapper for Error: connect ECONNREFUSED 127.0.0.1:9');
    expect(classifySageMakerError(wrapped)).toMatchObject({ status: 503, code: 'EndpointUnreachable' });
  });

  it('maps unknown errors to a generic 502 without their message', () => {
    const error = classifySageMakerError(new TypeError('secret internal detail'));
    expect(error).toMatchObject({ status: 502, code: 'UpstreamFailure', message: 'the model invocation failed (TypeError)' });
  });

  it('passes an UpstreamError through unchanged', () => {
    const original = new UpstreamError(503, 'CircuitOpen', 'circuit open');
    expect(classifySageMakerError(original)).toBe(original);
  });

  it('keeps the original error as cause for logging', () => {
    const original = sdkError('ServiceUnavailable');
    expect(classifySageMakerError(original).cause).toBe(original);
  });

  it('never copies stack frames into the message', () => {
    const error = classifySageMakerError(
      sdkError('ValidationError', { message: 'first line\n    at Object.<anonymous> (/var/task/index.js:1:1)\n    at node:internal' }),
    );
    expect(error.message).toBe('endpoint rejected the request: first line');
  });

  it('truncates very long messages', () => {
    const error = classifySageMakerError(sdkError('ValidationError', { message: 'x'.repeat(10_000) }));
    expect(error.message.length).toBeLessThan(600);
  });

  it('always yields a 429 or 5xx UpstreamError for arbitrary thrown values', () => {
    const knownName = fc.constantFrom(
      'ModelError',
      'ModelNotReadyException',
      'ServiceUnavailable',
      'InternalFailure',
      'InternalDependencyException',
      'ThrottlingException',
      'ValidationError',
      'TimeoutError',
      'Error',
    );
    const errorLike = fc.record(
      {
        name: fc.oneof(knownName, fc.string(), fc.anything()),
        message: fc.oneof(fc.string(), fc.anything()),
        Message: fc.oneof(fc.string(), fc.anything()),
        code: fc.oneof(fc.constantFrom('ECONNREFUSED', 'ETIMEDOUT', 'ECONNRESET'), fc.anything()),
        OriginalStatusCode: fc.anything(),
        OriginalMessage: fc.anything(),
        errors: fc.anything(),
        cause: fc.anything(),
        stack: fc.string(),
      },
      { requiredKeys: [] },
    );
    const throwingGetter = fc.constant(
      Object.defineProperty({}, 'name', {
        get() {
          throw new Error('getter');
        },
      }),
    );
    fc.assert(
      fc.property(fc.oneof(fc.anything(), errorLike, throwingGetter), (thrown) => {
        const error = classifySageMakerError(thrown);
        expect(error).toBeInstanceOf(UpstreamError);
        expect([429, 502, 503, 504]).toContain(error.status);
        expect(error.message.length).toBeGreaterThan(0);
        expect(error.message).not.toMatch(/\n\s+at /);
        expect(() => JSON.stringify(error.toBody())).not.toThrow();
      }),
      { numRuns: 500 },
    );
  });
});

describe('sageMakerBackend', () => {
  it('maps an invocation to InvokeEndpoint input and decodes the response body', async () => {
    const invoke = jest.fn(async () => ({
      Body: new TextEncoder().encode('{"y":1}'),
      ContentType: 'application/json',
      InvokedProductionVariant: 'blue',
    }));
    const backend = sageMakerBackend(invoke);
    const result = await backend({
      endpointName: 'ep',
      body: '{}',
      contentType: 'application/json',
      accept: 'text/csv',
      inferenceId: 'id-1',
      targetVariant: 'blue',
    });
    expect(invoke).toHaveBeenCalledWith({ EndpointName: 'ep', Body: '{}', ContentType: 'application/json', Accept: 'text/csv', InferenceId: 'id-1', TargetVariant: 'blue' }, undefined);
    expect(result).toEqual({ body: '{"y":1}', contentType: 'application/json', invokedVariant: 'blue' });
  });

  it('omits TargetVariant when none was requested and tolerates an empty response', async () => {
    const invoke = jest.fn(async () => ({}));
    const result = await sageMakerBackend(invoke)({ endpointName: 'ep', body: '', contentType: 'text/csv', accept: 'text/csv', inferenceId: 'i' });
    expect(invoke.mock.calls[0]).toEqual([expect.not.objectContaining({ TargetVariant: expect.anything() })]);
    expect(result).toEqual({ body: '' });
  });

  it('throws classified UpstreamErrors so middlewares see HTTP-ready failures', async () => {
    const backend = sageMakerBackend(async () => {
      throw Object.assign(new Error('slow down'), { name: 'ThrottlingException' });
    });
    await expect(
      backend({ endpointName: 'ep', body: '', contentType: 'text/csv', accept: 'text/csv', inferenceId: 'i' }),
    ).rejects.toMatchObject({ status: 429, code: 'Throttled' });
  });
});

describe('toHttpResponse and errorResponse', () => {
  it('produces an API Gateway proxy result with a JSON content type', () => {
    expect(toHttpResponse(201, { a: 1 })).toEqual({ statusCode: 201, headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
  });

  it('uses the status and body of API errors', () => {
    expect(errorResponse(new RequestError(413, 'body: too big'))).toMatchObject({
      statusCode: 413,
      body: JSON.stringify({ error: 'PayloadTooLarge', message: 'body: too big' }),
    });
    expect(errorResponse(new ConfigError('MODEL_ROUTES: is not set'))).toMatchObject({
      statusCode: 500,
      body: JSON.stringify({ error: 'ConfigurationError', message: 'MODEL_ROUTES: is not set' }),
    });
  });

  it('hides the details of unexpected errors behind a generic 500', () => {
    const response = errorResponse(new Error('database password is hunter2'));
    expect(response.statusCode).toBe(500);
    expect(response.body).not.toContain('hunter2');
    expect(JSON.parse(response.body)).toEqual({ error: 'InternalError', message: expect.any(String) });
  });
});

describe('handlePrediction', () => {
  let clock = 0;
  const now = () => (clock += 10);

  it('returns a 200 success outcome with the prediction and the model latency', async () => {
    const { backend } = recordingBackend();
    const outcome = await handlePrediction({ modelName: 'churn', body: '{"payload":[1]}' }, { routes: table, backend, ids: () => 'p-1', now });
    expect(outcome.kind).toBe('success');
    expect(outcome.response.statusCode).toBe(200);
    expect(JSON.parse(outcome.response.body)).toEqual({
      predictionId: 'p-1',
      model: 'churn',
      variant: 'blue',
      modelVersion: '3',
      prediction: { score: 0.5 },
      contentType: 'application/json',
    });
    expect(outcome).toMatchObject({ latencyMs: 10 });
  });

  it('enriches the request before the model call, and refuses enrichment when the API has no feature store', async () => {
    const { backend, calls } = recordingBackend();
    const body = JSON.stringify({ payload: { x: 1 }, entity: { featureGroup: 'g', recordId: 'r' } });
    const enrich = async (request: any) => ({ ...request, payload: { ...request.payload, features: { f: 2 } } });
    const enriched = await handlePrediction({ modelName: 'churn', body }, { routes: table, backend, ids: () => 'p', enrich });
    expect(enriched.kind).toBe('success');
    expect(JSON.parse(String(calls[0].body))).toEqual({ x: 1, features: { f: 2 } });

    const refused = await handlePrediction({ modelName: 'churn', body }, { routes: table, backend, ids: () => 'p' });
    expect(refused).toMatchObject({ kind: 'rejected', response: { statusCode: 400 } });
    expect(JSON.parse(refused.response.body).message).toBe('entity: this API serves no feature store to enrich requests from');
    expect(calls).toHaveLength(1);
  });

  it('rejects a missing model path parameter naming model', async () => {
    const { backend } = recordingBackend();
    const outcome = await handlePrediction({ modelName: undefined, body: '{"payload":1}' }, { routes: table, backend, ids: () => 'p' });
    expect(outcome).toMatchObject({ kind: 'rejected', response: { statusCode: 400 } });
    expect(JSON.parse(outcome.response.body).message).toMatch(/^model: /);
  });

  it('validates the body before looking up the model, and reports the resolved model on variant errors', async () => {
    const { backend, calls } = recordingBackend();
    const badBody = await handlePrediction({ modelName: 'nope', body: '{' }, { routes: table, backend, ids: () => 'p' });
    expect(badBody).toMatchObject({ kind: 'rejected', response: { statusCode: 400 } });
    const unknownModel = await handlePrediction({ modelName: 'nope', body: '{"payload":1}' }, { routes: table, backend, ids: () => 'p' });
    expect(unknownModel).toMatchObject({ kind: 'rejected', response: { statusCode: 404 } });
    expect(unknownModel).not.toHaveProperty('model');
    expect(calls).toHaveLength(0);
  });

  it('returns a failed outcome with the upstream status when the model call fails', async () => {
    const backend: InferenceBackend = async () => {
      throw Object.assign(new Error('x'), { name: 'ModelNotReadyException' });
    };
    const outcome = await handlePrediction({ modelName: 'fraud', body: '{"payload":1}' }, { routes: table, backend, ids: () => 'p-2', now });
    expect(outcome).toMatchObject({ kind: 'failed', model: 'fraud', response: { statusCode: 503 } });
    expect(JSON.parse(outcome.response.body)).toMatchObject({ error: 'ModelNotReady', predictionId: 'p-2' });
  });

  it('lets programming errors propagate so the handler can log them as 500s', async () => {
    const { backend } = recordingBackend();
    await expect(
      handlePrediction({ modelName: 'churn', body: '{"payload":1}' }, {
        routes: table,
        backend,
        ids: () => {
          throw new TypeError('bug');
        },
      }),
    ).rejects.toThrow('bug');
  });
});

describe('route typing', () => {
  it('exposes the variants of a resolved route', () => {
    const route: ResolvedRoute = resolveRoute(table, 'fraud');
    expect(Object.keys(route.variants)).toEqual(['AllTraffic']);
  });
});
