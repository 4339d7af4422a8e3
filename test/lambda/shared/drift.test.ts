// Drift statistics against independently computed reference values (test/fixtures/drift-reference.json,
// numpy/scipy; each case names its source) and fast-check properties.
import fc from 'fast-check';
import {
  BaselineError,
  binIndex,
  binProportions,
  buildBaseline,
  CaptureParseError,
  categoricalPsi,
  chiSquareTest,
  detectDrift,
  DriftInputError,
  ksTwoSample,
  OTHER_CATEGORY,
  parseBaseline,
  parseBaselineText,
  parseCaptureLine,
  populationStabilityIndex,
  regularizedGammaQ,
  type Baseline,
  type Row,
} from '../../../lambda/shared/drift';
import reference from '../../fixtures/drift-reference.json';

function relativeClose(actual: number, expected: number, tolerance: number): void {
  const scale = Math.max(Math.abs(expected), 1e-300);
  if (Math.abs(actual - expected) / scale > tolerance) {
    throw new Error(`expected ${actual} to be within ${tolerance} (relative) of ${expected}`);
  }
}

describe('reference values (numpy / scipy)', () => {
  test.each(reference.psi)('PSI of $expected vs $actual', (c) => {
    expect(populationStabilityIndex(c.expected, c.actual, c.epsilon)).toBeCloseTo(c.psi, 10);
  });

  test.each(reference.categoricalPsi)('categorical PSI of $observedCounts', (c) => {
    expect(categoricalPsi(c.expectedProportions as unknown as Record<string, number>, c.observedCounts as unknown as Record<string, number>)).toBeCloseTo(c.psi, 10);
  });

  test.each(reference.ks.map((c, index) => ({ ...c, index })))('KS case $index: D exactly, p-value', (c) => {
    const result = ksTwoSample(c.a, c.b);
    expect(result.statistic).toBeCloseTo(c.statistic, 12);
    // Same formula as ours (Kolmogorov limit with Stephens' correction), evaluated by scipy.
    relativeClose(result.pValue, c.pValueStephens, 1e-6);
    // scipy's own 'asymp' uses kstwo.sf(D, round(nm/(n+m))): a different approximation, close to ours.
    expect(Math.abs(result.pValue - c.pValueScipyAsymp)).toBeLessThan(0.005);
    // D is symmetric.
    expect(ksTwoSample(c.b, c.a).statistic).toBe(result.statistic);
  });

  test.each(reference.chiSquare)('chi-square of $observedCounts', (c) => {
    const result = chiSquareTest(c.expectedProportions as unknown as Record<string, number>, c.observedCounts as unknown as Record<string, number>);
    expect(result.statistic).toBeCloseTo(c.statistic, 9);
    expect(result.degreesOfFreedom).toBe(c.degreesOfFreedom);
    relativeClose(result.pValue, c.pValue, 1e-7);
  });

  test.each(reference.gammaQ)('Q($a, $x)', (c) => {
    relativeClose(regularizedGammaQ(c.a, c.x), c.q, 1e-8);
  });
});

describe('binning', () => {
  test('bins are (-inf,e0], (e0,e1], ..., (ek,+inf)', () => {
    const edges = [0, 10, 20];
    expect([-5, 0, 0.1, 10, 15, 20, 20.5].map((v) => binIndex(v, edges))).toEqual([0, 0, 1, 1, 2, 2, 3]);
    expect(binProportions([-5, 0, 0.1, 10, 15, 20, 20.5, 99], edges)).toEqual([2 / 8, 2 / 8, 2 / 8, 2 / 8]);
  });

  test('rejects edges that are not strictly increasing and empty samples', () => {
    expect(() => binProportions([1], [1, 1])).toThrow(/edges\[1\]: edges must be strictly increasing/);
    expect(() => binProportions([], [1])).toThrow(DriftInputError);
  });
});

describe('chi-square pooling', () => {
  test('categories unseen in the baseline are pooled into __other__ and give a tiny p-value', () => {
    const result = chiSquareTest({ a: 0.5, b: 0.5 }, { a: 50, b: 40, c: 5, d: 5 });
    expect(result.categories).toEqual(['a', 'b', OTHER_CATEGORY]);
    expect(result.degreesOfFreedom).toBe(2);
    expect(Number.isFinite(result.statistic)).toBe(true);
    expect(result.pValue).toBeLessThan(1e-6);
  });

  test('no observations is an error, not a zero', () => {
    expect(() => chiSquareTest({ a: 1 }, {})).toThrow(/observedCounts: no observations/);
  });
});

const proportionsArb = (length: number): fc.Arbitrary<number[]> =>
  fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: length, maxLength: length }).filter((counts) => counts.some((c) => c > 0));

describe('properties', () => {
  test('PSI ≥ 0, and 0 for identical distributions', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }).chain((n) => fc.tuple(proportionsArb(n), proportionsArb(n))),
        ([e, a]) => {
          expect(populationStabilityIndex(e, a)).toBeGreaterThanOrEqual(0);
          expect(populationStabilityIndex(e, e)).toBeCloseTo(0, 12);
        },
      ),
    );
  });

  const sampleArb = fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 200 });

  test('KS D ∈ [0,1], symmetric, 0 for identical samples; p ∈ [0,1]', () => {
    fc.assert(
      fc.property(sampleArb, sampleArb, (a, b) => {
        const ab = ksTwoSample(a, b);
        expect(ab.statistic).toBeGreaterThanOrEqual(0);
        expect(ab.statistic).toBeLessThanOrEqual(1);
        expect(ab.pValue).toBeGreaterThanOrEqual(0);
        expect(ab.pValue).toBeLessThanOrEqual(1);
        expect(ksTwoSample(b, a).statistic).toBe(ab.statistic);
        expect(ksTwoSample(a, [...a].reverse()).statistic).toBe(0);
        expect(ksTwoSample(a, a).pValue).toBe(1);
      }),
    );
  });

  test('chi-square p ∈ [0,1] and the statistic is ≥ 0', () => {
    const categoriesArb = fc.uniqueArray(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'), { minLength: 1, maxLength: 6 });
    fc.assert(
      fc.property(
        categoriesArb.chain((categories) =>
          fc.tuple(
            fc.constant(categories),
            fc.array(fc.integer({ min: 1, max: 100 }), { minLength: categories.length, maxLength: categories.length }),
            fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g'), fc.integer({ min: 0, max: 10_000 }), { minKeys: 1 }),
          ),
        ),
        ([categories, weights, observed]) => {
          fc.pre(Object.values(observed).some((count) => count > 0));
          const total = weights.reduce((sum, w) => sum + w, 0);
          const expected = Object.fromEntries(categories.map((c, i) => [c, weights[i]! / total]));
          const result = chiSquareTest(expected, observed);
          expect(result.statistic).toBeGreaterThanOrEqual(0);
          expect(result.pValue).toBeGreaterThanOrEqual(0);
          expect(result.pValue).toBeLessThanOrEqual(1);
          expect(categoricalPsi(expected, observed)).toBeGreaterThanOrEqual(0);
        },
      ),
    );
  });

  test('a baseline built from a sample validates and its proportions sum to 1', () => {
    const rowArb = fc.record({
      x: fc.double({ min: -1e3, max: 1e3, noNaN: true }),
      k: fc.integer({ min: 0, max: 5 }),
      c: fc.constantFrom('red', 'green', 'blue'),
    });
    fc.assert(
      fc.property(fc.array(rowArb, { minLength: 1, maxLength: 300 }), fc.integer({ min: 2, max: 20 }), (rows, bins) => {
        const baseline = buildBaseline(['x', 'k', 'c'], rows, { bins, categorical: ['k'] });
        expect(parseBaseline(JSON.parse(JSON.stringify(baseline)))).toEqual(baseline);
        const x = baseline.features.x!;
        const c = baseline.features.c!;
        const k = baseline.features.k!;
        if (x.type !== 'numeric' || c.type !== 'categorical' || k.type !== 'categorical') throw new Error('wrong feature types');
        expect(x.binProportions.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 9);
        expect(x.binProportions).toHaveLength(x.binEdges.length + 1);
        expect(x.binEdges.length).toBeLessThanOrEqual(bins - 1);
        expect(Object.values(c.proportions).reduce((s, v) => s + v, 0)).toBeCloseTo(1, 9);
        expect(Object.values(k.proportions).reduce((s, v) => s + v, 0)).toBeCloseTo(1, 9);
        // The training sample itself does not drift from its own baseline.
        const report = detectDrift(baseline, rows, { minRows: 1 });
        for (const feature of report.features) {
          if (feature.status === 'ok') expect(feature.psi).toBeCloseTo(0, 9);
        }
      }),
      { numRuns: 50 },
    );
  });

  test('parse errors of capture lines name the field', () => {
    const fields = ['captureData', 'endpointInput', 'data', 'encoding'] as const;
    fc.assert(
      fc.property(fc.constantFrom(...fields), (missing) => {
        const line: Record<string, unknown> = { captureData: { endpointInput: { data: '1,2', encoding: 'CSV', mode: 'INPUT' } } };
        if (missing === 'captureData') delete line.captureData;
        else if (missing === 'endpointInput') delete (line.captureData as Record<string, unknown>).endpointInput;
        else delete ((line.captureData as Record<string, unknown>).endpointInput as Record<string, unknown>)[missing];
        try {
          parseCaptureLine(JSON.stringify(line), ['a', 'b']);
          throw new Error('parsed');
        } catch (error) {
          expect(error).toBeInstanceOf(CaptureParseError);
          expect((error as CaptureParseError).message).toContain(missing);
          expect((error as CaptureParseError).problem).toBe('malformed-capture');
        }
      }),
    );
  });
});

function captureLine(data: string, encoding: 'CSV' | 'JSON' | 'BASE64', contentType = encoding === 'JSON' ? 'application/json' : 'text/csv'): string {
  return JSON.stringify({
    captureData: {
      endpointInput: { observedContentType: contentType, mode: 'INPUT', data, encoding },
      endpointOutput: { observedContentType: 'text/csv', mode: 'OUTPUT', data: '0.42', encoding: 'CSV' },
    },
    eventMetadata: { eventId: 'e-1', inferenceTime: '2026-11-26T10:00:00Z', inferenceId: 'i-1' },
    eventVersion: '0',
  });
}

describe('parseCaptureLine', () => {
  const columns = ['tenure', 'charges', 'plan'];

  test('CSV, one or more rows per record', () => {
    expect(parseCaptureLine(captureLine('1.0,2.5,a', 'CSV'), columns)).toEqual([{ tenure: 1, charges: 2.5, plan: 'a' }]);
    expect(parseCaptureLine(captureLine('1,2,a\n3,4,"b,c"\n', 'CSV'), columns)).toEqual([
      { tenure: 1, charges: 2, plan: 'a' },
      { tenure: 3, charges: 4, plan: 'b,c' },
    ]);
  });

  test('BASE64 decoded as CSV or (JSON content type) JSON', () => {
    expect(parseCaptureLine(captureLine(Buffer.from('5,6,z').toString('base64'), 'BASE64'), columns)).toEqual([{ tenure: 5, charges: 6, plan: 'z' }]);
    const json = Buffer.from(JSON.stringify({ instances: [{ tenure: 7, plan: 'q' }] })).toString('base64');
    expect(parseCaptureLine(captureLine(json, 'BASE64', 'application/json'), columns)).toEqual([{ tenure: 7, plan: 'q' }]);
    expect(() => parseCaptureLine(captureLine('%%%', 'BASE64'), columns)).toThrow(/captureData\.endpointInput\.data: is not valid base64/);
  });

  test('JSON: instances, flat object, array of rows', () => {
    expect(parseCaptureLine(captureLine(JSON.stringify({ instances: [{ tenure: 1, charges: 2, plan: 'a' }, [3, 4, 'b']] }), 'JSON'), columns)).toEqual([
      { tenure: 1, charges: 2, plan: 'a' },
      { tenure: 3, charges: 4, plan: 'b' },
    ]);
    expect(parseCaptureLine(captureLine(JSON.stringify({ tenure: 1, plan: null }), 'JSON'), columns)).toEqual([{ tenure: 1 }]);
    expect(parseCaptureLine(captureLine(JSON.stringify([[1, 2, 'a']]), 'JSON'), columns)).toEqual([{ tenure: 1, charges: 2, plan: 'a' }]);
    expect(parseCaptureLine(captureLine(JSON.stringify([1, 2, 'a']), 'JSON'), columns)).toEqual([{ tenure: 1, charges: 2, plan: 'a' }]);
  });

  test('errors name what is wrong', () => {
    expect(() => parseCaptureLine(captureLine(JSON.stringify({ tenure: 1, region: 'eu' }), 'JSON'), columns)).toThrow(
      /unexpected field 'region' not in baseline columns/,
    );
    try {
      parseCaptureLine(captureLine(JSON.stringify({ instances: [{ region: 'eu' }] }), 'JSON'), columns);
    } catch (error) {
      expect(error).toMatchObject({ problem: 'unexpected-field', field: 'region' });
    }
    expect(() => parseCaptureLine(captureLine('1,2', 'CSV'), columns)).toThrow(/captureData\.endpointInput\.data: row 0 has 2 values; the baseline has 3 columns/);
    expect(() => parseCaptureLine(captureLine('{nope', 'JSON'), columns)).toThrow(/captureData\.endpointInput\.data: not valid JSON/);
    expect(() => parseCaptureLine(captureLine(JSON.stringify({ tenure: { deep: 1 } }), 'JSON'), columns)).toThrow(/field 'tenure': must be a number/);
    expect(() => parseCaptureLine('not json', columns)).toThrow(/\(line\): not valid JSON/);
    expect(() =>
      parseCaptureLine(JSON.stringify({ captureData: { endpointInput: { data: '1', encoding: 'XML' } } }), columns),
    ).toThrow(/captureData\.endpointInput\.encoding/);
  });
});

describe('baseline validation', () => {
  const valid: Baseline = {
    version: 1,
    columns: ['x', 'c'],
    features: {
      x: { type: 'numeric', binEdges: [0, 1], binProportions: [0.2, 0.5, 0.3], sample: [-1, 0.5, 2] },
      c: { type: 'categorical', proportions: { a: 0.4, b: 0.6 } },
    },
  };
  const withFeature = (name: string, feature: unknown): unknown => ({ ...valid, features: { ...valid.features, [name]: feature } });

  test.each([
    [{ ...valid, version: 2 }, 'version'],
    [withFeature('x', { ...valid.features.x, binEdges: [1, 0] }), 'features.x.binEdges[1]'],
    [withFeature('x', { ...valid.features.x, binProportions: [0.5, 0.5] }), 'features.x.binProportions'],
    [withFeature('x', { ...valid.features.x, binProportions: [0.5, 0.5, 0.5] }), 'features.x.binProportions'],
    [withFeature('x', { ...valid.features.x, sample: [] }), 'features.x.sample'],
    [withFeature('c', { type: 'categorical', proportions: { a: 0.1 } }), 'features.c.proportions'],
    [withFeature('c', { type: 'text' }), 'features.c.type'],
    [withFeature('z', { type: 'categorical', proportions: { a: 1 } }), 'features.z'],
    [{ ...valid, columns: undefined }, 'columns'],
  ])('names the field (%#: %s)', (document, field) => {
    try {
      parseBaseline(document);
      throw new Error('accepted');
    } catch (error) {
      expect(error).toBeInstanceOf(BaselineError);
      expect((error as BaselineError).field).toBe(field);
      expect((error as BaselineError).message.startsWith(`${field}: `)).toBe(true);
    }
  });

  test('invalid JSON text', () => {
    expect(() => parseBaselineText('{')).toThrow(/\(root\): not valid JSON/);
    expect(parseBaselineText(JSON.stringify(valid))).toEqual(valid);
  });
});

describe('detectDrift', () => {
  // Deterministic pseudo-normal samples (Box–Muller over a fixed LCG).
  function normals(count: number, mean: number, seed: number): number[] {
    let state = seed >>> 0;
    const uniform = (): number => {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      return (state + 1) / 4294967297;
    };
    return Array.from({ length: count }, () => mean + Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform()));
  }
  const training: Row[] = normals(2000, 0, 1).map((x, i) => ({ x, c: i % 4 === 0 ? 'b' : 'a' }));
  const baseline = buildBaseline(['x', 'c'], training);

  test('fewer rows than minRows is insufficient-data, with no statistics', () => {
    const report = detectDrift(baseline, training.slice(0, 99));
    expect(report).toMatchObject({ status: 'insufficient-data', rows: 99, minRows: 100, features: [] });
  });

  test('stable data does not drift; shifted data does', () => {
    const stable = detectDrift(baseline, normals(500, 0, 7).map((x, i) => ({ x, c: i % 4 === 0 ? 'b' : 'a' })));
    expect(stable.status).toBe('no-drift');
    const shifted = detectDrift(baseline, normals(500, 1.5, 7).map((x) => ({ x, c: 'z' })));
    expect(shifted.status).toBe('drift');
    expect(shifted.driftedFeatures).toEqual(['x', 'c']);
    const x = shifted.features.find((f) => f.feature === 'x');
    expect(x).toMatchObject({ status: 'ok', type: 'numeric' });
    if (x?.status === 'ok') {
      expect(x.psi).toBeGreaterThan(0.5);
      expect(x.ks!.statistic).toBeGreaterThan(0.4);
    }
  });

  test('a feature with too few usable values is insufficient-data on its own', () => {
    const rows: Row[] = normals(150, 0, 3).map((x, i) => (i < 60 ? { x, c: 'a' } : { x: '', c: 'a' }));
    const report = detectDrift(baseline, rows);
    expect(report.features.find((f) => f.feature === 'x')).toEqual({ feature: 'x', type: 'numeric', rows: 60, missing: 90, status: 'insufficient-data' });
  });
});
