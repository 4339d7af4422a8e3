// Tar archives, read and written without a dependency: what a SageMaker training job leaves in S3
// (`model.tar.gz`, made by the container's own `tar czf`) and what a model's artifact has to be for
// SageMaker hosting. Pure logic: no AWS imports; gzip is node:zlib's.
//
// The format (POSIX.1-1988 ustar, with the GNU and POSIX.1-2001 pax extensions a reader meets in practice):
// the archive is a sequence of 512-byte blocks. Each entry is one header block and its data, padded with
// zeros to a whole block; two zero blocks end the archive (a reader accepts an archive that just stops
// after an entry, as GNU tar does). A header holds the name (100 bytes; ustar adds a 155-byte prefix,
// joined with '/'), the mode, owner, size and mtime as octal ASCII (GNU writes sizes ≥ 8 GiB in base 256:
// the first byte's high bit set, then big-endian binary), the checksum (the sum of the header's bytes with
// the checksum field counted as eight spaces, unsigned; very old writers summed signed bytes) and the type.
// GNU tar stores a name longer than 100 bytes in an extra entry of type 'L' whose data is the name of the
// next entry; pax ('x') entries carry `length key=value\n` records, of which `path` and `size` override the
// next header's fields. Global pax headers ('g') and every other type are read past.
//
// References: POSIX.1-2017 `pax`, "ustar Interchange Format" and "pax Interchange Format";
// GNU tar manual, "Basic Tar Format" (https://www.gnu.org/software/tar/manual/html_node/Standard.html).
import { gunzipSync, gzipSync } from 'node:zlib';

/** An archive that cannot be read (or files that cannot be written as one). The message says where and why. */
export class TarError extends Error {
  override readonly name = 'TarError';
}

export const BLOCK_SIZE = 512;

export type TarEntryType = 'file' | 'directory' | 'link' | 'other';

/** One entry of an archive as read. */
export interface TarEntry {
  /** The name as stored (`./update.json`, `model/weights.bin`); see {@link normalizeTarPath}. */
  readonly name: string;
  readonly type: TarEntryType;
  /** The file's bytes; empty for anything but a file. */
  readonly data: Uint8Array;
  /** Permission bits (0o644). */
  readonly mode: number;
  /** Modification time, seconds since the epoch. */
  readonly mtime: number;
}

/** A file to write. */
export interface TarFile {
  /** A relative path with '/' separators: no leading '/', no '.' or '..' segments (but a leading './'), at most 255 bytes. */
  readonly name: string;
  /** The bytes, or text (written as UTF-8). */
  readonly data: Uint8Array | string;
  /** Permission bits; default 0o644. */
  readonly mode?: number;
  /** Modification time, seconds since the epoch; default 0, so the same files make the same archive. */
  readonly mtime?: number;
}

export interface ReadTarOptions {
  /** Refuse archives with more entries than this (default 10 000). */
  readonly maxEntries?: number;
}

export interface ReadTarGzOptions extends ReadTarOptions {
  /** Refuse archives that unpack to more than this many bytes (default 512 MiB): a small gzip can unpack to gigabytes. */
  readonly maxBytes?: number;
}

const DEFAULT_MAX_ENTRIES = 10_000;
const DEFAULT_MAX_BYTES = 512 * 1024 * 1024;
/** The largest size 11 octal digits hold (8 GiB − 1). */
const MAX_OCTAL_SIZE = 0o77777777777;

const utf8 = new TextDecoder('utf-8');
const encoder = new TextEncoder();

// ---------------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------------

/** The text of a NUL-terminated header field. */
function field(header: Uint8Array, offset: number, length: number): string {
  let end = offset;
  while (end < offset + length && header[end] !== 0) end += 1;
  return utf8.decode(header.subarray(offset, end));
}

/**
 * A numeric header field: octal ASCII (leading spaces or zeros, ended by NUL or space), or GNU base 256
 * (high bit of the first byte set). Throws on anything else.
 */
function numberField(header: Uint8Array, offset: number, length: number, what: string, where: string): number {
  const first = header[offset]!;
  if ((first & 0x80) !== 0) {
    if (first === 0xff) throw new TarError(`${where}: the ${what} field holds a negative base-256 number`);
    let value = first & 0x7f;
    for (let i = offset + 1; i < offset + length; i += 1) {
      value = value * 256 + header[i]!;
      if (!Number.isSafeInteger(value)) throw new TarError(`${where}: the ${what} field is too large`);
    }
    return value;
  }
  const text = field(header, offset, length).trim();
  if (text.length === 0) return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarError(`${where}: the ${what} field is not an octal number ('${text}')`);
  return parseInt(text, 8);
}

function isZeroBlock(block: Uint8Array): boolean {
  for (const byte of block) if (byte !== 0) return false;
  return true;
}

/** The stored checksum matches the header's unsigned byte sum (or the signed one of very old writers). */
function checksumMatches(header: Uint8Array, where: string): void {
  const stored = numberField(header, 148, 8, 'checksum', where);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK_SIZE; i += 1) {
    const byte = i >= 148 && i < 156 ? 0x20 : header[i]!;
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  if (stored !== unsigned && stored !== signed) {
    throw new TarError(`${where}: bad header checksum (stored ${stored}, computed ${unsigned}): the archive is corrupt or not a tar archive`);
  }
}

/** The records of a pax extended header: `<length> <key>=<value>\n`, the length counting the whole record in bytes. */
function paxRecords(data: Uint8Array, where: string): Map<string, string> {
  const records = new Map<string, string>();
  let offset = 0;
  while (offset < data.length) {
    if (data[offset] === 0) break;
    let space = offset;
    while (space < data.length && data[space] !== 0x20) space += 1;
    const length = Number(utf8.decode(data.subarray(offset, space)));
    if (!Number.isSafeInteger(length) || length <= space - offset || offset + length > data.length || data[offset + length - 1] !== 0x0a) {
      throw new TarError(`${where}: a malformed pax extended header record`);
    }
    const record = utf8.decode(data.subarray(space + 1, offset + length - 1));
    const equals = record.indexOf('=');
    if (equals <= 0) throw new TarError(`${where}: a malformed pax extended header record`);
    records.set(record.slice(0, equals), record.slice(equals + 1));
    offset += length;
  }
  return records;
}

function entryType(flag: string): TarEntryType {
  switch (flag) {
    case '0':
    case '':
    case '7':
      return 'file';
    case '5':
      return 'directory';
    case '1':
    case '2':
      return 'link';
    default:
      return 'other';
  }
}

/**
 * Reads an (uncompressed) tar archive. Throws {@link TarError} for a truncated archive (a header or data
 * that runs past its end), a header whose checksum does not match, a numeric field that is not a number
 * and more entries than `maxEntries`. The entries' data are views into `archive`, not copies.
 */
export function readTar(archive: Uint8Array, options: ReadTarOptions = {}): TarEntry[] {
  const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const entries: TarEntry[] = [];
  let offset = 0;
  let longName: string | undefined;
  let pax: Map<string, string> | undefined;
  while (offset < archive.length) {
    const where = `tar header at byte ${offset}`;
    if (archive.length - offset < BLOCK_SIZE) {
      if (isZeroBlock(archive.subarray(offset))) break;
      throw new TarError(`${where}: truncated: ${archive.length - offset} bytes left of a ${BLOCK_SIZE}-byte header`);
    }
    const header = archive.subarray(offset, offset + BLOCK_SIZE);
    if (isZeroBlock(header)) break; // the end-of-archive marker
    checksumMatches(header, where);
    const flag = String.fromCharCode(header[156]!).replace('\0', '');
    const magic = field(header, 257, 6);
    let name = field(header, 0, 100);
    // ustar ('ustar\0') puts the leading directories in the prefix; GNU ('ustar  \0') uses that space for other fields.
    if (magic === 'ustar' && header[262] === 0) {
      const prefix = field(header, 345, 155);
      if (prefix.length > 0) name = `${prefix}/${name}`;
    }
    let size = numberField(header, 124, 12, 'size', where);
    if (pax?.has('size')) {
      size = Number(pax.get('size'));
      if (!Number.isSafeInteger(size) || size < 0) throw new TarError(`${where}: the pax size '${pax.get('size')}' is not a number of bytes`);
    }
    const dataStart = offset + BLOCK_SIZE;
    if (dataStart + size > archive.length) {
      throw new TarError(`${where}: truncated: the entry '${longName ?? pax?.get('path') ?? name}' declares ${size} bytes, ${archive.length - dataStart} are left`);
    }
    const data = archive.subarray(dataStart, dataStart + size);
    offset = dataStart + Math.ceil(size / BLOCK_SIZE) * BLOCK_SIZE;
    if (flag === 'L') {
      longName = field(data, 0, data.length);
      continue;
    }
    if (flag === 'x') {
      pax = paxRecords(data, where);
      continue;
    }
    if (flag === 'g' || flag === 'K') continue;
    if (entries.length >= maxEntries) throw new TarError(`the archive holds more than ${maxEntries} entries`);
    const type = entryType(flag);
    entries.push({
      name: pax?.get('path') ?? longName ?? name,
      type,
      data: type === 'file' ? data : new Uint8Array(0),
      mode: numberField(header, 100, 8, 'mode', where) & 0o7777,
      mtime: numberField(header, 136, 12, 'mtime', where),
    });
    longName = undefined;
    pax = undefined;
  }
  return entries;
}

/** `update.json` for `./update.json`, `/update.json`, `a//b` → `a/b`: the name an archive's file is looked up by. */
export function normalizeTarPath(name: string): string {
  return name
    .split('/')
    .filter((segment) => segment.length > 0 && segment !== '.')
    .join('/');
}

/** The regular file named `name` (compared after {@link normalizeTarPath}); the last one if it repeats, as tar extracts. */
export function findTarFile(entries: readonly TarEntry[], name: string): TarEntry | undefined {
  const wanted = normalizeTarPath(name);
  let found: TarEntry | undefined;
  for (const entry of entries) if (entry.type === 'file' && normalizeTarPath(entry.name) === wanted) found = entry;
  return found;
}

/**
 * Reads a gzip-compressed tar archive (`.tar.gz`, `.tgz`). Throws {@link TarError} for data that is not
 * gzip, a truncated gzip stream, an archive that unpacks to more than `maxBytes`, and everything
 * {@link readTar} refuses.
 */
export function readTarGz(compressed: Uint8Array, options: ReadTarGzOptions = {}): TarEntry[] {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  let archive: Buffer;
  try {
    archive = gunzipSync(compressed, { maxOutputLength: maxBytes });
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ERR_BUFFER_TOO_LARGE') throw new TarError(`the archive unpacks to more than ${maxBytes} bytes`);
    const message = (error as Error).message;
    if (/unexpected end of file/i.test(message)) throw new TarError('truncated: the gzip stream ends early');
    throw new TarError(`not a gzip archive (${message})`);
  }
  return readTar(archive, options);
}

// ---------------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------------

function writeString(header: Uint8Array, offset: number, length: number, text: string, what: string): void {
  const bytes = encoder.encode(text);
  if (bytes.length > length) throw new TarError(`the ${what} '${text}' is longer than the ${length} bytes its header field holds`);
  header.set(bytes, offset);
}

/** Octal, zero-padded to length − 1 digits and NUL-terminated. */
function writeOctal(header: Uint8Array, offset: number, length: number, value: number, what: string): void {
  const digits = value.toString(8);
  if (!Number.isSafeInteger(value) || value < 0 || digits.length > length - 1) throw new TarError(`the ${what} ${value} does not fit its tar header field`);
  header.set(encoder.encode(digits.padStart(length - 1, '0')), offset);
}

/** Splits a name into the ustar prefix and name fields (≤ 155 and ≤ 100 bytes), at a '/'. */
function splitName(name: string): { prefix: string; name: string } {
  if (encoder.encode(name).length <= 100) return { prefix: '', name };
  for (let slash = name.indexOf('/'); slash >= 0; slash = name.indexOf('/', slash + 1)) {
    const prefix = name.slice(0, slash);
    const rest = name.slice(slash + 1);
    if (encoder.encode(prefix).length <= 155 && encoder.encode(rest).length <= 100) return { prefix, name: rest };
  }
  throw new TarError(`the name '${name}' does not fit a ustar header (at most 100 bytes after the last directory that fits in 155)`);
}

function checkName(name: string): void {
  // A leading './' is what `tar czf archive.tar.gz ./file` writes; it is kept as given.
  const segments = (name.startsWith('./') ? name.slice(2) : name).split('/');
  if (name.length === 0 || name.startsWith('/') || name.includes('\0') || segments.some((segment) => segment === '' || segment === '.' || segment === '..')) {
    throw new TarError(`the name '${name}' must be a relative path with no empty, '.' or '..' segments`);
  }
}

function header(file: TarFile, size: number): Uint8Array {
  const block = new Uint8Array(BLOCK_SIZE);
  const { prefix, name } = splitName(file.name);
  writeString(block, 0, 100, name, 'name');
  writeOctal(block, 100, 8, file.mode ?? 0o644, 'mode');
  writeOctal(block, 108, 8, 0, 'uid');
  writeOctal(block, 116, 8, 0, 'gid');
  writeOctal(block, 124, 12, size, 'size');
  writeOctal(block, 136, 12, Math.floor(file.mtime ?? 0), 'mtime');
  block[156] = 0x30; // '0': a regular file
  block.set(encoder.encode('ustar\u000000'), 257); // magic 'ustar\0', version '00'
  writeString(block, 345, 155, prefix, 'directory');
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  // Six octal digits, NUL, space: the layout every tar writes.
  block.set(encoder.encode(`${sum.toString(8).padStart(6, '0')}\u0000 `), 148);
  return block;
}

/**
 * Writes files as a ustar archive, in the order given, ended by two zero blocks. The same files (with the
 * same mtimes) always give the same bytes. Throws {@link TarError} for a name that is not a safe relative
 * path, does not fit a ustar header or repeats, and for a file of 8 GiB or more.
 */
export function writeTar(files: readonly TarFile[]): Uint8Array {
  const seen = new Set<string>();
  const parts: Uint8Array[] = [];
  let total = 0;
  for (const file of files) {
    checkName(file.name);
    if (seen.has(file.name)) throw new TarError(`the name '${file.name}' repeats`);
    seen.add(file.name);
    const data = typeof file.data === 'string' ? encoder.encode(file.data) : file.data;
    if (data.length > MAX_OCTAL_SIZE) throw new TarError(`'${file.name}' is ${data.length} bytes; a ustar entry holds less than 8 GiB`);
    parts.push(header(file, data.length), data);
    const padding = (BLOCK_SIZE - (data.length % BLOCK_SIZE)) % BLOCK_SIZE;
    total += BLOCK_SIZE + data.length + padding;
    if (padding > 0) parts.push(new Uint8Array(padding));
  }
  const archive = new Uint8Array(total + 2 * BLOCK_SIZE);
  let offset = 0;
  for (const part of parts) {
    archive.set(part, offset);
    offset += part.length;
  }
  return archive;
}

/** {@link writeTar}, gzip-compressed (`.tar.gz`). */
export function writeTarGz(files: readonly TarFile[]): Buffer {
  return gzipSync(writeTar(files));
}
