// A growable output buffer, the base of the encoders' writers (serialize.ts, pickle.ts): each
// reuses one per thread, so encoding a small value allocates nothing but its result.

/** A scratch buffer grown past this for one large value is let go when the next value begins. */
const KEEP_BYTES = 64 * 1024 * 1024

export class Growable {
  buf: Buffer
  pos = 0
  constructor(private readonly size: number) {
    this.buf = Buffer.allocUnsafe(size)
  }
  /**
   * Starts a value from the beginning. A buffer that one large value grew is not kept: a thread
   * that once sent 1 GB held 2 GB for ever (the last value's bytes stay valid to whoever has them).
   */
  restart(): void {
    this.pos = 0
    if (this.buf.length > KEEP_BYTES) this.buf = Buffer.allocUnsafe(this.size)
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
