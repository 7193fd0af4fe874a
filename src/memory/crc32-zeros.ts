// zlib's crc32_combine arithmetic (crc32.c: multmodp, x2nmodp), for the one case a flush needs:
// the crc32 of bytes followed by `length` zero bytes, without reading zeros. The segment a
// flush appends to holds rows not yet written (half of it on average), and reading them to
// checksum them cost a page fault a page (~14 µs on this project's VM) besides the scan.
const POLY = 0xedb88320;

/** a(x) · b(x) modulo the CRC-32 polynomial, bit-reflected as zlib keeps them. */
function multiplyModP(a: number, b: number): number {
  let m = 0x80000000;
  let product = 0;
  let rest = b;
  for (;;) {
    if ((a & m) !== 0) {
      product ^= rest;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    rest = rest & 1 ? (rest >>> 1) ^ POLY : rest >>> 1;
  }
  return product >>> 0;
}

/** x^(8 · bytes) modulo the polynomial: what `bytes` zero bytes do to a CRC register. */
function shiftOfBytes(bytes: number): number {
  let power = 0x80000000; // x^0
  let square = 0x00800000; // x^8, then x^16, x^32, …
  for (let rest = bytes; rest > 0; rest = Math.floor(rest / 2)) {
    if (rest % 2 === 1) power = multiplyModP(square, power);
    square = multiplyModP(square, square);
  }
  return power;
}

/** `crc32(Buffer.alloc(length), crc)`, as node:zlib computes it, in O(log length). */
export function crc32Zeros(crc: number, length: number): number {
  if (length === 0) return crc >>> 0;
  return ~multiplyModP(shiftOfBytes(length), ~crc >>> 0) >>> 0;
}
