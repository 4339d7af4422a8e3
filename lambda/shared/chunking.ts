// Sentence-aware chunking of document text for retrieval-augmented generation. Pure: no AWS imports.
//
// A chunk is an exact span of the text (`text.slice(start, end)`), so that what is indexed can be traced
// back to the document character for character. The chunker guarantees, for any text:
//   - every chunk is at most `size` characters long;
//   - consecutive chunks overlap by at most `overlap` characters (end of one minus start of the next);
//   - nothing is lost: the first chunk starts at 0, the last ends at text.length, and each chunk starts
//     at or before the end of the previous one;
//   - every chunk starts after the previous one (progress).
// Chunks break at sentence boundaries (Intl.Segmenter) where a sentence fits; a sentence longer than
// `size` is cut at the last whitespace that fits, or hard at `size` where there is none. The overlap is
// made of whole trailing sentences (or pieces) of the previous chunk, as many as fit in `overlap`.

export interface ChunkingOptions {
  /** Maximum characters per chunk (>= 1). */
  readonly size: number;
  /** Maximum characters shared by two consecutive chunks (0 <= overlap < size). */
  readonly overlap: number;
}

export interface Chunk {
  /** Position of the chunk in the document, from 0. */
  readonly index: number;
  readonly text: string;
  /** Offset of the first character in the document text. */
  readonly start: number;
  /** Offset just past the last character. */
  readonly end: number;
}

interface Span {
  readonly start: number;
  readonly end: number;
}

const sentenceSegmenter = new Intl.Segmenter('en', { granularity: 'sentence' });

/** Checks chunking options; returns a message naming the bad field, or undefined. */
export function chunkingOptionsProblem(options: ChunkingOptions): string | undefined {
  if (!Number.isInteger(options.size) || options.size < 1) return `size: must be a whole number >= 1; got ${options.size}`;
  if (!Number.isInteger(options.overlap) || options.overlap < 0) return `overlap: must be a whole number >= 0; got ${options.overlap}`;
  if (options.overlap >= options.size) return `overlap: must be below size (${options.size}); got ${options.overlap}`;
  return undefined;
}

/** Sentence spans of the text, covering it end to end (whitespace stays with the sentence before it). */
export function sentenceSpans(text: string): Span[] {
  const spans: Span[] = [];
  for (const segment of sentenceSegmenter.segment(text)) {
    spans.push({ start: segment.index, end: segment.index + segment.segment.length });
  }
  return spans;
}

/** Whether cutting at `offset` would split a UTF-16 surrogate pair. */
function splitsSurrogatePair(text: string, offset: number): boolean {
  if (offset <= 0 || offset >= text.length) return false;
  const before = text.charCodeAt(offset - 1);
  const after = text.charCodeAt(offset);
  return before >= 0xd800 && before <= 0xdbff && after >= 0xdc00 && after <= 0xdfff;
}

/** Cuts a span longer than `size` into pieces of at most `size`, at whitespace where possible. */
function pieces(text: string, span: Span, size: number): Span[] {
  const result: Span[] = [];
  let start = span.start;
  while (span.end - start > size) {
    let cut = start + size;
    // The last whitespace inside the window, kept with the piece before it.
    let boundary = -1;
    for (let i = cut - 1; i > start; i -= 1) {
      if (/\s/.test(text[i])) {
        boundary = i + 1;
        break;
      }
    }
    if (boundary > start && boundary <= cut) cut = boundary;
    if (splitsSurrogatePair(text, cut) && cut - 1 > start) cut -= 1;
    result.push({ start, end: cut });
    start = cut;
  }
  if (span.end > start) result.push({ start, end: span.end });
  return result;
}

/** Splits text into chunks; throws on options that break the guarantees (see chunkingOptionsProblem). */
export function chunkText(text: string, options: ChunkingOptions): Chunk[] {
  const problem = chunkingOptionsProblem(options);
  if (problem !== undefined) throw new Error(`chunking options: ${problem}`);
  const { size, overlap } = options;
  const units = sentenceSpans(text).flatMap((span) => pieces(text, span, size));
  const chunks: Chunk[] = [];
  let first = 0; // index of the first unit of the current chunk
  while (first < units.length) {
    // Take as many whole units as fit in `size`; at least one (each unit fits on its own).
    let last = first;
    while (last + 1 < units.length && units[last + 1].end - units[first].start <= size) last += 1;
    const start = units[first].start;
    const end = units[last].end;
    chunks.push({ index: chunks.length, text: text.slice(start, end), start, end });
    if (last + 1 >= units.length) break;
    // The next chunk starts with the trailing units of this one that fit in `overlap` and leave room
    // for the next unit; it always starts after this chunk's start, so the loop makes progress.
    let next = last + 1;
    while (next - 1 > first && end - units[next - 1].start <= overlap && units[last + 1].end - units[next - 1].start <= size) next -= 1;
    first = next;
  }
  return chunks;
}
