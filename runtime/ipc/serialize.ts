// The project's serializer: a compact binary form for the values that dominate queue traffic
// (numbers, strings, booleans, null/undefined, bigints, byte arrays, arrays and plain objects of
// those), and V8's own structured-clone serializer for everything else (Map, Set, Date, RegExp,
// Error, other typed arrays), embedded as a tagged blob. What structured clone refuses
// (functions, Symbols, shared primitives) is refused up front with the value's path.
//
// tag  value                 payload
// 0    undefined             -
// 1    null                  -
// 2/3  false/true            -
// 4    int32                 4 bytes LE
// 5    float64               8 bytes LE
// 6    string                u32 byte length + UTF-8
// 7    array                 u32 count + items
// 8    plain object          u32 count + (string key + value)*
// 9    Uint8Array            u32 length + bytes
// 10   Buffer                u32 length + bytes
// 11   bigint                string form (tag 6 payload)
// 12   V8 structured clone   u32 length + v8.serialize bytes
// 13   shared object         broker id (tag 6 payload): an AioLock, AioQueue, AioConnection...
// 14   proxy                 its record inline (a plain object: server address, object id)

import { serialize as v8Serialize, deserialize as v8Deserialize } from 'node:v8'
import { REDUCE, rebuildTree, type Reduced } from '../core/transfer.js'
import { fetchShared, storeShared } from './broker.js'
import { describeValue } from '../core/args.js'

const UNDEFINED = 0, NULL = 1, FALSE = 2, TRUE = 3, INT32 = 4, FLOAT64 = 5, STRING = 6, ARRAY = 7
const OBJECT = 8, BYTES = 9, BUFFER = 10, BIGINT = 11, V8 = 12, SHARED = 13, PORTABLE = 14

/** Growable output buffer; `encode` reuses one per thread, so a small item allocates nothing. */
class Writer {
  buf = Buffer.allocUnsafe(4096)
  pos = 0
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
  u32(v: number): void {
    this.reserve(4)
    this.buf.writeUInt32LE(v, this.pos)
    this.pos += 4
  }
  string(s: string): void {
    // Room for the worst case of 3 bytes per UTF-16 unit; the length is patched after writing.
    const len = s.length
    this.reserve(4 + len * 3)
    const buf = this.buf
    if (len <= SHORT) {
      // Short ASCII (object keys, small words) byte by byte: cheaper than a call into C++.
      let p = this.pos + 4
      let i = 0
      for (; i < len; i++) {
        const c = s.charCodeAt(i)
        if (c >= 0x80) break
        buf[p++] = c
      }
      if (i === len) {
        buf.writeUInt32LE(len, this.pos)
        this.pos = p
        return
      }
    }
    const n = buf.write(s, this.pos + 4, 'utf8')
    this.buf.writeUInt32LE(n, this.pos)
    this.pos += 4 + n
  }
  bytes(b: Uint8Array): void {
    this.u32(b.length)
    this.reserve(b.length)
    this.buf.set(b, this.pos)
    this.pos += b.length
  }
}

const writer = new Writer()
/** Strings up to this many units take the byte-by-byte ASCII path. */
const SHORT = 24

// The path of the value being written, kept as a stack of keys and only joined into a string for
// an error message: building `item.a[2]` for every field cost more than encoding the field.
const pathKeys: (string | number)[] = []
let pathRoot = 'item'
function pathText(): string {
  return pathRoot + pathKeys.map((k) => (typeof k === 'number' ? `[${k}]` : `.${k}`)).join('')
}

function refuse(value: unknown): never {
  throw new TypeError(`${pathText()} is ${describeValue(value)}, which cannot be sent to another thread`)
}

let sharedCount = 0
/** How many shared objects this thread has encoded so far: tells whether a message carries one. */
export function sharedWritten(): number {
  return sharedCount
}

/** A shared object (lock, queue, connection...) goes by reference: its record waits at the broker. */
function writeShared(w: Writer, v: { [REDUCE](): Reduced }): void {
  const record = v[REDUCE]()
  if ((record as { portable?: boolean }).portable) {
    // A proxy holds no memory of this process: its record (address, id) goes inline.
    w.u8(PORTABLE)
    write(w, record)
    return
  }
  sharedCount++
  w.u8(SHARED)
  w.string(storeShared(record))
}

function write(w: Writer, v: unknown): void {
  switch (typeof v) {
    case 'number':
      if ((v | 0) === v && !Object.is(v, -0)) {
        w.reserve(5)
        w.buf[w.pos] = INT32
        w.buf.writeInt32LE(v, w.pos + 1)
        w.pos += 5
      } else {
        w.reserve(9)
        w.buf[w.pos] = FLOAT64
        w.buf.writeDoubleLE(v, w.pos + 1)
        w.pos += 9
      }
      return
    case 'string':
      w.u8(STRING)
      w.string(v)
      return
    case 'boolean':
      w.u8(v ? TRUE : FALSE)
      return
    case 'undefined':
      w.u8(UNDEFINED)
      return
    case 'bigint':
      w.u8(BIGINT)
      w.string(v.toString())
      return
    case 'object':
      break
    default:
      refuse(v)
  }
  if (v === null) return w.u8(NULL)
  if (Array.isArray(v)) {
    w.u8(ARRAY)
    w.u32(v.length)
    for (let i = 0; i < v.length; i++) {
      pathKeys.push(i)
      write(w, v[i])
      pathKeys.pop()
    }
    return
  }
  if (typeof (v as { [REDUCE]?: unknown })[REDUCE] === 'function') return writeShared(w, v as { [REDUCE](): Reduced })
  const proto = Object.getPrototypeOf(v)
  if (proto === Object.prototype || proto === null) {
    const keys = Object.keys(v)
    w.u8(OBJECT)
    w.u32(keys.length)
    for (const k of keys) {
      w.string(k)
      pathKeys.push(k)
      write(w, (v as Record<string, unknown>)[k])
      pathKeys.pop()
    }
    return
  }
  if (proto === Uint8Array.prototype || proto === Buffer.prototype) {
    w.u8(proto === Buffer.prototype ? BUFFER : BYTES)
    w.bytes(v as Uint8Array)
    return
  }
  let blob: Buffer
  try {
    blob = v8Serialize(v)
  } catch (error) {
    throw new TypeError(`${pathText()} (${describeValue(v)}) cannot be sent to another thread: ${(error as Error).message}`)
  }
  w.u8(V8)
  w.bytes(blob)
}

/**
 * Encodes `value` into this thread's scratch buffer and returns its length in bytes; the bytes
 * are `encoded()[0..length)`, valid until the next call. `path` names the value in errors.
 */
export function encode(value: unknown, path = 'item'): number {
  writer.pos = 0
  pathRoot = path
  pathKeys.length = 0
  write(writer, value)
  return writer.pos
}

/** The scratch buffer `encode` wrote into. */
export function encoded(): Buffer {
  return writer.buf
}

/** Encodes `value` into a fresh Buffer of its own. */
export function encodeCopy(value: unknown, path = 'item'): Buffer {
  const n = encode(value, path)
  return Buffer.from(writer.buf.subarray(0, n))
}

// Decoding state lives in module variables: no reader object per call.
let rbuf: Buffer = Buffer.alloc(0)
let rpos = 0

function readU32(): number {
  const v = rbuf.readUInt32LE(rpos)
  rpos += 4
  return v
}

function readString(): string {
  const n = readU32()
  if (n <= SHORT) {
    let s = ''
    let i = rpos
    const end = i + n
    for (; i < end; i++) {
      const c = rbuf[i]
      if (c >= 0x80) break
      s += String.fromCharCode(c)
    }
    if (i === end) {
      rpos = end
      return s
    }
  }
  const s = rbuf.toString('utf8', rpos, rpos + n)
  rpos += n
  return s
}

function readBytes(): Buffer {
  const n = readU32()
  const out = Buffer.allocUnsafeSlow(n)
  rbuf.copy(out, 0, rpos, rpos + n)
  rpos += n
  return out
}

function read(): unknown {
  const tag = rbuf[rpos++]
  switch (tag) {
    case UNDEFINED: return undefined
    case NULL: return null
    case FALSE: return false
    case TRUE: return true
    case INT32: {
      const v = rbuf.readInt32LE(rpos)
      rpos += 4
      return v
    }
    case FLOAT64: {
      const v = rbuf.readDoubleLE(rpos)
      rpos += 8
      return v
    }
    case STRING: return readString()
    case ARRAY: {
      const n = readU32()
      const out = new Array(n)
      for (let i = 0; i < n; i++) out[i] = read()
      return out
    }
    case OBJECT: {
      const n = readU32()
      const out: Record<string, unknown> = {}
      for (let i = 0; i < n; i++) {
        const k = readString()
        out[k] = read()
      }
      return out
    }
    case BYTES: {
      const b = readBytes()
      return new Uint8Array(b.buffer, b.byteOffset, b.length)
    }
    case BUFFER: return readBytes()
    case BIGINT: return BigInt(readString())
    case V8: return v8Deserialize(readBytes())
    case SHARED: return rebuildTree(fetchShared(readString()))
    case PORTABLE: return rebuildTree(read())
    default:
      throw new Error(`corrupt serialized data: unknown tag ${tag} at byte ${rpos - 1}`)
  }
}

/**
 * Decodes what `encode` wrote, from bytes start..end of `bytes` (which may be a view of shared
 * memory: nothing in the result aliases it).
 */
export function decode(bytes: Buffer, start = 0, end = bytes.length): unknown {
  const saved = rbuf
  const savedPos = rpos
  rbuf = bytes
  rpos = start
  try {
    const v = read()
    if (rpos !== end) throw new Error(`corrupt serialized data: ${end - rpos} bytes left over`)
    return v
  } finally {
    rbuf = saved
    rpos = savedPos
  }
}
