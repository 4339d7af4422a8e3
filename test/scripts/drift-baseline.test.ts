import { baselineFromCsv } from '../../scripts/drift-baseline';
import { detectDrift, parseCaptureLine } from '../../lambda/shared/drift';

describe('npm run drift-baseline', () => {
  const rows = Array.from({ length: 400 }, (_, index) => `${index % 50},${(index * 7) % 120}.5,${index % 3 === 0 ? 'annual' : 'monthly'},${index % 2}`);
  const csv = ['tenure,charges,plan,label', ...rows].join('\n');

  test('builds a baseline the detector reads, with the columns in input order', () => {
    const baseline = baselineFromCsv(csv, { categorical: ['plan'], ignore: ['label'] });
    expect(baseline.columns).toEqual(['tenure', 'charges', 'plan', 'label']);
    expect(Object.keys(baseline.features).sort()).toEqual(['charges', 'plan', 'tenure']);
    expect(baseline.features.plan).toMatchObject({ type: 'categorical' });
    expect(baseline.features.tenure).toMatchObject({ type: 'numeric' });
  });

  test('finds no drift when the captured requests come from the same distribution', () => {
    const baseline = baselineFromCsv(csv, { categorical: ['plan'], ignore: ['label'] });
    const captured = rows.flatMap((row) =>
      parseCaptureLine(
        JSON.stringify({
          captureData: { endpointInput: { observedContentType: 'text/csv', mode: 'INPUT', data: row, encoding: 'CSV' } },
          eventMetadata: { eventId: 'e', inferenceTime: '2026-11-26T10:00:00Z' },
          eventVersion: '0',
        }),
        baseline.columns,
      ),
    );
    const report = detectDrift(baseline, captured);
    expect(report.status).toBe('no-drift');
  });

  test('names the problem with an empty sample', () => {
    expect(() => baselineFromCsv('tenure,charges\n')).toThrow('input: needs a header row and at least one data row');
  });
});
