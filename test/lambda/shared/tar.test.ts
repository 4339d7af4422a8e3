// The tar reader and writer against the system's GNU tar: archives `tar czf` made are read, archives the
// writer made are extracted by `tar xzf` to the same bytes, and corrupt archives are refused with a
// message that says what is wrong. A property: whatever small files are written are read back.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { BLOCK_SIZE, findTarFile, normalizeTarPath, readTar, readTarGz, TarError, writeTar, writeTarGz } from '../../../lambda/shared/tar';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tar-test-'));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function put(relative: string, data: string | Uint8Array): void {
  const path = join(dir, 'in', relative);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, data);
}

function systemTar(args: readonly string[], cwd = dir): Buffer {
  return execFileSync('tar', args, { cwd });
}

const text = (data: Uint8Array) => Buffer.from(data).toString('utf8');

describe('readTarGz reads what GNU tar writes', () => {
  const update = JSON.stringify({ sampleCount: 120, update: [0.5, -0.25, 1e-9], metrics: { accuracy: 0.91 } });
  const binary = Uint8Array.from({ length: 1500 }, (_, i) => (i * 37) % 256);

  it.each([
    ['gnu', ['--format=gnu']],
    ['ustar', ['--format=ustar']],
    ['pax', ['--format=pax']],
  ])('finds ./update.json beside other files in an archive of `tar czf` (%s format)', (_format, flags) => {
    put('update.json', update);
    put('model/weights.bin', binary);
    put('notes.txt', '');
    systemTar(['czf', join(dir, 'model.tar.gz'), ...flags, '-C', join(dir, 'in'), './update.json', 'model', 'notes.txt']);

    const entries = readTarGz(readFileSync(join(dir, 'model.tar.gz')));

    expect(entries.map((entry) => [entry.name.replace(/\/$/, ''), entry.type])).toEqual([
      ['./update.json', 'file'],
      ['model', 'directory'],
      ['model/weights.bin', 'file'],
      ['notes.txt', 'file'],
    ]);
    expect(text(findTarFile(entries, 'update.json')!.data)).toBe(update);
    expect(Buffer.from(findTarFile(entries, './model/weights.bin')!.data)).toEqual(Buffer.from(binary));
    expect(findTarFile(entries, 'notes.txt')!.data).toHaveLength(0);
    expect(findTarFile(entries, 'model')).toBeUndefined();
    expect(findTarFile(entries, 'missing.json')).toBeUndefined();
    expect(findTarFile(entries, 'update.json')!.mode).toBe(0o644);
    expect(findTarFile(entries, 'update.json')!.mtime).toBeGreaterThan(1_600_000_000);
  });

  it.each([
    ['gnu', '--format=gnu'],
    ['pax', '--format=pax'],
    ['ustar', '--format=ustar'],
  ])('reads names longer than 100 bytes (%s: a long-name entry, a pax path or the ustar prefix)', (_format, flag) => {
    const long = `${'deep-directory-name/'.repeat(6)}${'a-file-with-a-long-name'.repeat(2)}.json`;
    expect(long.length).toBeGreaterThan(100);
    put(long, '{"long":true}');
    systemTar(['czf', join(dir, 'long.tar.gz'), flag, '-C', join(dir, 'in'), long]);

    const entries = readTarGz(readFileSync(join(dir, 'long.tar.gz')));

    expect(text(findTarFile(entries, long)!.data)).toBe('{"long":true}');
  });

  it('reads an uncompressed archive and one without the end-of-archive blocks', () => {
    put('update.json', update);
    systemTar(['cf', join(dir, 'plain.tar'), '-C', join(dir, 'in'), 'update.json']);
    const archive = readFileSync(join(dir, 'plain.tar'));
    const withoutEnd = archive.subarray(0, BLOCK_SIZE + Math.ceil(Buffer.byteLength(update) / BLOCK_SIZE) * BLOCK_SIZE);

    expect(text(findTarFile(readTar(archive), 'update.json')!.data)).toBe(update);
    expect(text(findTarFile(readTar(withoutEnd), 'update.json')!.data)).toBe(update);
  });
});

describe('writeTarGz writes what GNU tar extracts', () => {
  it('is extracted by `tar xzf` to byte-identical files, with their names, modes and mtimes', () => {
    const weights = Uint8Array.from({ length: 4099 }, (_, i) => (i * 131 + 7) % 256);
    const nested = `${'nested-directory/'.repeat(7)}model-parameters.json`;
    const archive = writeTarGz([
      { name: 'model.json', data: JSON.stringify({ parameters: [1, 2.5, -3] }) },
      { name: 'code/weights.bin', data: weights, mode: 0o600, mtime: 1_700_000_000 },
      { name: nested, data: 'ünïcødé ✓' },
      { name: 'empty.txt', data: '' },
      { name: './update.json', data: '{"sampleCount":1}' },
    ]);
    writeFileSync(join(dir, 'out.tar.gz'), archive);
    mkdirSync(join(dir, 'out'));

    systemTar(['xzf', join(dir, 'out.tar.gz'), '-C', join(dir, 'out')]);

    expect(readFileSync(join(dir, 'out', 'model.json'), 'utf8')).toBe('{"parameters":[1,2.5,-3]}');
    expect(readFileSync(join(dir, 'out', 'code', 'weights.bin')).equals(Buffer.from(weights))).toBe(true);
    expect(readFileSync(join(dir, 'out', nested), 'utf8')).toBe('ünïcødé ✓');
    expect(readFileSync(join(dir, 'out', 'empty.txt'))).toHaveLength(0);
    expect(readFileSync(join(dir, 'out', 'update.json'), 'utf8')).toBe('{"sampleCount":1}');
    expect(readTarGz(archive).map((entry) => entry.name)).toEqual(['model.json', 'code/weights.bin', nested, 'empty.txt', './update.json']);
    const listing = systemTar(['tvzf', join(dir, 'out.tar.gz'), '--utc', '--numeric-owner']).toString('utf8');
    expect(listing).toMatch(/^-rw------- 0\/0 +4099 2023-11-14 22:13 code\/weights\.bin$/m);
    expect(listing).toMatch(/^-rw-r--r-- 0\/0 +25 1970-01-01 00:00 model\.json$/m);
  });

  it('gives the same bytes for the same files, so a rewritten artifact is unchanged', () => {
    const files = [{ name: 'model.json', data: '{"a":1}' }];
    expect(Buffer.from(writeTarGz(files)).equals(Buffer.from(writeTarGz(files)))).toBe(true);
    expect(writeTar(files)).toHaveLength(BLOCK_SIZE * 4);
  });

  it.each([
    ['/etc/passwd', /must be a relative path/],
    ['../escape.json', /must be a relative path/],
    ['././twice.json', /must be a relative path/],
    ['a/./b.json', /must be a relative path/],
    ['a//b', /must be a relative path/],
    ['', /must be a relative path/],
    ['x'.repeat(101), /does not fit a ustar header/],
  ])('refuses the name %s', (name, message) => {
    expect(() => writeTar([{ name, data: 'x' }])).toThrow(message);
  });

  it('refuses a name that repeats', () => {
    expect(() =>
      writeTar([
        { name: 'a.json', data: '1' },
        { name: 'a.json', data: '2' },
      ]),
    ).toThrow("the name 'a.json' repeats");
  });
});

describe('bad archives', () => {
  const archive = () => writeTar([{ name: 'update.json', data: JSON.stringify({ sampleCount: 1, update: Array.from({ length: 300 }, (_, i) => i) }) }]);

  it('refuses an archive whose data is cut short, naming the entry', () => {
    const whole = archive();
    expect(() => readTar(whole.subarray(0, BLOCK_SIZE + 100))).toThrow(/truncated: the entry 'update\.json' declares \d+ bytes, 100 are left/);
    expect(() => readTar(whole.subarray(0, BLOCK_SIZE - 12))).toThrow(/truncated: 500 bytes left of a 512-byte header/);
  });

  it('refuses a gzip stream that is cut short, and data that is not gzip', () => {
    const compressed = gzipSync(archive());
    expect(() => readTarGz(compressed.subarray(0, compressed.length - 20))).toThrow(new TarError('truncated: the gzip stream ends early'));
    expect(() => readTarGz(Buffer.from('{"sampleCount":1}'))).toThrow(/^not a gzip archive \(/);
  });

  it('refuses a header whose checksum does not match', () => {
    const corrupt = archive();
    corrupt[3] ^= 0x01; // a bit of the name
    expect(() => readTar(corrupt)).toThrow(/tar header at byte 0: bad header checksum \(stored \d+, computed \d+\)/);
    expect(() => readTar(Buffer.from('x'.repeat(2 * BLOCK_SIZE)))).toThrow(TarError);
  });

  it('refuses an archive that unpacks to more than maxBytes', () => {
    const big = gzipSync(Buffer.alloc(1024 * 1024));
    expect(() => readTarGz(big, { maxBytes: 64 * 1024 })).toThrow('the archive unpacks to more than 65536 bytes');
    expect(readTarGz(big)).toEqual([]); // a megabyte of zeros: the end of an empty archive
  });

  it('refuses more entries than maxEntries', () => {
    const many = writeTar(Array.from({ length: 5 }, (_, i) => ({ name: `f${i}`, data: '' })));
    expect(() => readTar(many, { maxEntries: 4 })).toThrow('the archive holds more than 4 entries');
    expect(readTar(many)).toHaveLength(5);
  });
});

describe('normalizeTarPath', () => {
  it.each([
    ['./update.json', 'update.json'],
    ['/update.json', 'update.json'],
    ['a//./b/', 'a/b'],
    ['update.json', 'update.json'],
  ])('%j is looked up as %j', (name, normalized) => {
    expect(normalizeTarPath(name)).toBe(normalized);
  });
});

describe('properties', () => {
  const segment = fc.stringMatching(/^[A-Za-z0-9_-][A-Za-z0-9._-]{0,30}$/).filter((value) => value !== '.' && value !== '..');
  const name = fc.array(segment, { minLength: 1, maxLength: 4 }).map((segments) => segments.join('/'));
  const files = fc.uniqueArray(
    fc.record({ name, data: fc.uint8Array({ maxLength: 1200 }), mode: fc.constantFrom(0o644, 0o600, 0o755), mtime: fc.integer({ min: 0, max: 2 ** 33 - 1 }) }),
    { selector: (file) => file.name, maxLength: 8 },
  );

  it('reads back every file written, in order, with its bytes, mode and mtime', () => {
    fc.assert(
      fc.property(files, (written) => {
        const read = readTarGz(writeTarGz(written));
        expect(read.map((entry) => ({ name: entry.name, data: Buffer.from(entry.data), mode: entry.mode, mtime: entry.mtime }))).toEqual(
          written.map((file) => ({ name: file.name, data: Buffer.from(file.data), mode: file.mode, mtime: file.mtime })),
        );
        expect(gunzipSync(writeTarGz(written)).length % BLOCK_SIZE).toBe(0);
      }),
      { numRuns: 200 },
    );
  });
});
