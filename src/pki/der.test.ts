import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bitString,
  boolean,
  contextTag,
  DerError,
  enumerated,
  explicit,
  expectTag,
  fromPem,
  generalizedTime,
  header,
  ia5String,
  implicit,
  integer,
  namedBits,
  NULL,
  octetString,
  oid,
  parseDer,
  printableString,
  readBitString,
  readBoolean,
  readInteger,
  readOctetString,
  readOid,
  readString,
  readTime,
  sequence,
  setOf,
  TAG,
  tlv,
  toPem,
  unsignedInteger,
  utf8String,
  wholeSeconds,
  x509Time,
} from './der.ts';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'kiban-der-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const hex = (b: Buffer): string => b.toString('hex');
const h = (s: string): Buffer => Buffer.from(s.replace(/\s/g, ''), 'hex');

/** `openssl asn1parse -i` of `der`, offsets dropped and whitespace collapsed. */
function asn1parse(der: Buffer): string[] {
  const file = path.join(dir, `v${Math.random().toString(36).slice(2)}.der`);
  writeFileSync(file, der);
  const out = execFileSync('openssl', ['asn1parse', '-inform', 'DER', '-i', '-in', file], {
    encoding: 'utf8',
  });
  return out
    .trimEnd()
    .split('\n')
    .map((l) =>
      l
        .replace(/^\s*\d+:/, '')
        .replace(/\s+/g, ' ')
        .trim(),
    );
}

describe('writer', () => {
  it('writes headers with minimal definite lengths', () => {
    expect(hex(header(0x04, 0))).toBe('0400');
    expect(hex(header(0x04, 0x7f))).toBe('047f');
    expect(hex(header(0x04, 0x80))).toBe('048180');
    expect(hex(header(0x04, 0xff))).toBe('0481ff');
    expect(hex(header(0x04, 0x100))).toBe('04820100');
    expect(hex(header(0x04, 0x10000))).toBe('0483010000');
    expect(() => header(0x04, -1)).toThrow(RangeError);
    expect(hex(tlv(0x04, [h('01'), h('0203')]))).toBe('0403010203');
  });

  it('writes INTEGERs minimally with a sign octet when needed', () => {
    expect(hex(integer(0))).toBe('020100');
    expect(hex(integer(127))).toBe('02017f');
    expect(hex(integer(128))).toBe('02020080');
    expect(hex(integer(256))).toBe('02020100');
    expect(hex(integer(2n ** 64n))).toBe('0209010000000000000000');
    expect(() => integer(-1)).toThrow(RangeError);
    expect(hex(unsignedInteger(h('0000ff01')))).toBe('020300ff01');
    expect(hex(unsignedInteger(h('000001')))).toBe('020101');
    expect(hex(unsignedInteger(h('00')))).toBe('020100');
    expect(hex(enumerated(3))).toBe('0a0103');
  });

  it('writes OIDs, including large arcs and the 2.x first-octet rule', () => {
    expect(hex(oid('1.2.840.113549.1.1.11'))).toBe('06092a864886f70d01010b');
    expect(hex(oid('2.999.3'))).toBe('0603883703');
    expect(hex(oid('0.0'))).toBe('060100');
    expect(hex(oid('1.2.3.18446744073709551616'))).toBe('060c2a03828080808080808080' + '00');
    for (const bad of ['1', '1.40', '3.1', '1.2.03', '1..2', '1.2.', 'a.b']) {
      expect(() => oid(bad), bad).toThrow(RangeError);
    }
  });

  it('writes BIT STRINGs and named bits without trailing zero bits', () => {
    expect(hex(bitString(h('ff')))).toBe('030200ff');
    expect(hex(namedBits([5, 6]))).toBe('03020106'); // keyCertSign, cRLSign
    expect(hex(namedBits([0, 1]))).toBe('030206c0'); // digitalSignature, nonRepudiation
    expect(hex(namedBits([0]))).toBe('03020780');
    expect(hex(namedBits([7]))).toBe('03020001');
    expect(hex(namedBits([8]))).toBe('0303070080');
    expect(hex(namedBits([]))).toBe('030100');
  });

  it('writes strings and refuses characters outside their repertoire', () => {
    expect(hex(utf8String('JP'))).toBe('0c024a50');
    expect(hex(printableString("A b'()+,-./:=?"))).toBe('130e4120622728292b2c2d2e2f3a3d3f');
    for (const bad of ['a@b', 'a*b', 'a_b', 'あ', 'a&b', 'a\nb']) {
      expect(() => printableString(bad), bad).toThrow(RangeError);
    }
    expect(hex(ia5String('a@b'))).toBe('1603614062');
    expect(() => ia5String('é')).toThrow(RangeError);
  });

  it('writes SET OF sorted, EXPLICIT and IMPLICIT tags', () => {
    expect(hex(setOf(integer(2), integer(1)))).toBe('3106020101020102');
    expect(hex(setOf(octetString(h('0101')), octetString(h('02'))))).toBe(
      '3107040102040201' + '01',
    );
    expect(hex(explicit(0, integer(2)))).toBe('a003020102');
    expect(hex(implicit(2, integer(5)))).toBe('820105');
    expect(hex(implicit(1, sequence()))).toBe('a100');
    expect(contextTag(3, true)).toBe(0xa3);
    expect(() => contextTag(31, false)).toThrow(RangeError);
    expect(hex(boolean(true))).toBe('0101ff');
    expect(hex(boolean(false))).toBe('010100');
    expect(hex(NULL)).toBe('0500');
  });

  it('writes RFC 5280 times: UTCTime for 1950..2049, GeneralizedTime otherwise', () => {
    expect(x509Time(new Date('2049-12-31T23:59:59Z')).toString('latin1')).toBe(
      '\x17\x0d491231235959Z',
    );
    expect(x509Time(new Date('2050-01-01T00:00:00Z')).toString('latin1')).toBe(
      '\x18\x0f20500101000000Z',
    );
    expect(x509Time(new Date('1950-01-01T00:00:00Z')).toString('latin1')).toBe(
      '\x17\x0d500101000000Z',
    );
    expect(x509Time(new Date('1949-12-31T23:59:59Z')).toString('latin1')).toBe(
      '\x18\x0f19491231235959Z',
    );
    expect(() => generalizedTime(new Date('2023-01-01T00:00:00.500Z'))).toThrow(RangeError);
    expect(wholeSeconds(new Date('2023-01-01T00:00:00.999Z')).toISOString()).toBe(
      '2023-01-01T00:00:00.000Z',
    );
  });

  it('agrees with openssl asn1parse', () => {
    const v = sequence(
      integer(0),
      integer(127),
      integer(128),
      integer(256),
      integer(2n ** 64n),
      unsignedInteger(h('00ff01')),
      enumerated(3),
      boolean(true),
      boolean(false),
      NULL,
      oid('1.2.840.113549.1.1.11'),
      oid('2.999.3'),
      oid('1.2.3.18446744073709551616'),
      octetString(h('abcd')),
      bitString(h('ff')),
      utf8String('公的個人認証'),
      printableString("A b'()+,-./:=?"),
      ia5String('http://x/'),
      x509Time(new Date('2049-12-31T23:59:59Z')),
      x509Time(new Date('2050-01-01T00:00:00Z')),
      setOf(integer(2), integer(1)),
      explicit(0, integer(2)),
      implicit(2, integer(5)),
      implicit(1, sequence()),
      octetString(Buffer.alloc(130, 0x11)),
    );
    expect(asn1parse(v)).toEqual([
      'd=0 hl=4 l= 309 cons: SEQUENCE',
      'd=1 hl=2 l= 1 prim: INTEGER :00',
      'd=1 hl=2 l= 1 prim: INTEGER :7F',
      'd=1 hl=2 l= 2 prim: INTEGER :80',
      'd=1 hl=2 l= 2 prim: INTEGER :0100',
      'd=1 hl=2 l= 9 prim: INTEGER :010000000000000000',
      'd=1 hl=2 l= 3 prim: INTEGER :FF01',
      'd=1 hl=2 l= 1 prim: ENUMERATED :03',
      'd=1 hl=2 l= 1 prim: BOOLEAN :255',
      'd=1 hl=2 l= 1 prim: BOOLEAN :0',
      'd=1 hl=2 l= 0 prim: NULL',
      'd=1 hl=2 l= 9 prim: OBJECT :sha256WithRSAEncryption',
      'd=1 hl=2 l= 3 prim: OBJECT :2.999.3',
      'd=1 hl=2 l= 12 prim: OBJECT :1.2.3.18446744073709551616',
      'd=1 hl=2 l= 2 prim: OCTET STRING [HEX DUMP]:ABCD',
      'd=1 hl=2 l= 2 prim: BIT STRING',
      'd=1 hl=2 l= 18 prim: UTF8STRING :公的個人認証',
      "d=1 hl=2 l= 14 prim: PRINTABLESTRING :A b'()+,-./:=?",
      'd=1 hl=2 l= 9 prim: IA5STRING :http://x/',
      'd=1 hl=2 l= 13 prim: UTCTIME :491231235959Z',
      'd=1 hl=2 l= 15 prim: GENERALIZEDTIME :20500101000000Z',
      'd=1 hl=2 l= 6 cons: SET',
      'd=2 hl=2 l= 1 prim: INTEGER :01',
      'd=2 hl=2 l= 1 prim: INTEGER :02',
      'd=1 hl=2 l= 3 cons: cont [ 0 ]',
      'd=2 hl=2 l= 1 prim: INTEGER :02',
      'd=1 hl=2 l= 1 prim: cont [ 2 ]',
      'd=1 hl=2 l= 0 cons: cont [ 1 ]',
      'd=1 hl=3 l= 130 prim: OCTET STRING [HEX DUMP]:' + '11'.repeat(130),
    ]);
  });
});

describe('reader', () => {
  it('parses nested structures with views of the input', () => {
    const v = sequence(integer(5), sequence(oid('2.5.4.3'), utf8String('x')), octetString(h('')));
    const n = parseDer(v);
    expect(n.tag).toBe(TAG.sequence);
    expect(n.constructed).toBe(true);
    expect(n.bytes.equals(v)).toBe(true);
    expect(n.children).toHaveLength(3);
    expect(readInteger(n.children[0], 'i')).toBe(5n);
    expect(readOid(n.children[1]!.children[0], 'o')).toBe('2.5.4.3');
    expect(readString(n.children[1]!.children[1], 's')).toBe('x');
    expect(readOctetString(n.children[2], 'os')).toHaveLength(0);
    expect(() => expectTag(n.children[0], TAG.oid, 'field')).toThrow(/field: expected tag 0x6/);
    expect(() => expectTag(undefined, TAG.oid, 'field')).toThrow(/field: missing/);
  });

  it('rejects indefinite lengths', () => {
    expect(() => parseDer(h('3080 020100 0000'))).toThrow(/indefinite/);
  });

  it('rejects non-minimal lengths', () => {
    expect(() => parseDer(h('04 8105 0102030405'))).toThrow(/non-minimal/);
    expect(() => parseDer(h('04 820005 0102030405'))).toThrow(/non-minimal/);
    expect(() => parseDer(h('04 82007f' + '00'.repeat(0x7f)))).toThrow(/non-minimal/);
    expect(() => parseDer(h('04 8500000000 01'))).toThrow(/too large/);
    expect(parseDer(h('04 8180' + '00'.repeat(0x80))).content).toHaveLength(0x80);
  });

  it('rejects non-minimal and empty INTEGERs, and reads negative ones', () => {
    expect(() => readInteger(parseDer(h('0202007f')), 'i')).toThrow(/non-minimal/);
    expect(() => readInteger(parseDer(h('0202ff80')), 'i')).toThrow(/non-minimal/);
    expect(() => readInteger(parseDer(h('0200')), 'i')).toThrow(/empty/);
    expect(readInteger(parseDer(h('020200ff')), 'i')).toBe(255n);
    expect(readInteger(parseDer(h('0201ff')), 'i')).toBe(-1n);
    expect(readInteger(parseDer(h('02020080')), 'i')).toBe(128n);
  });

  it('rejects trailing bytes and multi-byte tags', () => {
    expect(() => parseDer(h('020100 00'))).toThrow(/trailing/);
    expect(() => parseDer(h('1f2201 00'))).toThrow(/multi-byte/);
  });

  it('rejects every truncation of a valid encoding', () => {
    const v = sequence(
      integer(2n ** 100n),
      sequence(oid('1.2.840.113549.1.1.11'), NULL),
      octetString(Buffer.alloc(300, 7)),
    );
    expect(parseDer(v).bytes.equals(v)).toBe(true);
    for (let i = 0; i < v.length; i++) {
      expect(() => parseDer(v.subarray(0, i)), `prefix ${i}`).toThrow(DerError);
    }
  });

  it('rejects a child running past its parent', () => {
    expect(() => parseDer(h('3003 040201'))).toThrow(DerError); // inner length 2, 1 left
    expect(() => parseDer(h('3004 0403 0102 05'))).toThrow(DerError);
  });

  it('enforces depth and node limits', () => {
    let deep: Buffer = NULL;
    for (let i = 0; i < 40; i++) deep = sequence(deep);
    expect(() => parseDer(deep)).toThrow(/too deep/);
    expect(() => parseDer(deep, { maxDepth: 40 })).not.toThrow();
    expect(() => parseDer(deep, { maxDepth: 39 })).toThrow(/too deep/);
    const wide = sequence(...Array.from({ length: 1000 }, () => NULL));
    expect(() => parseDer(wide, { maxNodes: 1000 })).toThrow(/too many/);
    expect(parseDer(wide, { maxNodes: 1001 }).children).toHaveLength(1000);
  });

  it('reads OIDs strictly', () => {
    expect(readOid(parseDer(h('0603883703')), 'o')).toBe('2.999.3');
    expect(readOid(parseDer(h('060100')), 'o')).toBe('0.0');
    expect(() => readOid(parseDer(h('0600')), 'o')).toThrow(/length/);
    expect(() => readOid(parseDer(h('06022a86')), 'o')).toThrow(/truncated/);
    expect(() => readOid(parseDer(h('0603 2a8001')), 'o')).toThrow(/non-minimal/);
    expect(() => readOid(parseDer(h('060280 01')), 'o')).toThrow(/non-minimal/);
  });

  it('round-trips OIDs, including arcs beyond 2^64', () => {
    for (const o of [
      '1.2.392.200149.8.5.5.1',
      '2.5.29.32.0',
      '2.999.3',
      '2.100000000000000000000.1',
      '1.39.18446744073709551615.18446744073709551616',
    ]) {
      expect(readOid(parseDer(oid(o)), 'o')).toBe(o);
    }
    const arc = fc.bigInt({ min: 0n, max: 2n ** 128n });
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 }),
        fc.integer({ min: 0, max: 39 }),
        fc.array(arc),
        (a, b, rest) => {
          const dotted = [a, b, ...rest].join('.');
          const enc = oid(dotted);
          return (
            enc.length - 2 > 64 ||
            (readOid(parseDer(enc), 'o') === dotted && asLongForm(enc) === false)
          );
        },
      ),
    );
  });

  it('round-trips INTEGERs', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 2100n }), (v) => {
        return readInteger(parseDer(integer(v)), 'i') === v;
      }),
    );
  });

  it('reads BIT STRINGs and BOOLEANs strictly', () => {
    expect(readBitString(parseDer(h('03020106')), 'b')).toEqual({ bytes: h('06'), unusedBits: 1 });
    expect(() => readBitString(parseDer(h('0300')), 'b')).toThrow(/BIT STRING/);
    expect(() => readBitString(parseDer(h('030108')), 'b')).toThrow(/BIT STRING/);
    expect(() => readBitString(parseDer(h('030107')), 'b')).toThrow(/BIT STRING/);
    expect(() => readBitString(parseDer(h('03020806')), 'b')).toThrow(/BIT STRING/);
    expect(readBoolean(parseDer(h('0101ff')), 'b')).toBe(true);
    expect(readBoolean(parseDer(h('010100')), 'b')).toBe(false);
    expect(() => readBoolean(parseDer(h('010101')), 'b')).toThrow(/BOOLEAN/);
    expect(() => readBoolean(parseDer(h('0102ffff')), 'b')).toThrow(/BOOLEAN/);
  });

  it('reads times, with the 1950/2050 pivot', () => {
    const t = (s: string): Date => readTime(parseDer(utc(s)), 't');
    expect(t('500101000000Z').toISOString()).toBe('1950-01-01T00:00:00.000Z');
    expect(t('491231235959Z').toISOString()).toBe('2049-12-31T23:59:59.000Z');
    expect(readTime(parseDer(generalized('20500101000000Z')), 't').toISOString()).toBe(
      '2050-01-01T00:00:00.000Z',
    );
    for (const bad of [
      '230230000000Z', // 30 February
      '231301000000Z', // month 13
      '230101240000Z', // hour 24
      '230101106000Z', // minute 60
      '230101105960Z', // second 60
      '230100000000Z', // day 0
      '2301010000Z', // no seconds
      '230101000000+0900',
    ]) {
      expect(() => readTime(parseDer(utc(bad)), 't'), bad).toThrow(/bad time/);
    }
    expect(() => readTime(parseDer(generalized('20500101000000.5Z')), 't')).toThrow(/bad time/);
    expect(() => readTime(parseDer(generalized('20241301000000Z')), 't')).toThrow(/bad time/);
    expect(readTime(parseDer(generalized('20240229000000Z')), 't').toISOString()).toBe(
      '2024-02-29T00:00:00.000Z',
    );
    expect(() => readTime(parseDer(generalized('20230229000000Z')), 't')).toThrow(/bad time/);
    // Years below 100 are not shifted into the 1900s.
    expect(readTime(parseDer(generalized('00500101000000Z')), 't').getUTCFullYear()).toBe(50);
    expect(() => readTime(parseDer(utf8String('500101000000Z')), 't')).toThrow(/bad time/);
    fc.assert(
      fc.property(fc.date({ min: new Date('0001-01-01Z'), max: new Date('9999-12-31Z') }), (d) => {
        if (Number.isNaN(d.getTime())) return true;
        const w = wholeSeconds(d);
        return readTime(parseDer(x509Time(w)), 't').getTime() === w.getTime();
      }),
    );
  });

  it('reads strings', () => {
    expect(readString(parseDer(utf8String('公的個人認証')), 's')).toBe('公的個人認証');
    expect(readString(parseDer(printableString('JP')), 's')).toBe('JP');
    expect(readString(parseDer(ia5String('http://x/')), 's')).toBe('http://x/');
    expect(() => readString(parseDer(octetString(h('41'))), 's')).toThrow(/not a string/);
  });
});

describe('PEM', () => {
  it('round-trips with 64-character lines', () => {
    const der = octetString(Buffer.alloc(100, 0xab));
    const pem = toPem(der, 'X509 CRL');
    const lines = pem.trimEnd().split('\n');
    expect(lines[0]).toBe('-----BEGIN X509 CRL-----');
    expect(lines.at(-1)).toBe('-----END X509 CRL-----');
    expect(lines.slice(1, -1).every((l) => l.length <= 64)).toBe(true);
    expect(fromPem(pem, 'X509 CRL').equals(der)).toBe(true);
    expect(fromPem(pem.replace(/\n/g, '\r\n'), 'X509 CRL').equals(der)).toBe(true);
  });

  it('rejects missing blocks and bad base64', () => {
    expect(() => fromPem('nothing', 'CERTIFICATE')).toThrow(DerError);
    const pem = toPem(h('0500'), 'CERTIFICATE');
    expect(() => fromPem(pem, 'PUBLIC KEY')).toThrow(DerError);
    expect(() => fromPem('-----BEGIN X-----\nBQ=A\n-----END X-----', 'X')).toThrow(DerError);
    expect(() => fromPem('-----BEGIN X-----\nBQA\n-----END X-----', 'X')).toThrow(DerError);
  });
});

function utc(s: string): Buffer {
  return tlv(TAG.utcTime, Buffer.from(s, 'latin1'));
}
function generalized(s: string): Buffer {
  return tlv(TAG.generalizedTime, Buffer.from(s, 'latin1'));
}
/** Whether an encoding uses a long-form length (it never should below 128 bytes). */
function asLongForm(enc: Buffer): boolean {
  return enc.length - 2 < 128 && (enc[1]! & 0x80) !== 0;
}
