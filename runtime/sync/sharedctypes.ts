// Value and Array: typed memory in a SharedArrayBuffer, optionally guarded by a lock, like
// Python's multiprocessing.sharedctypes. Typecodes are Python's `array`/ctypes codes.

import { ValueError } from '../core/errors.js'
import { wrapCore } from '../core/transfer.js'
import type { Pending } from '../core/wait.js'
import { RLockCore, lockCoreOf, rebuildLock, type LockLike } from './lock.js'

type Ctor = Int8ArrayConstructor | Uint8ArrayConstructor | Int16ArrayConstructor | Uint16ArrayConstructor |
  Int32ArrayConstructor | Uint32ArrayConstructor | Float32ArrayConstructor | Float64ArrayConstructor |
  BigInt64ArrayConstructor | BigUint64ArrayConstructor

/** Python typecode → element type. 'c' is a byte (char), 'q'/'Q' hold BigInts. */
const TYPECODES = {
  c: Uint8Array, b: Int8Array, B: Uint8Array, h: Int16Array, H: Uint16Array,
  i: Int32Array, I: Uint32Array, l: BigInt64Array, L: BigUint64Array, q: BigInt64Array, Q: BigUint64Array,
  f: Float32Array, d: Float64Array,
} satisfies Record<string, Ctor>

export type Typecode = keyof typeof TYPECODES
export type Element = number | bigint
/**
 * What `value` holds for typecode `C`: a bigint for the 64-bit codes, a 1-byte Buffer for 'c', else a
 * number; any of those for an AioValue whose typecode is not known (`AioValue`, `AioValue<Typecode>`).
 */
export type ValueOf<C extends Typecode> = 0 extends 1 & C ? Element | Buffer : Typecode extends C ? Element | Buffer : C extends 'q' | 'Q' | 'l' | 'L' ? bigint : C extends 'c' ? Buffer : number
/**
 * What an array of typecode `C` holds per item: a bigint for the 64-bit codes, else a number (a
 * byte for 'c'); either for an AioArray whose typecode is not known.
 */
export type ItemOf<C extends Typecode> = 0 extends 1 & C ? Element : Typecode extends C ? Element : C extends 'q' | 'Q' | 'l' | 'L' ? bigint : number
/** `true`/`null`/`undefined`: a new AioRLock; `false`: no lock; or an AioLock/AioRLock to use. */
export type LockOption = boolean | null | undefined | object

function ctorOf(typecode: unknown): Ctor {
  const ctor = typeof typecode === 'string' && Object.hasOwn(TYPECODES, typecode) ? TYPECODES[typecode as Typecode] : undefined
  if (!ctor) {
    throw new TypeError(`typecode must be one of ${Object.keys(TYPECODES).map((c) => `'${c}'`).join(' ')}, not ${JSON.stringify(typecode)}`)
  }
  return ctor
}

function isBig(ctor: Ctor): boolean {
  return ctor === BigInt64Array || ctor === BigUint64Array
}

function coerce(ctor: Ctor, value: unknown, name: string): Element {
  if (isBig(ctor)) {
    if (typeof value === 'bigint') return value
    if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value)
    throw new TypeError(`${name} must be a bigint or an integer, not ${typeof value} ${String(value)}`)
  }
  if (typeof value === 'number') {
    if (ctor !== Float32Array && ctor !== Float64Array && !Number.isInteger(value)) {
      // Python: "'float' object cannot be interpreted as an integer"
      throw new TypeError(`${name} must be an integer for this typecode, not ${value}`)
    }
    return value
  }
  if (typeof value === 'boolean') return Number(value)
  if (typeof value === 'string' && value.length === 1 && ctor === Uint8Array) return value.charCodeAt(0)
  throw new TypeError(`${name} must be a number, not ${typeof value} ${String(value)}`)
}

function lockOf(option: LockOption): LockLike | null {
  if (option === false) return null
  if (option === true || option === null || option === undefined) return RLockCore.create()
  return lockCoreOf('lock', option)
}

/** Shared typed memory + its typecode + an optional lock. */
export abstract class SharedCore {
  readonly view: Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | Float32Array | Float64Array | BigInt64Array | BigUint64Array
  private readonly ctor: Ctor
  /** The public lock object getLock() returns, made once per thread (the one passed in, if any). */
  lockObject: object | undefined
  // Waiter fields: acquire() parks on the lock's word through this object.
  i32 = new Int32Array(0)
  waitIndex = 0
  waitValue = 0
  constructor(readonly typecode: string, readonly sab: SharedArrayBuffer, readonly lock: LockLike | null) {
    this.ctor = ctorOf(typecode)
    this.view = new this.ctor(sab as unknown as ArrayBuffer)
  }

  static createValue(typecode: string, init: unknown, lock: LockOption): ValueCore {
    const ctor = ctorOf(typecode)
    const core = new ValueCore(typecode, new SharedArrayBuffer(ctor.BYTES_PER_ELEMENT), lockOf(lock))
    if (typeof lock === 'object' && lock !== null) core.lockObject = lock
    if (init !== undefined) core.view[0] = coerce(ctor, init, 'value') as never
    return core
  }

  static createArray(typecode: string, init: unknown, lock: LockOption): ArrayCore {
    const ctor = ctorOf(typecode)
    let items: unknown[] | null = null
    let length: number
    if (typeof init === 'number') {
      if (!Number.isInteger(init) || init < 0) throw new RangeError(`size must be a non-negative integer, not ${init}`)
      length = init
    } else if (typeof init === 'string' && ctor === Uint8Array) {
      items = [...Buffer.from(init, 'latin1')]
      length = items.length
    } else if (init !== null && typeof init === 'object' && Symbol.iterator in init) {
      items = [...(init as Iterable<unknown>)]
      length = items.length
    } else {
      throw new TypeError(`sizeOrInitializer must be a length or an iterable of values, not ${String(init)}`)
    }
    const core = new ArrayCore(typecode, new SharedArrayBuffer(length * ctor.BYTES_PER_ELEMENT), lockOf(lock))
    if (typeof lock === 'object' && lock !== null) core.lockObject = lock
    if (items) items.forEach((v, i) => (core.view[i] = coerce(ctor, v, `sizeOrInitializer[${i}]`) as never))
    return core
  }

  static rebuild<T extends SharedCore>(
    this: new (typecode: string, sab: SharedArrayBuffer, lock: LockLike | null) => T,
    state: { typecode: string; sab: SharedArrayBuffer; lock: ReturnType<LockLike['reduce']> | null },
  ): T {
    return new this(state.typecode, state.sab, state.lock ? rebuildLock(state.lock) : null)
  }
  reduce(): { typecode: string; sab: SharedArrayBuffer; lock: ReturnType<LockLike['reduce']> | null } {
    return { typecode: this.typecode, sab: this.sab, lock: this.lock?.reduce() ?? null }
  }

  requireLock(): LockLike {
    if (!this.lock) throw new ValueError('this object was created with lock: false and has no lock')
    return this.lock
  }

  /** The AioLock/AioRLock guarding this memory (Python's get_lock()). */
  getLock<T extends object = object>(): T {
    return (this.lockObject ??= wrapCore<object>(this.requireLock())) as T
  }

  /** The raw typed array over the shared memory (Python's get_obj()). */
  getObj(): SharedCore['view'] {
    return this.view
  }

  acquireAttempt(): true | Pending {
    return this.requireLock().acquireAttempt(this)
  }
  tryAcquire(): true | Pending {
    return this.requireLock().tryAcquire()
  }
  release(): void {
    this.requireLock().release()
  }

  get length(): number {
    return this.view.length
  }

  getItem(index: number): Element {
    return this.view[this.checkIndex(index)]
  }

  setItem(index: number, value: unknown): void {
    this.view[this.checkIndex(index)] = coerce(this.ctor, value, 'value') as never
  }

  private checkIndex(index: number): number {
    if (!Number.isInteger(index)) throw new TypeError(`index must be an integer, not ${String(index)}`)
    const i = index < 0 ? index + this.view.length : index
    if (i < 0 || i >= this.view.length) throw new RangeError(`invalid index ${index} for length ${this.view.length}`)
    return i
  }

  slice(start?: number | null, end?: number | null): Element[] {
    return Array.from(this.view.slice(start ?? undefined, end ?? undefined) as ArrayLike<Element>)
  }

  setSlice(start: number, values: Iterable<unknown>): void {
    const items = [...values]
    if (!Number.isInteger(start) || start < 0 || start + items.length > this.view.length) {
      throw new ValueError('Can only assign sequence of same size')
    }
    items.forEach((v, i) => (this.view[start + i] = coerce(this.ctor, v, `values[${i}]`) as never))
  }

  /** 'c' arrays: the bytes up to the first NUL (Python's `.value`). */
  getBytes(): Buffer {
    const bytes = Buffer.from(this.view.buffer as SharedArrayBuffer, this.view.byteOffset, this.view.byteLength)
    const nul = bytes.indexOf(0)
    return Buffer.from(nul < 0 ? bytes : bytes.subarray(0, nul))
  }

  /** 'c' arrays: every byte (Python's `.raw`). */
  getRawBytes(): Buffer {
    return Buffer.from(new Uint8Array(this.sab))
  }

  setBytes(value: Uint8Array | string): void {
    const bytes = typeof value === 'string' ? Buffer.from(value, 'latin1') : value
    if (bytes.length > this.view.length) throw new ValueError('byte string too long')
    const u8 = new Uint8Array(this.sab)
    u8.set(bytes)
    if (bytes.length < u8.length) u8[bytes.length] = 0
  }

  describeValue(): string {
    return `'${this.typecode}', ${String(this.view[0])}`
  }
  describeArray(): string {
    const items = this.slice(0, 8).map(String).join(', ')
    return `'${this.typecode}', [${items}${this.length > 8 ? `, ... ${this.length - 8} more` : ''}]`
  }

}

/** A single shared value (Python's `Value`). */
export class ValueCore extends SharedCore {
  get value(): Element | Buffer {
    return this.typecode === 'c' ? Buffer.from([this.view[0] as number]) : this.view[0]
  }
  setValue(value: unknown): void {
    if (this.typecode === 'c' && (value instanceof Uint8Array || typeof value === 'string')) {
      const bytes = typeof value === 'string' ? Buffer.from(value, 'latin1') : value
      if (bytes.length !== 1) throw new TypeError(`value must be one byte, not ${bytes.length}`)
      this.view[0] = bytes[0]
      return
    }
    this.setItem(0, value)
  }
}

/** A shared array (Python's `Array`); 'c' arrays also read and write as bytes. */
export class ArrayCore extends SharedCore {}
