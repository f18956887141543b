// The project's serializer: a compact binary form for the values that dominate queue traffic
// (numbers, strings, booleans, null/undefined, bigints, byte arrays, and arrays, plain objects,
// Maps and Sets of those), and V8's own structured-clone serializer for the other objects (Date,
// RegExp, Error, other typed arrays), embedded as a tagged blob. What a value may hold, where
// shared objects are found inside it and what is refused is core/transfer.ts's kindOf, the same
// classification a process's arguments go through, so both accept and refuse the same values.
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
// 13   shared object         broker id (tag 6 payload): an AioLock, AioQueue, AioConnection...,
//                            a SharedArrayBuffer or a view over one
// 14   proxy                 its record inline (a plain object: server address, object id)
// 15   Map                   u32 count + (key + value)*
// 16   Set                   u32 count + items
// 17   Python tuple          as an array; read back as a PyTuple (py-tuple.ts), so a tuple a Python
//                            client put in a hosted queue reaches the next Python client as one
//
// Maps and Sets are written here rather than in the V8 blob so that a shared object inside one
// is found: V8's serializer would copy a lock's fields and the receiver would get a dead object.

import { serialize as v8Serialize, deserialize as v8Deserialize } from 'node:v8'
import { Kind, TreePath, objectKindOf, rebuildTree, reduceShared, reduceSharedMemory, refuseClone, refuseValue, type Reduced, type Shareable } from '../core/transfer.js'
import { fetchShared, storeShared } from './broker.js'
import { ValueError } from '../core/errors.js'
import { PyTuple } from './py-tuple.js'
import { Growable } from './growable.js'
import { setOwnKey } from '../core/own-key.js'

const UNDEFINED = 0, NULL = 1, FALSE = 2, TRUE = 3, INT32 = 4, FLOAT64 = 5, STRING = 6, ARRAY = 7
const OBJECT = 8, BYTES = 9, BUFFER = 10, BIGINT = 11, V8 = 12, SHARED = 13, PORTABLE = 14, MAP = 15, SET = 16, TUPLE = 17

/** The serializer's writer; `encode` reuses one per thread, so a small item allocates nothing. */
class Writer extends Growable {
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
    // The length given: by default it is the rest of the buffer, and past 2 GiB (a buffer that a
    // large value grew) Node wrote nothing, so every such string after it went out empty.
    const n = buf.write(s, this.pos + 4, len * 3, 'utf8')
    this.buf.writeUInt32LE(n, this.pos)
    this.pos += 4 + n
  }
  bytes(b: Uint8Array): void {
    this.u32(b.length)
    this.raw(b)
  }
}

const writer = new Writer(4096)
/** Strings up to this many units take the byte-by-byte ASCII path. */
const SHORT = 24

const path = new TreePath()

let sharedCount = 0
/** How many shared objects this thread has encoded so far: tells whether a message carries one. */
export function sharedWritten(): number {
  return sharedCount
}

/**
 * A shared object (lock, queue, connection..., or shared memory itself) goes by reference: its
 * record waits at the broker.
 */
function writeShared(w: Writer, record: Reduced): void {
  // Counted either way: a reader must load the classes before it can rebuild a proxy too.
  sharedCount++
  if (record.portable) {
    // A proxy holds no memory of this process: its record (address, id) goes inline.
    w.u8(PORTABLE)
    write(w, record)
    return
  }
  w.u8(SHARED)
  w.string(storeShared(record))
}

function write(w: Writer, v: unknown): void {
  // Primitives are classified straight off typeof, as kindOf does, without its call: they are
  // most of the traffic, and switching on kindOf's result made small objects ~10% slower.
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
      if (v === null) return w.u8(NULL)
      return writeObject(w, v)
    default:
      refuseValue(path, v)
  }
}

function writeObject(w: Writer, v: object): void {
  const kind = objectKindOf(v)
  switch (kind) {
    case Kind.ARRAY: {
      const items = v as unknown[]
      w.u8(v instanceof PyTuple ? TUPLE : ARRAY)
      w.u32(items.length)
      for (let i = 0; i < items.length; i++) {
        path.index(i)
        write(w, items[i])
        path.leave()
      }
      return
    }
    case Kind.PLAIN: {
      const keys = Object.keys(v)
      w.u8(OBJECT)
      w.u32(keys.length)
      for (const k of keys) {
        w.string(k)
        path.property(k)
        write(w, (v as Record<string, unknown>)[k])
        path.leave()
      }
      return
    }
    case Kind.MAP: {
      const map = v as Map<unknown, unknown>
      w.u8(MAP)
      w.u32(map.size)
      let i = 0
      for (const [key, value] of map) {
        path.mapKey(i++)
        write(w, key)
        path.leave()
        path.mapValue(key)
        write(w, value)
        path.leave()
      }
      return
    }
    case Kind.SET: {
      const set = v as Set<unknown>
      w.u8(SET)
      w.u32(set.size)
      let i = 0
      for (const item of set) {
        path.setItem(i++)
        write(w, item)
        path.leave()
      }
      return
    }
    case Kind.SHARED:
      return writeShared(w, reduceShared(v as Shareable, path, false))
    case Kind.SHARED_MEMORY:
      return writeShared(w, reduceSharedMemory(v as object, path, false))
    case Kind.BYTES:
      w.u8(BYTES)
      w.bytes(v as Uint8Array)
      return
    case Kind.BUFFER:
      w.u8(BUFFER)
      w.bytes(v as Buffer)
      return
    case Kind.CLONE: {
      let blob: Buffer
      try {
        blob = v8Serialize(v)
      } catch (error) {
        refuseClone(path, v, error)
      }
      w.u8(V8)
      w.bytes(blob)
      return
    }
    default:
      throw new Error(`the serializer has no form for kind ${kind} at ${path}`)
  }
}

/**
 * Encodes `value` into this thread's scratch buffer and returns its length in bytes; the bytes
 * are `encoded()[0..length)`, valid until the next call. `root` names the value in errors.
 */
export function encode(value: unknown, root = 'item'): number {
  writer.restart()
  path.reset(root)
  write(writer, value)
  return writer.pos
}

/** The scratch buffer `encode` wrote into. */
export function encoded(): Buffer {
  return writer.buf
}

/** `value` encoded into a buffer of its own (the pool keeps its tasks' bytes until a worker takes them). */
export function encodeCopy(value: unknown, root = 'item'): Buffer {
  const n = encode(value, root)
  return Buffer.from(writer.buf.subarray(0, n))
}

/**
 * A small value of plain data (numbers, strings, arrays of them) encoded into a buffer of its
 * own, leaving the scratch buffer alone: safe while another encode is under way (a proxy's
 * reduce() telling its server of a reference, in the middle of encoding the item that holds it).
 */
export function encodeAside(value: unknown): Buffer {
  const w = new Writer(64)
  write(w, value)
  return w.buf.subarray(0, w.pos)
}

// Decoding state lives in module variables: no reader object per call.
let rbuf: Buffer = Buffer.alloc(0)
let rpos = 0
let rstart = 0
let rend = 0
/** Decoding what another process sent over a socket: it cannot hold this process tree's shared memory. */
let rpeer = false

/** Bytes a peer may not have sent in full: a length is checked before anything is read or allocated for it. */
function need(n: number): void {
  if (rpos + n > rend) throw corrupt(`a length of ${n} runs past the end`)
}

function corrupt(what: string): ValueError {
  return new ValueError(`corrupt serialized data: ${what} at byte ${rpos - rstart} of a ${rend - rstart}-byte message`)
}

function readU32(): number {
  need(4)
  const v = rbuf.readUInt32LE(rpos)
  rpos += 4
  return v
}

/** A count of items, each at least one byte long. */
function readCount(): number {
  const n = readU32()
  need(n)
  return n
}

function readString(): string {
  const n = readU32()
  need(n)
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
  need(n)
  const out = Buffer.allocUnsafeSlow(n)
  rbuf.copy(out, 0, rpos, rpos + n)
  rpos += n
  return out
}

// The two forms whose parsers are not ours: what they throw on bad bytes becomes our error.
function readBigInt(): bigint {
  const at = rpos
  const text = readString()
  try {
    return BigInt(text)
  } catch {
    rpos = at
    throw corrupt('a bigint that is not a number')
  }
}

function readV8(): unknown {
  const at = rpos
  const bytes = readBytes()
  try {
    return v8Deserialize(bytes)
  } catch (error) {
    rpos = at
    throw corrupt(`V8 data that does not deserialize (${(error as Error).message})`)
  }
}

function read(): unknown {
  need(1)
  const tag = rbuf[rpos++]
  switch (tag) {
    case UNDEFINED: return undefined
    case NULL: return null
    case FALSE: return false
    case TRUE: return true
    case INT32: {
      need(4)
      const v = rbuf.readInt32LE(rpos)
      rpos += 4
      return v
    }
    case FLOAT64: {
      need(8)
      const v = rbuf.readDoubleLE(rpos)
      rpos += 8
      return v
    }
    case STRING: return readString()
    case ARRAY: {
      const n = readCount()
      const out = new Array(n)
      for (let i = 0; i < n; i++) out[i] = read()
      return out
    }
    case TUPLE: {
      const n = readCount()
      const out = new PyTuple()
      for (let i = 0; i < n; i++) out.push(read())
      return out
    }
    case OBJECT: {
      const n = readCount()
      const out: Record<string, unknown> = {}
      for (let i = 0; i < n; i++) {
        const k = readString()
        setOwnKey(out, k, read())
      }
      return out
    }
    case BYTES: {
      const b = readBytes()
      return new Uint8Array(b.buffer, b.byteOffset, b.length)
    }
    case BUFFER: return readBytes()
    case BIGINT: return readBigInt()
    case MAP: {
      const n = readCount()
      const out = new Map()
      for (let i = 0; i < n; i++) {
        const k = read()
        out.set(k, read())
      }
      return out
    }
    case SET: {
      const n = readCount()
      const out = new Set()
      for (let i = 0; i < n; i++) out.add(read())
      return out
    }
    case V8: return readV8()
    case SHARED:
      // A broker id means something only inside this process tree; from a peer it would make
      // recv() wait for a record that never comes.
      if (rpeer) throw corrupt('a shared-memory object, which another process cannot send')
      return rebuildTree(fetchShared(readString()))
    case PORTABLE: return rebuildTree(read())
    default:
      rpos--
      throw corrupt(`unknown tag ${tag}`)
  }
}

/** Python's pickle protocols 2 to 5 open with PROTO (0x80) and the protocol number; no tag of ours is 0x80. */
function isPickle(bytes: Buffer, start: number, end: number): boolean {
  return end - start >= 2 && bytes[start] === 0x80 && bytes[start + 1] >= 2 && bytes[start + 1] <= 5
}

/**
 * Decodes what `encode` wrote, from bytes start..end of `bytes` (which may be a view of shared
 * memory: nothing in the result aliases it).
 */
export function decode(bytes: Buffer, start = 0, end = bytes.length): unknown {
  return decodeAs(bytes, start, end, false)
}

/** `decode` for a message from another process (a socket connection): shared-memory objects are refused. */
export function decodeFromPeer(bytes: Buffer, start = 0, end = bytes.length): unknown {
  return decodeAs(bytes, start, end, true)
}

function decodeAs(bytes: Buffer, start: number, end: number, peer: boolean): unknown {
  // Saved and restored: a shared object's rebuild may decode again inside this call.
  const saved = rbuf
  const savedPos = rpos
  const savedStart = rstart
  const savedEnd = rend
  const savedPeer = rpeer
  rbuf = bytes
  rpos = rstart = start
  rend = end
  rpeer = peer
  try {
    if (isPickle(bytes, start, end)) {
      throw new ValueError(`received a Python pickle (protocol ${bytes[start + 1]}); open the connection with serializer: 'pickle' to exchange objects with Python (or take the bytes with recvBytes())`)
    }
    const v = read()
    if (rpos !== end) throw corrupt(`${end - rpos} bytes left over`)
    return v
  } finally {
    rbuf = saved
    rpos = savedPos
    rstart = savedStart
    rend = savedEnd
    rpeer = savedPeer
  }
}
