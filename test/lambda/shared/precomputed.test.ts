// Precomputed predictions' pure parts: the key (injective over parts that hold '#' and '%'), the item
// both sides read and write, freshness, the reading of one joined batch-transform line, and the loader's
// input, continuation token and byte-exact line splitter.
import fc from 'fast-check';
import {
  fromPrecomputedItem,
  isFresh,
  MAX_CLOCK_SKEW_MS,
  MAX_PRECOMPUTED_BODY_BYTES,
  MAX_PRECOMPUTED_KEY_BYTES,
  parseJoinedCsvLine,
  parseJoinedLine,
  parsePrecomputedKey,
  precomputedKey,
  recordIdLocator,
  splitCsvLine,
  toPrecomputedItem,
  type PrecomputedPrediction,
} from '../../../lambda/shared/precomputed';
import {
  backoffDelayMs,
  decodeContinuation,
  decodeLine,
  EMPTY_PROGRESS,
  encodeContinuation,
  isRetriableWriteError,
  MAX_INVALID_SAMPLES,
  parseLoadInput,
  PrecomputedInputError,
  splitLines,
  withInvalidSample,
  type SplitLine,
} from '../../../lambda/shared/precomputed-load';

const PREDICTION: PrecomputedPrediction = { body: '{"score":0.91}', contentType: 'application/json', modelVersion: '7', computedAt: 1_700_000_000_500 };
const part = fc.string({ minLength: 1, maxLength: 12, unit: fc.constantFrom('a', '#', '%', '2', '3', '5', 'é', '/', '~') });

describe('precomputedKey', () => {
  test('reads as pre#<model>#<featureGroup>#<recordId> for plain names', () => {
    expect(precomputedKey('churn', 'customer-churn-features', 'c-1')).toBe('pre#churn#customer-churn-features#c-1');
  });

  test("escapes '%' and '#' so that parts holding them stay apart", () => {
    expect(precomputedKey('a', 'b#c', 'd')).toBe('pre#a#b%23c#d');
    expect(precomputedKey('a#b', 'c', 'd')).not.toBe(precomputedKey('a', 'b#c', 'd'));
    expect(precomputedKey('m', 'g', '%23')).toBe('pre#m#g#%2523');
    expect(precomputedKey('m', 'g', '%23')).not.toBe(precomputedKey('m', 'g', '#'));
  });

  test('property: different parts never give the same key, and the key gives the parts back', () => {
    fc.assert(
      fc.property(fc.tuple(part, part, part), fc.tuple(part, part, part), (a, b) => {
        const [keyA, keyB] = [precomputedKey(...a), precomputedKey(...b)];
        expect(keyA === keyB).toBe(a.join('\u0000') === b.join('\u0000'));
        expect(parsePrecomputedKey(keyA)).toEqual({ model: a[0], featureGroup: a[1], recordId: a[2] });
        expect(keyA.split('#')).toHaveLength(4);
      }),
      { numRuns: 500 },
    );
  });

  test('refuses an empty part, a lone surrogate and a key over 2048 bytes', () => {
    expect(() => precomputedKey('', 'g', 'r')).toThrow('model: must be a non-empty string');
    expect(() => precomputedKey('m', 'g', '')).toThrow('recordId: must be a non-empty string');
    expect(() => precomputedKey('m', 'g', 'x\uD800')).toThrow('recordId: is not well-formed Unicode');
    expect(precomputedKey('m', 'g', '\uD83D\uDE00')).toBe('pre#m#g#\uD83D\uDE00');
    const fits = 'r'.repeat(MAX_PRECOMPUTED_KEY_BYTES - 'pre#m#g#'.length);
    expect(Buffer.byteLength(precomputedKey('m', 'g', fits))).toBe(MAX_PRECOMPUTED_KEY_BYTES);
    expect(() => precomputedKey('m', 'g', `${fits}r`)).toThrow(/the key would be 2049 bytes/);
  });

  test('parsePrecomputedKey knows no other key of the state table', () => {
    expect(parsePrecomputedKey('breaker#churn-endpoint')).toBeUndefined();
    expect(parsePrecomputedKey('a'.repeat(64))).toBeUndefined();
    expect(parsePrecomputedKey('pre#a#b')).toBeUndefined();
  });
});

describe('isFresh', () => {
  const now = 1_700_000_000_000;
  test('is fresh up to maxAge after computedAt, and stale after', () => {
    expect(isFresh({ computedAt: now - 3_600_000 }, now, 3600)).toBe(true);
    expect(isFresh({ computedAt: now - 3_600_001 }, now, 3600)).toBe(false);
    expect(isFresh({ computedAt: now }, now, 0)).toBe(true);
  });

  test('allows a minute of clock skew into the future, not more', () => {
    expect(isFresh({ computedAt: now + MAX_CLOCK_SKEW_MS }, now, 60)).toBe(true);
    expect(isFresh({ computedAt: now + MAX_CLOCK_SKEW_MS + 1 }, now, 60)).toBe(false);
  });

  test('an unusable time or age is never fresh', () => {
    expect(isFresh({ computedAt: Number.NaN }, now, 60)).toBe(false);
    expect(isFresh({ computedAt: now }, now, -1)).toBe(false);
    expect(isFresh({ computedAt: now }, now, Number.NaN)).toBe(false);
  });

  test('property: freshness only shrinks as time passes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2e12 }), fc.integer({ min: 0, max: 1e8 }), fc.integer({ min: 0, max: 1e9 }), fc.integer({ min: 0, max: 1e6 }), (computedAt, elapsed, later, maxAge) => {
        const t = computedAt + elapsed;
        if (!isFresh({ computedAt }, t, maxAge)) expect(isFresh({ computedAt }, t + later, maxAge)).toBe(false);
      }),
    );
  });
});

describe('the item', () => {
  test('holds the answer, the version, computedAt in ms and a ttl in seconds after computedAt', () => {
    expect(toPrecomputedItem('pre#m#g#r', PREDICTION, 86_400)).toEqual({
      pk: { S: 'pre#m#g#r' },
      body: { S: '{"score":0.91}' },
      contentType: { S: 'application/json' },
      modelVersion: { S: '7' },
      computedAt: { N: '1700000000500' },
      ttl: { N: String(1_700_000_001 + 86_400) },
    });
  });

  test('reads back what it wrote, until its ttl', () => {
    const item = toPrecomputedItem('k', PREDICTION, 60);
    expect(fromPrecomputedItem(item, PREDICTION.computedAt)).toEqual(PREDICTION);
    expect(fromPrecomputedItem(item, (1_700_000_001 + 60) * 1000 - 1)).toEqual(PREDICTION);
    expect(fromPrecomputedItem(item, (1_700_000_001 + 60) * 1000)).toBeUndefined();
  });

  test('an item it did not write is no answer', () => {
    const item = toPrecomputedItem('k', PREDICTION, 60);
    expect(fromPrecomputedItem(undefined, 0)).toBeUndefined();
    expect(fromPrecomputedItem({ ...item, body: { N: '1' } }, 0)).toBeUndefined();
    expect(fromPrecomputedItem({ pk: item.pk, body: item.body }, 0)).toBeUndefined();
    expect(fromPrecomputedItem({ ...item, computedAt: { N: 'soon' } }, 0)).toBeUndefined();
  });
});

describe('parseJoinedLine', () => {
  const byId = recordIdLocator('customer_id');

  test('reads the record id and SageMakerOutput of a joined JSON Lines record', () => {
    expect(parseJoinedLine('{"customer_id":"c-1","tenure":3,"SageMakerOutput":{"score":0.91}}', byId)).toEqual({ ok: true, recordId: 'c-1', prediction: { score: 0.91 }, body: '{"score":0.91}' });
    expect(parseJoinedLine('{"customer_id":42,"SageMakerOutput":0.5}', byId)).toMatchObject({ ok: true, recordId: '42', body: '0.5' });
  });

  test('follows a JSON pointer, also into SageMakerInput when the input records are not objects', () => {
    expect(parseJoinedLine('{"SageMakerInput":["c-9",1,2],"SageMakerOutput":[0.2,0.8]}', recordIdLocator('/SageMakerInput/0'))).toMatchObject({ ok: true, recordId: 'c-9', body: '[0.2,0.8]' });
    expect(parseJoinedLine('{"customer":{"a/b":{"~id":"x"}},"SageMakerOutput":1}', recordIdLocator('/customer/a~1b/~0id'))).toMatchObject({ ok: true, recordId: 'x' });
  });

  test.each([
    ['not json', 'is not valid JSON'],
    ['[1,2]', 'is not a JSON object (got an array)'],
    ['{"customer_id":"c-1"}', 'has no SageMakerOutput (the transform must join its input: JoinSource Input, JSON Lines)'],
    ['{"SageMakerOutput":1}', 'has no record id at customer_id'],
    ['{"customer_id":"","SageMakerOutput":1}', 'record id at customer_id must be a non-empty string or a whole number up to 2^53; got string ""'],
    ['{"customer_id":1.5,"SageMakerOutput":1}', 'record id at customer_id must be a non-empty string or a whole number up to 2^53; got number 1.5'],
    ['{"customer_id":12345678901234567890,"SageMakerOutput":1}', 'record id at customer_id must be a non-empty string or a whole number up to 2^53; got number 12345678901234567000'],
    ['{"customer_id":null,"SageMakerOutput":1}', 'record id at customer_id must be a non-empty string or a whole number up to 2^53; got null'],
    ['{"customer_id":"\\ud800","SageMakerOutput":1}', 'record id at customer_id is not well-formed Unicode'],
  ])('%s is invalid: %s', (line, reason) => {
    expect(parseJoinedLine(line, byId)).toEqual({ ok: false, reason });
  });

  test('refuses an answer over the size an item holds', () => {
    const big = 'x'.repeat(MAX_PRECOMPUTED_BODY_BYTES);
    expect(parseJoinedLine(JSON.stringify({ customer_id: 'c', SageMakerOutput: big }), byId)).toEqual({ ok: false, reason: `SageMakerOutput is ${MAX_PRECOMPUTED_BODY_BYTES + 2} bytes; a precomputed answer holds at most ${MAX_PRECOMPUTED_BODY_BYTES}` });
  });

  test('does not follow inherited properties', () => {
    expect(parseJoinedLine('{"SageMakerOutput":1}', recordIdLocator('constructor'))).toEqual({ ok: false, reason: 'has no record id at constructor' });
  });

  test('property: a joined record of any JSON answer reads back its id and answer', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ minLength: 1 }).filter((id) => !/[\uD800-\uDFFF]/u.test(id)), fc.maxSafeNat()), fc.jsonValue({ maxDepth: 3 }), (id, output) => {
        const parsed = parseJoinedLine(JSON.stringify({ customer_id: id, SageMakerOutput: output }), byId);
        expect(parsed).toEqual({ ok: true, recordId: String(id), prediction: JSON.parse(JSON.stringify(output)), body: JSON.stringify(output) });
      }),
    );
  });

  test('recordIdLocator refuses an empty field and a malformed pointer', () => {
    expect(() => recordIdLocator('')).toThrow('recordIdField: must be a field name or a JSON pointer');
    expect(() => recordIdLocator('/a~2')).toThrow("recordIdField: '/a~2' is not a JSON pointer: '~' must be followed by 0 or 1");
    expect(recordIdLocator('a~2').tokens).toEqual(['a~2']);
  });
});

describe('the loader input', () => {
  const INPUT = { tableName: 't', model: 'churn', modelVersion: '7', featureGroup: 'customers', outputPrefix: 's3://my-bucket/churn/batch-output/run-1/', recordIdField: 'customer_id', ttlSeconds: 86_400 };

  test('reads the bucket and prefix, the pointer and computedAt', () => {
    const { recordIdField: _field, ...rest } = INPUT;
    expect(parseLoadInput({ ...INPUT, computedAt: '2026-11-26T02:00:00.000Z', continuation: null })).toEqual({
      ...rest,
      bucket: 'my-bucket',
      prefix: 'churn/batch-output/run-1/',
      locator: { field: 'customer_id', tokens: ['customer_id'] },
      format: 'jsonl',
      computedAt: Date.parse('2026-11-26T02:00:00.000Z'),
    });
    expect(parseLoadInput({ ...INPUT, outputPrefix: 's3://my-bucket/' }).prefix).toBe('');
    expect(parseLoadInput({ ...INPUT, format: 'csv', recordIdField: '2' })).toMatchObject({ format: 'csv', idColumn: 2 });
  });

  test.each([
    [{ ...INPUT, outputPrefix: 's3://my-bucket/churn/batch-output/run-1' }, 'outputPrefix', 'outputPrefix: must be s3://<bucket>/<prefix>/ (ending in /)'],
    [{ ...INPUT, ttlSeconds: 1.5 }, 'ttlSeconds', 'ttlSeconds: must be a whole number of seconds'],
    [{ ...INPUT, ttlSeconds: 10 }, 'ttlSeconds', 'ttlSeconds: must be at least 60'],
    [{ ...INPUT, recordIdField: '/a~' }, 'recordIdField', "recordIdField: '/a~' is not a JSON pointer: '~' must be followed by 0 or 1"],
    [{ ...INPUT, computedAt: 'yesterday' }, 'computedAt', 'computedAt: must be an ISO 8601 time or ms since the epoch; got "yesterday"'],
    [{ ...INPUT, model: undefined }, 'model', 'model: is required (the model family)'],
    [{ ...INPUT, format: 'csv' }, 'recordIdField', 'recordIdField: must be a column number from 0 to 999 with format csv; got "customer_id"'],
    [{ ...INPUT, format: 'parquet' }, 'format', 'format: must be jsonl or csv'],
  ])('%j is refused, naming %s', (event, field, message) => {
    const error = (() => {
      try {
        parseLoadInput(event);
      } catch (caught) {
        return caught as PrecomputedInputError;
      }
      throw new Error('expected a PrecomputedInputError');
    })();
    expect(error).toBeInstanceOf(PrecomputedInputError);
    expect({ field: error.field, message: error.message }).toEqual({ field, message });
  });

  test('the continuation carries the progress and belongs to one output prefix', () => {
    const progress = { ...EMPTY_PROGRESS, loaded: 50, invalid: 1, objects: 1, after: 'p/a.out', current: { key: 'p/b.out', etag: '"e"', offset: 1234, line: 20 }, invalidLines: [{ object: 'p/a.out', line: 3, reason: 'is not valid JSON' }] };
    const token = encodeContinuation('s3://b/p/', progress);
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeContinuation(token, 's3://b/p/')).toEqual(progress);
    expect(() => decodeContinuation(token, 's3://b/q/')).toThrow('continuation: was returned for s3://b/p/, not s3://b/q/');
    expect(() => decodeContinuation('not-a-token', 's3://b/p/')).toThrow('continuation: is not a continuation this function returned');
  });

  test('reports the first ten invalid lines, with long reasons cut', () => {
    let samples = withInvalidSample([], { object: 'o', line: 1, reason: 'x'.repeat(1000) });
    expect(samples[0]!.reason).toHaveLength(300);
    for (let line = 2; line <= 20; line += 1) samples = withInvalidSample(samples, { object: 'o', line, reason: 'r' });
    expect(samples.map((sample) => sample.line)).toEqual(Array.from({ length: MAX_INVALID_SAMPLES }, (_, index) => index + 1));
  });

  test('backs off with full jitter over a doubling window, capped', () => {
    expect([0, 1, 2, 10].map((attempt) => backoffDelayMs(attempt, () => 0.999))).toEqual([49, 99, 199, 4995]);
    expect(backoffDelayMs(3, () => 0)).toBe(0);
  });

  test('retries throttling, 5xx and network errors; not missing tables or refused items', () => {
    expect(isRetriableWriteError({ name: 'ProvisionedThroughputExceededException' })).toBe(true);
    expect(isRetriableWriteError({ name: 'Whatever', $metadata: { httpStatusCode: 503 } })).toBe(true);
    expect(isRetriableWriteError({ name: 'Error', code: 'ECONNRESET' })).toBe(true);
    expect(isRetriableWriteError({ name: 'ResourceNotFoundException', $metadata: { httpStatusCode: 400 } })).toBe(false);
    expect(isRetriableWriteError({ name: 'ValidationException', $metadata: { httpStatusCode: 400 } })).toBe(false);
    expect(isRetriableWriteError(undefined)).toBe(false);
  });
});

describe('splitLines', () => {
  async function* chunked(bytes: Buffer, sizes: number[]): AsyncGenerator<Uint8Array> {
    let at = 0;
    for (let index = 0; at < bytes.length; index += 1) {
      const size = Math.max(1, sizes[index % sizes.length] ?? 1);
      yield new Uint8Array(bytes.subarray(at, at + size));
      at += size;
    }
  }
  const collect = async (lines: AsyncIterable<SplitLine>) => {
    const found: Array<{ text: string | undefined; start: number; end: number }> = [];
    for await (const line of lines) found.push({ text: line.bytes === undefined ? undefined : decodeLine(line.bytes), start: line.start, end: line.end });
    return found;
  };

  test('splits at newlines, drops \\r, keeps a last line without one, and gives byte offsets', async () => {
    const bytes = Buffer.from('a\r\nbé\n\nlast', 'utf8');
    expect(await collect(splitLines(chunked(bytes, [2, 1, 3])))).toEqual([
      { text: 'a', start: 0, end: 3 },
      { text: 'bé', start: 3, end: 7 },
      { text: '', start: 7, end: 8 },
      { text: 'last', start: 8, end: 12 },
    ]);
  });

  test('reports a line over the limit without its bytes, and goes on', async () => {
    const bytes = Buffer.from(`${'x'.repeat(20)}\nok\n${'y'.repeat(11)}`, 'utf8');
    expect(await collect(splitLines(chunked(bytes, [4]), 0, 10))).toEqual([
      { text: undefined, start: 0, end: 21 },
      { text: 'ok', start: 21, end: 24 },
      { text: undefined, start: 24, end: 35 },
    ]);
  });

  test('a line that is not UTF-8 decodes to undefined', () => {
    expect(decodeLine(new Uint8Array([0x7b, 0xff, 0x7d]))).toBeUndefined();
  });

  test('property: any chunking gives the same lines, and reading from a line\'s offset gives the rest', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.string({ unit: fc.constantFrom('a', 'é', '\n', '\r', '€', '{') }), { maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 5 }), async (pieces, sizes) => {
        const text = pieces.join('\n');
        const bytes = Buffer.from(text, 'utf8');
        const whole = await collect(splitLines(chunked(bytes, [bytes.length || 1])));
        expect(await collect(splitLines(chunked(bytes, sizes)))).toEqual(whole);
        const expected = text.split('\n');
        if (expected[expected.length - 1] === '') expected.pop();
        expect(whole.map((line) => line.text)).toEqual(expected.map((line) => line.replace(/\r$/, '')));
        for (const [index, line] of whole.entries()) {
          expect(await collect(splitLines(chunked(bytes.subarray(line.start), sizes), line.start))).toEqual(whole.slice(index));
        }
      }),
    );
  });
});

describe('parseJoinedCsvLine', () => {
  test('the id is the column named, the answer every other field as the line writes it', () => {
    expect(parseJoinedCsvLine('c-1,0.91', 0)).toEqual({ ok: true, recordId: 'c-1', prediction: '0.91', body: '0.91' });
    expect(parseJoinedCsvLine('0.2,0.8,"c,9"\r', 2)).toEqual({ ok: true, recordId: 'c,9', prediction: '0.2,0.8', body: '0.2,0.8' });
    expect(parseJoinedCsvLine('"say ""hi""","x,y"', 0)).toMatchObject({ ok: true, recordId: 'say "hi"', body: '"x,y"' });
  });

  test('a row without an id or an answer is refused with the reason', () => {
    expect(parseJoinedCsvLine('c-1', 0)).toEqual({ ok: false, reason: 'has no answer beside the record id' });
    expect(parseJoinedCsvLine('c-1,0.9', 3)).toEqual({ ok: false, reason: 'has 2 column(s): no record id at column 3' });
    expect(parseJoinedCsvLine(',0.9', 0)).toEqual({ ok: false, reason: 'record id at column 0 is empty' });
    expect(parseJoinedCsvLine('"c-1,0.9', 0)).toEqual({ ok: false, reason: 'is not a CSV row (a quoted field is not closed)' });
  });

  test('property: fields written with RFC 4180 quoting split back into themselves', () => {
    const quote = (value: string) => (/[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value);
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 8 }), { minLength: 1, maxLength: 6 }), (values) => {
        const line = values.map(quote).join(',');
        expect(splitCsvLine(line)?.values).toEqual(values);
      }),
    );
  });
});
