// Turns the documents dropped in the knowledge base's S3 prefix into plain text for chunking, and names
// what is wrong with the ones that cannot be. Pure: no AWS imports.
//
// Supported: .txt, .md / .markdown, .html / .htm, .json. PDF is not: the PDF parsers on npm either pull
// in a browser-sized runtime (pdfjs) or are unmaintained, and a Lambda bundle of several MiB would cost
// every ingestion cold start; convert PDFs to text upstream.
import { createHash } from 'node:crypto';

export const SUPPORTED_EXTENSIONS = ['txt', 'md', 'markdown', 'html', 'htm', 'json'] as const;

export type DocumentFormat = 'text' | 'markdown' | 'html' | 'json';

/** A document that cannot be ingested; the message names the key and the reason. */
export class MalformedDocumentError extends Error {
  constructor(
    readonly key: string,
    readonly reason: string,
  ) {
    super(`${key}: ${reason}`);
    this.name = 'MalformedDocumentError';
  }
}

export interface ParsedDocument {
  readonly format: DocumentFormat;
  /** Plain text to chunk. */
  readonly text: string;
  /** The HTML <title>, the first Markdown heading or the JSON `title`, when there is one. */
  readonly title?: string;
}

/** The format of an object key by its extension, or undefined when the extension is not supported. */
export function documentFormat(key: string): DocumentFormat | undefined {
  const match = /\.([A-Za-z0-9]+)$/.exec(key);
  switch (match?.[1].toLowerCase()) {
    case 'txt':
      return 'text';
    case 'md':
    case 'markdown':
      return 'markdown';
    case 'html':
    case 'htm':
      return 'html';
    case 'json':
      return 'json';
    default:
      return undefined;
  }
}

/** A stable id of a document: the same bucket and key always give the same id, whatever the content. */
export function documentId(bucket: string, key: string): string {
  return createHash('sha256').update(`s3://${bucket}/${key}`).digest('hex').slice(0, 32);
}

const NAMED_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#\d+|[a-zA-Z]+);/g, (entity, body: string) => {
    if (body.startsWith('#x') || body.startsWith('#X')) return safeCodePoint(Number.parseInt(body.slice(2), 16), entity);
    if (body.startsWith('#')) return safeCodePoint(Number.parseInt(body.slice(1), 10), entity);
    return NAMED_ENTITIES[body.toLowerCase()] ?? entity;
  });
}

function safeCodePoint(code: number, fallback: string): string {
  return Number.isInteger(code) && code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : fallback;
}

/** Visible text of an HTML document: scripts, styles and comments dropped, block elements on new lines. */
export function htmlToText(html: string): { text: string; title?: string } {
  const titleMatch = /<title[^>]*>([\s\S]*?)<\/title>/i.exec(html);
  const title = titleMatch ? decodeEntities(titleMatch[1]).replace(/\s+/g, ' ').trim() || undefined : undefined;
  const text = decodeEntities(
    html
      .replace(/<!--[\s\S]*?-->/g, ' ')
      .replace(/<(script|style|noscript|template|head)\b[\s\S]*?<\/\1\s*>/gi, ' ')
      .replace(/<br\s*\/?>/gi, '\n')
      .replace(/<\/(p|div|section|article|h[1-6]|li|tr|table|ul|ol|blockquote|pre|header|footer)\s*>/gi, '\n')
      .replace(/<[^>]*>/g, ' '),
  )
    .replace(/[ \t\f\v\r]+/g, ' ')
    .replace(/ *\n */g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
  return { text, title };
}

/**
 * Text of a JSON document: its `text`, `content` or `body` string when it has one, else every string
 * value as `path: value` lines, so that a record's fields stay searchable by name.
 */
function jsonToText(key: string, raw: string): { text: string; title?: string } {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (error) {
    throw new MalformedDocumentError(key, `not valid JSON (${(error as Error).message})`);
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const record = value as Record<string, unknown>;
    const title = typeof record.title === 'string' ? record.title : undefined;
    for (const field of ['text', 'content', 'body']) {
      if (typeof record[field] === 'string') return { text: record[field] as string, title };
    }
    return { text: flattenStrings(value).join('\n'), title };
  }
  return { text: flattenStrings(value).join('\n') };
}

function flattenStrings(value: unknown, path = ''): string[] {
  if (typeof value === 'string') return [path ? `${path}: ${value}` : value];
  if (typeof value === 'number' || typeof value === 'boolean') return [path ? `${path}: ${String(value)}` : String(value)];
  if (Array.isArray(value)) return value.flatMap((item, index) => flattenStrings(item, `${path}[${index}]`));
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).flatMap(([name, item]) => flattenStrings(item, path ? `${path}.${name}` : name));
  }
  return [];
}

/**
 * Parses a document by the extension of its key. Throws MalformedDocumentError for an unsupported
 * extension, binary content, invalid JSON, or a document with no text at all.
 */
export function parseDocument(key: string, content: string, maxCharacters: number): ParsedDocument {
  const format = documentFormat(key);
  if (format === undefined) {
    throw new MalformedDocumentError(key, `unsupported document type; supported extensions: ${SUPPORTED_EXTENSIONS.map((ext) => `.${ext}`).join(', ')}`);
  }
  if (content.includes('\u0000') || content.includes('\uFFFD')) {
    throw new MalformedDocumentError(key, 'not UTF-8 text (binary content or invalid byte sequences)');
  }
  if (content.length > maxCharacters) {
    throw new MalformedDocumentError(key, `too large: ${content.length} characters; the limit is ${maxCharacters}`);
  }
  let parsed: { text: string; title?: string };
  switch (format) {
    case 'html':
      parsed = htmlToText(content);
      break;
    case 'json':
      parsed = jsonToText(key, content);
      break;
    case 'markdown': {
      const heading = /^#{1,6}[ \t]+(.+?)[ \t#]*$/m.exec(content);
      parsed = { text: content, title: heading?.[1].trim() };
      break;
    }
    default:
      parsed = { text: content };
  }
  if (parsed.text.trim() === '') {
    throw new MalformedDocumentError(key, 'has no text to index');
  }
  return { format, text: parsed.text, ...(parsed.title ? { title: parsed.title } : {}) };
}
