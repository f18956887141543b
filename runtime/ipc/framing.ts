// CPython's multiprocessing.connection framing on a byte stream: a signed 4-byte big-endian
// length, or -1 followed by an 8-byte length for messages of 2 GiB and more, then the payload.
// Read and written by framed-socket.ts, the one place where a socket speaks it.

/** The largest frame a peer may send unless a listener says otherwise: a peer never sizes our allocations beyond it. */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024
/** The longest frame a relayed process may send (a pool batch or result; our own child, not a peer: stream-relay.ts). */
export const MAX_RELAYED_BYTES = 1 << 30

/** Parses frames from chunks as they arrive; a payload is handed on in parts, as it comes. */
export class FrameReader {
  private readonly header = Buffer.alloc(12)
  private have = 0 // header bytes read
  private need = 4 // header bytes needed: 4, or 12 after the -1 escape
  private remaining = -1 // payload bytes still to come; -1 while reading a header

  /**
   * `start(size)` is called at each frame (false refuses it: the caller has cut the stream off),
   * `part` with each piece of its payload, `bad()` for a frame no peer may send (a negative length,
   * or one over `maxMessageSize`: a peer never sizes our allocations).
   */
  constructor(
    private readonly maxMessageSize: number,
    private readonly start: (size: number) => boolean | void,
    private readonly part: (bytes: Buffer) => void,
    private readonly bad: () => void,
  ) {}

  /** Whether the stream stopped inside a frame (EOF there is a cut-off). */
  get inFrame(): boolean {
    return this.remaining >= 0 || this.have > 0
  }

  /** Feeds a chunk; returns false once the stream was found bad (the rest is not read). */
  push(chunk: Buffer): boolean {
    let at = 0
    while (at < chunk.length) {
      if (this.remaining < 0) {
        const k = Math.min(this.need - this.have, chunk.length - at)
        chunk.copy(this.header, this.have, at, at + k)
        this.have += k
        at += k
        if (this.have < this.need) break
        let size: number
        if (this.need === 4) {
          const n32 = this.header.readInt32BE(0)
          if (n32 === -1) {
            this.need = 12
            continue
          }
          if (n32 < 0) return this.refuse()
          size = n32
        } else {
          const n64 = this.header.readBigUInt64BE(4)
          size = n64 > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(n64)
        }
        this.have = 0
        this.need = 4
        if (size > this.maxMessageSize) return this.refuse()
        if (this.start(size) === false) return false
        this.remaining = size === 0 ? -1 : size
        continue
      }
      const take = Math.min(this.remaining, chunk.length - at)
      this.part(chunk.subarray(at, at + take))
      at += take
      this.remaining -= take
      if (this.remaining === 0) this.remaining = -1
    }
    return true
  }

  private refuse(): false {
    this.bad()
    return false
  }
}

/** The header of a frame of `length` bytes. */
export function frameHeader(length: number): Buffer {
  const head = Buffer.alloc(length > 0x7fffffff ? 12 : 4)
  if (head.length === 12) {
    head.writeInt32BE(-1, 0)
    head.writeBigUInt64BE(BigInt(length), 4)
  } else head.writeInt32BE(length, 0)
  return head
}

/**
 * A whole frame in one buffer (header and a copy of the payload): one write to the socket. With
 * `stamp`, the payload is that u32 (big-endian) and then `payload` (stream-relay.ts RelayEnds.stamp).
 */
export function framed(payload: Uint8Array, stamp?: number): Buffer {
  const extra = stamp === undefined ? 0 : 4
  const length = extra + payload.length
  if (length > 0x7fffffff) return Buffer.concat([frameHeader(length), ...(extra ? [stampBytes(stamp!)] : []), payload])
  const out = Buffer.allocUnsafe(4 + length)
  out.writeInt32BE(length, 0)
  if (extra) out.writeUInt32BE(stamp!, 4)
  out.set(payload, 4 + extra)
  return out
}

function stampBytes(stamp: number): Buffer {
  const b = Buffer.allocUnsafe(4)
  b.writeUInt32BE(stamp, 0)
  return b
}

/** A frame's payload as it arrives in parts. */
export interface FrameSink {
  start(size: number): boolean | void
  part(bytes: Buffer): void
}

/** A partial message's first buffer; it doubles as more comes, up to the message's size. */
const GROW_FROM_BYTES = 64 * 1024

/**
 * Collects whole messages: `message(bytes)` once each frame's payload is complete. A payload that
 * arrives in one piece is handed on as it is, without a copy (it is a view of the chunk read).
 */
export function wholeMessages(message: (bytes: Buffer) => void): FrameSink {
  let buf: Buffer | undefined
  let size = 0
  let filled = 0
  return {
    start(n) {
      size = n
      filled = 0
      buf = undefined
      if (n === 0) message(Buffer.alloc(0))
    },
    part(bytes) {
      if (filled === 0 && bytes.length === size) {
        filled = size
        return message(bytes)
      }
      // Grown as the bytes come, never to the size a header claims: a peer that claims 64 MiB and
      // sends a few bytes held 64 MiB of this process (per connection); now at most twice what it sent.
      const need = filled + bytes.length
      if (!buf || need > buf.length) {
        const grown = Buffer.allocUnsafe(Math.min(size, Math.max(2 * need, GROW_FROM_BYTES)))
        buf?.copy(grown, 0, 0, filled)
        buf = grown
      }
      bytes.copy(buf, filled)
      filled = need
      if (filled === size) {
        const b = buf
        buf = undefined
        message(b)
      }
    },
  }
}

/** A reader of whole messages (see wholeMessages). */
export function messageReader(maxMessageSize: number, message: (bytes: Buffer) => void, bad: () => void): FrameReader {
  const sink = wholeMessages(message)
  return new FrameReader(maxMessageSize, sink.start, sink.part, bad)
}
