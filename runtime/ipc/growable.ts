// A growable output buffer, the base of the encoders' writers (serialize.ts, pickle.ts): each
// reuses one per thread, so encoding a small value allocates nothing but its result.

export class Growable {
  buf: Buffer
  pos = 0
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size)
  }
  /** Room for `n` more bytes at `pos`. */
  reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n))
    this.buf.copy(next, 0, 0, this.pos)
    this.buf = next
  }
  u8(v: number): void {
    this.reserve(1)
    this.buf[this.pos++] = v
  }
  raw(b: Uint8Array): void {
    this.reserve(b.length)
    this.buf.set(b, this.pos)
    this.pos += b.length
  }
}
