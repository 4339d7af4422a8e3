import fc from 'fast-check';
import { chunkingOptionsProblem, chunkText } from '../../../lambda/shared/chunking';

const sentence = fc
  .tuple(fc.array(fc.constantFrom('alpha', 'beta', 'gamma', 'delta', 'x', 'supercalifragilistic', '😀', 'naïve'), { minLength: 1, maxLength: 30 }), fc.constantFrom('. ', '! ', '? ', '.\n', '\n\n', ' '))
  .map(([words, end]) => words.join(' ') + end);
const documentText = fc.oneof(fc.array(sentence, { maxLength: 40 }).map((parts) => parts.join('')), fc.string({ maxLength: 3000 }), fc.string({ unit: 'grapheme', maxLength: 1500 }));
const options = fc.integer({ min: 1, max: 400 }).chain((size) => fc.record({ size: fc.constant(size), overlap: fc.integer({ min: 0, max: size - 1 }) }));

describe('chunkText', () => {
  test('loses no text: chunks are exact spans that cover the document end to end', () => {
    fc.assert(
      fc.property(documentText, options, (text, opts) => {
        const chunks = chunkText(text, opts);
        if (text.length === 0) return chunks.length === 0;
        expect(chunks[0].start).toBe(0);
        expect(chunks[chunks.length - 1].end).toBe(text.length);
        let rebuilt = '';
        chunks.forEach((chunk, i) => {
          expect(chunk.text).toBe(text.slice(chunk.start, chunk.end));
          expect(chunk.index).toBe(i);
          if (i > 0) expect(chunk.start).toBeLessThanOrEqual(chunks[i - 1].end);
          rebuilt += text.slice(i === 0 ? chunk.start : chunks[i - 1].end, chunk.end);
        });
        expect(rebuilt).toBe(text);
        return true;
      }),
      { numRuns: 300 },
    );
  });

  test('keeps every chunk within size and every overlap within the overlap, and always moves forward', () => {
    fc.assert(
      fc.property(documentText, options, (text, opts) => {
        const chunks = chunkText(text, opts);
        chunks.forEach((chunk, i) => {
          expect(chunk.end - chunk.start).toBeLessThanOrEqual(opts.size);
          expect(chunk.end).toBeGreaterThan(chunk.start);
          if (i > 0) {
            expect(chunks[i - 1].end - chunk.start).toBeLessThanOrEqual(opts.overlap);
            expect(chunk.start).toBeGreaterThan(chunks[i - 1].start);
          }
        });
      }),
      { numRuns: 300 },
    );
  });

  test('never splits a surrogate pair when it has a choice', () => {
    const text = '😀'.repeat(50);
    for (const chunk of chunkText(text, { size: 7, overlap: 2 })) {
      expect(chunk.text).not.toMatch(/^[\uDC00-\uDFFF]|[\uD800-\uDBFF]$/);
    }
  });

  test('breaks at sentence boundaries and overlaps by whole sentences', () => {
    const text = 'One is first. Two is second. Three is third. Four is fourth.';
    const chunks = chunkText(text, { size: 32, overlap: 16 });
    expect(chunks[0].text).toBe('One is first. Two is second. ');
    // The second chunk starts with the last sentence of the first (15 characters <= 16) and fits the next one.
    expect(chunks[1].text).toBe('Two is second. Three is third. ');
  });

  test('cuts a sentence longer than the size at whitespace', () => {
    const chunks = chunkText('aaaa bbbb cccc dddd', { size: 10, overlap: 0 });
    expect(chunks.map((chunk) => chunk.text)).toEqual(['aaaa bbbb ', 'cccc dddd']);
  });

  test('rejects options that break the guarantees, naming the field', () => {
    expect(chunkingOptionsProblem({ size: 100, overlap: 100 })).toMatch(/^overlap: must be below size/);
    expect(chunkingOptionsProblem({ size: 0, overlap: 0 })).toMatch(/^size:/);
    expect(() => chunkText('text', { size: 10, overlap: -1 })).toThrow(/overlap: must be a whole number >= 0/);
  });
});
