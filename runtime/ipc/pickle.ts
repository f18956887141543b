// Python's pickle, the format of CPython's `multiprocessing.connection.Connection.send/recv` and of
// its managers: a decoder for protocols 2–5 (and the text opcodes of 0–1, which cost little) and
// an encoder for protocols 2–5 (4 by default, what CPython 3.8–3.13 send).
//
// Decoding never runs or imports anything: a global (a class or function the stream names) is
// allowed only when it is on an allow-list, and then it is inert data — a `PyGlobal`, or a
// `PyObject` when the stream calls it — unless the allow-list maps it to a builder of a plain value
// (`builtins set` gives a Set). Everything a hostile stream can ask for is bounded by its own size:
// a length is checked against the bytes that are left before anything is allocated, the memo is a
// Map filled only by the stream's own opcodes, and containers may nest only `maxDepth` deep.
//
// Python → JavaScript: None → null, bool → boolean, int → number (bigint beyond ±2^53),
// float → number, str → string, bytes → Buffer, bytearray → PyByteArray, list → Array,
// tuple → PyTuple (an Array), dict → plain object when every key is a str, else Map,
// set → Set, frozenset → PyFrozenSet. The encoder takes the same types back, and also undefined
// (None), Uint8Array (bytes), PyFloat (a float that is a whole number) and PyObject.
//
// The opcodes are those of CPython's Lib/pickletools.py; the layouts follow Lib/pickle.py.

import { PicklingError, UnpicklingError } from '../core/errors.js'
import { Growable } from './growable.js'
import { PyTuple, tuple } from './py-tuple.js'
import { providePickle } from './codecs.js'
import { setOwnKey } from '../core/own-key.js'

export { PyTuple, tuple } from './py-tuple.js'


/** Python's frozenset. */
export class PyFrozenSet<T = unknown> extends Set<T> {}

/** Python's bytearray (a Buffer or Uint8Array goes as bytes). */
export class PyByteArray extends Uint8Array {}

/** A float that must stay a float in Python although it is a whole number (`PyFloat(2)` is `2.0`). */
export class PyFloat {
  constructor(readonly value: number) {}
  valueOf(): number {
    return this.value
  }
}

/** A class or function a pickle names (`module.qualname`), as data. */
export class PyGlobal {
  constructor(readonly module: string, readonly name: string) {}
  toString(): string {
    return `${this.module}.${this.name}`
  }
}

/**
 * An instance of an allowed Python class that has no JavaScript form: what Python's
 * `__reduce__` gives, `module.name(*args, **kwargs)` with `state` applied after. Encoded back the
 * same way, so `new PyObject('builtins', 'KeyError', ['k'])` reaches Python as `KeyError('k')`.
 */
export class PyObject {
  constructor(
    readonly module: string,
    readonly name: string,
    readonly args: readonly unknown[] = [],
    public state: unknown = undefined,
    /** Made by NEWOBJ (`cls.__new__(cls, *args)`) rather than by calling the class. */
    readonly newobj = false,
    readonly kwargs: Record<string, unknown> | undefined = undefined,
  ) {}
}

/** What an allowed global builds when the stream calls it: a plain value, or a PyObject when absent. */
export type GlobalBuilder = (args: readonly unknown[], kwargs: Record<string, unknown> | undefined) => unknown

export interface UnpickleOptions {
  /**
   * More globals to allow, by `'module name'` (`'multiprocessing.managers Token'`): `true` makes
   * them PyObjects, a function builds what it returns. The default list holds the builtins that
   * carry data (set, frozenset, bytes, bytearray, complex as a PyObject...), Python's exceptions
   * and the multiprocessing errors.
   */
  globals?: Readonly<Record<string, true | GlobalBuilder>>
  /** How deep containers may nest (default 1,000, about Python's own recursion limit). */
  maxDepth?: number
}

export interface PickleOptions {
  /** 2–5; default 4, what CPython 3.8–3.13 use. */
  protocol?: 2 | 3 | 4 | 5
  /** How deep containers may nest (default 1,000). */
  maxDepth?: number
}

const EXCEPTIONS = [
  'BaseException', 'Exception', 'ArithmeticError', 'AssertionError', 'AttributeError', 'BlockingIOError', 'BrokenPipeError',
  'BufferError', 'ChildProcessError', 'ConnectionAbortedError', 'ConnectionError', 'ConnectionRefusedError', 'ConnectionResetError',
  'EOFError', 'FileExistsError', 'FileNotFoundError', 'FloatingPointError', 'IndexError', 'InterruptedError', 'IsADirectoryError',
  'KeyError', 'KeyboardInterrupt', 'LookupError', 'MemoryError', 'NameError', 'NotADirectoryError', 'NotImplementedError', 'OSError',
  'OverflowError', 'PermissionError', 'ProcessLookupError', 'RecursionError', 'ReferenceError', 'RuntimeError', 'StopIteration',
  'SystemError', 'TimeoutError', 'TypeError', 'UnboundLocalError', 'UnicodeError', 'ValueError', 'ZeroDivisionError',
]

function bytesFrom(args: readonly unknown[], what: string): Uint8Array {
  const [src, encoding] = args
  if (src === undefined) return new Uint8Array(0)
  if (src instanceof Uint8Array) return src
  // Protocol 2's form of bytes: a str of latin-1 code points and the codec's name.
  if (typeof src === 'string' && (encoding === 'latin1' || encoding === 'latin-1')) return Buffer.from(src, 'latin1')
  if (Array.isArray(src) && src.every((b) => Number.isInteger(b) && (b as number) >= 0 && (b as number) < 256)) return Uint8Array.from(src as number[])
  throw new UnpicklingError(`${what} of ${describe(src)}: not bytes this codec rebuilds`)
}

function itemsOf(args: readonly unknown[], what: string): Iterable<unknown> {
  const src = args[0]
  if (src === undefined) return []
  if (Array.isArray(src) || src instanceof Set) return src
  throw new UnpicklingError(`${what} of ${describe(src)}: not a list or set`)
}

const DEFAULT_GLOBALS: Record<string, true | GlobalBuilder> = {
  'builtins set': (a) => new Set(itemsOf(a, 'set')),
  'builtins frozenset': (a) => new PyFrozenSet(itemsOf(a, 'frozenset')),
  'builtins bytes': (a) => Buffer.from(bytesFrom(a, 'bytes')),
  'builtins bytearray': (a) => {
    const b = bytesFrom(a, 'bytearray')
    const out = new PyByteArray(b.length)
    out.set(b)
    return out
  },
  '_codecs encode': (a) => Buffer.from(bytesFrom(a, '_codecs.encode')),
  // ForkingPickler's forms of dict views (a manager's dict.keys()): list(...) of a list.
  'builtins list': (a) => [...itemsOf(a, 'list')],
  'builtins tuple': (a) => {
    const t = new PyTuple()
    for (const x of itemsOf(a, 'tuple')) t.push(x)
    return t
  },
  'builtins complex': true,
  'builtins object': true,
  'builtins slice': true,
  'builtins range': true,
  // Protocol 2's instances of plain classes: copyreg._reconstructor(cls, object, None) + BUILD.
  'copyreg _reconstructor': (a) => {
    const cls = a[0]
    if (!(cls instanceof PyGlobal)) throw new UnpicklingError(`copyreg._reconstructor of ${describe(cls)}`)
    return new PyObject(cls.module, cls.name, [], undefined, true)
  },
  'copyreg __newobj__': (a) => {
    const cls = a[0]
    if (!(cls instanceof PyGlobal)) throw new UnpicklingError(`copyreg.__newobj__ of ${describe(cls)}`)
    return new PyObject(cls.module, cls.name, a.slice(1), undefined, true)
  },
  '_queue Empty': true,
  'queue Empty': true,
  'queue Full': true,
  'threading BrokenBarrierError': true,
  'multiprocessing.managers RemoteError': true,
  'multiprocessing.context TimeoutError': true,
  'multiprocessing.context ProcessError': true,
  'multiprocessing.context AuthenticationError': true,
  'multiprocessing.context BufferTooShort': true,
  'multiprocessing.pool MaybeEncodingError': true,
  // What a Python manager's answers carry: a proxy's token, a Namespace's value, a proxy sent as an argument.
  'multiprocessing.managers Token': true,
  'multiprocessing.managers Namespace': true,
  'multiprocessing.managers RebuildProxy': true,
}
for (const e of EXCEPTIONS) DEFAULT_GLOBALS[`builtins ${e}`] = true

// Python 2 names that protocol 2 streams may carry (Lib/_compat_pickle.py, the parts that matter here).
const PY2_MODULES: Record<string, string> = { __builtin__: 'builtins', copy_reg: 'copyreg', Queue: 'queue', exceptions: 'builtins' }
// And the allowed names Python 3 renames at protocol 2 (_compat_pickle's NAME_MAPPING): range is
// written as __builtin__.xrange, multiprocessing.context's errors as multiprocessing's.
const PY2_NAMES: Record<string, readonly [string, string]> = {
  '__builtin__ xrange': ['builtins', 'range'],
  'exceptions StandardError': ['builtins', 'Exception'],
}
for (const e of ['AuthenticationError', 'BufferTooShort', 'ProcessError', 'TimeoutError']) PY2_NAMES[`multiprocessing ${e}`] = ['multiprocessing.context', e]
const PY3_MODULES: Record<string, string> = { builtins: '__builtin__', copyreg: 'copy_reg', queue: 'Queue' }

// Opcodes (Lib/pickletools.py).
const MARK = 0x28, STOP = 0x2e, POP = 0x30, POP_MARK = 0x31, DUP = 0x32, FLOAT = 0x46, INT = 0x49, BININT = 0x4a
const BININT1 = 0x4b, LONG = 0x4c, BININT2 = 0x4d, NONE = 0x4e, PERSID = 0x50, BINPERSID = 0x51, REDUCE = 0x52
const STRING = 0x53, BINSTRING = 0x54, SHORT_BINSTRING = 0x55, UNICODE = 0x56, BINUNICODE = 0x58, APPEND = 0x61
const BUILD = 0x62, GLOBAL = 0x63, DICT = 0x64, EMPTY_DICT = 0x7d, APPENDS = 0x65, GET = 0x67, BINGET = 0x68
const INST = 0x69, LONG_BINGET = 0x6a, LIST = 0x6c, EMPTY_LIST = 0x5d, OBJ = 0x6f, PUT = 0x70, BINPUT = 0x71
const LONG_BINPUT = 0x72, SETITEM = 0x73, TUPLE = 0x74, EMPTY_TUPLE = 0x29, SETITEMS = 0x75, BINFLOAT = 0x47
const PROTO = 0x80, NEWOBJ = 0x81, EXT1 = 0x82, EXT2 = 0x83, EXT4 = 0x84, TUPLE1 = 0x85, TUPLE2 = 0x86, TUPLE3 = 0x87
const NEWTRUE = 0x88, NEWFALSE = 0x89, LONG1 = 0x8a, LONG4 = 0x8b, BINBYTES = 0x42, SHORT_BINBYTES = 0x43
const SHORT_BINUNICODE = 0x8c, BINUNICODE8 = 0x8d, BINBYTES8 = 0x8e, EMPTY_SET = 0x8f, ADDITEMS = 0x90, FROZENSET = 0x91
const NEWOBJ_EX = 0x92, STACK_GLOBAL = 0x93, MEMOIZE = 0x94, FRAME = 0x95, BYTEARRAY8 = 0x96, NEXT_BUFFER = 0x97
const READONLY_BUFFER = 0x98

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)
/** Python's own limit on decimal digits of an int read from text (sys.int_info.default_max_str_digits). */
const MAX_DECIMAL_DIGITS = 4300
/** Strings as long as this or shorter are decoded by hand when they are ASCII: cheaper than a call into C++. */
const SHORT_ASCII = 32

function describe(v: unknown): string {
  if (v === null) return 'None'
  if (v instanceof PyGlobal) return `the global ${v.module}.${v.name}`
  if (v instanceof PyObject) return `a ${v.module}.${v.name} object`
  if (v instanceof PyTuple) return 'a tuple'
  if (Array.isArray(v)) return 'a list'
  if (v instanceof Map) return 'a dict'
  return typeof v === 'object' ? (v.constructor?.name ?? 'an object') : typeof v
}

/** UTF-8 with Python's surrogatepass: lone surrogates come as their 3-byte forms. */
function decodeSurrogatePass(b: Uint8Array, start: number, end: number): string {
  let out = ''
  let i = start
  while (i < end) {
    const c = b[i]
    let cp: number
    if (c < 0x80) {
      cp = c
      i += 1
    } else if (c >= 0xc2 && c < 0xe0 && i + 1 < end) {
      cp = ((c & 0x1f) << 6) | (b[i + 1] & 0x3f)
      i += 2
    } else if (c >= 0xe0 && c < 0xf0 && i + 2 < end) {
      cp = ((c & 0x0f) << 12) | ((b[i + 1] & 0x3f) << 6) | (b[i + 2] & 0x3f)
      i += 3
    } else if (c >= 0xf0 && c < 0xf5 && i + 3 < end) {
      cp = ((c & 0x07) << 18) | ((b[i + 1] & 0x3f) << 12) | ((b[i + 2] & 0x3f) << 6) | (b[i + 3] & 0x3f)
      i += 4
    } else {
      throw new UnpicklingError('a str that is not UTF-8')
    }
    out += String.fromCodePoint(cp)
  }
  return out
}

class Reader {
  pos = 0
  constructor(readonly b: Uint8Array, readonly view: DataView) {}
  need(n: number, what: string): void {
    if (n > this.b.length - this.pos) throw new UnpicklingError(`${what} claims ${n} bytes where ${this.b.length - this.pos} are left: the pickle is truncated or corrupt`)
  }
  u8(): number {
    this.need(1, 'an opcode argument')
    return this.b[this.pos++]
  }
  u16(): number {
    this.need(2, 'an opcode argument')
    const v = this.view.getUint16(this.pos, true)
    this.pos += 2
    return v
  }
  u32(): number {
    this.need(4, 'an opcode argument')
    const v = this.view.getUint32(this.pos, true)
    this.pos += 4
    return v
  }
  i32(): number {
    this.need(4, 'an opcode argument')
    const v = this.view.getInt32(this.pos, true)
    this.pos += 4
    return v
  }
  u64(what: string): number {
    this.need(8, what)
    const v = this.view.getBigUint64(this.pos, true)
    this.pos += 8
    // Beyond what is left is refused by need() anyway; keep the number exact until then.
    return v > BigInt(this.b.length) ? Number.MAX_SAFE_INTEGER : Number(v)
  }
  bytes(n: number, what: string): Uint8Array {
    this.need(n, what)
    const out = this.b.subarray(this.pos, this.pos + n)
    this.pos += n
    return out
  }
  /** A text argument up to its newline (protocol 0's opcodes), newline dropped. */
  line(what: string): string {
    const nl = this.b.indexOf(0x0a, this.pos)
    if (nl < 0) throw new UnpicklingError(`${what} has no end of line: the pickle is truncated`)
    const s = Buffer.from(this.b.buffer, this.b.byteOffset + this.pos, nl - this.pos).toString('latin1')
    this.pos = nl + 1
    return s
  }
  str(n: number): string {
    this.need(n, 'a str')
    const b = this.b
    const start = this.pos
    this.pos += n
    if (n <= SHORT_ASCII) {
      let s = ''
      for (let i = start; i < start + n; i++) {
        const c = b[i]
        if (c >= 0x80) return this.utf8(start, start + n)
        s += String.fromCharCode(c)
      }
      return s
    }
    return this.utf8(start, start + n)
  }
  private utf8(start: number, end: number): string {
    const s = Buffer.from(this.b.buffer, this.b.byteOffset + start, end - start).toString('utf8')
    // A replacement character may mean a surrogate that Python wrote with surrogatepass.
    return s.includes('\ufffd') ? decodeSurrogatePass(this.b, start, end) : s
  }
}

function intFromLE(b: Uint8Array): number | bigint {
  const n = b.length
  if (n === 0) return 0
  if (n <= 6) {
    let v = 0
    for (let i = n - 1; i >= 0; i--) v = v * 256 + b[i]
    return b[n - 1] & 0x80 ? v - 2 ** (8 * n) : v
  }
  // Through hex, in linear time: a digit-by-digit loop made a 10 MB LONG4 take 11 s.
  const hex = Buffer.from(b).reverse().toString('hex')
  let v = BigInt('0x' + hex)
  if (b[n - 1] & 0x80) v -= 1n << BigInt(8 * n)
  return v >= -MAX_SAFE && v <= MAX_SAFE ? Number(v) : v
}

function intFromText(s: string, what: string): number | bigint | boolean {
  const t = s.trim().replace(/L$/, '')
  if (what === 'INT' && t === '00') return false
  if (what === 'INT' && t === '01') return true
  if (!/^[-+]?\d+$/.test(t)) throw new UnpicklingError(`${what} of ${JSON.stringify(s.slice(0, 40))}: not an int`)
  if (t.length > MAX_DECIMAL_DIGITS) throw new UnpicklingError(`${what} of ${t.length} digits: more than Python reads (${MAX_DECIMAL_DIGITS})`)
  const v = BigInt(t)
  return v >= -MAX_SAFE && v <= MAX_SAFE ? Number(v) : v
}

/** Protocol 0's quoted str: Python's repr of a str (STRING's argument). */
function unquote(s: string): string {
  const q = s[0]
  if (s.length < 2 || (q !== '"' && q !== "'") || s[s.length - 1] !== q) throw new UnpicklingError('STRING without its quotes')
  return s.slice(1, -1).replace(/\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)/g, (_m, e: string) => {
    if (e[0] === 'x') return String.fromCharCode(parseInt(e.slice(1), 16))
    if (/^[0-7]/.test(e)) return String.fromCharCode(parseInt(e, 8))
    return ({ n: '\n', r: '\r', t: '\t', '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', v: '\v' } as Record<string, string>)[e] ?? `\\${e}`
  })
}

/** protocol 0's raw-unicode-escape (UNICODE's argument). */
function rawUnicodeEscape(s: string): string {
  return s.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_m, u?: string, U?: string) => String.fromCodePoint(parseInt((u ?? U)!, 16)))
}

/** Python's float() of a str: decimal, exponent, inf, infinity, nan (FLOAT's argument). */
const PY_FLOAT = /^[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|inf(?:inity)?|nan)$/i

/** A memo index written as text (PUT, GET): a non-negative int, as Python's int() reads it. */
function memoKey(line: string, what: string): number {
  const i = intFromText(line, what)
  if (typeof i !== 'number' || i < 0) throw new UnpicklingError(`${what} of ${JSON.stringify(line.slice(0, 40))}: not a memo index`)
  return i
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype
}

/**
 * The value once more, for a stream that pushed an object twice (GET, DUP). The depths kept beside
 * the stack then fall short for a container filled after it was shared (a stream can nest without
 * bound that way), and a dict that became a Map after it was shared is still the plain object where
 * it was taken before (Python's `d = {}; d[1] = d`). One walk with a visited set, as an encoder of
 * the value walks it (dumps' memo), puts each Map in its plain object's places and measures the
 * containers on its path. Iterative: its own depth costs no stack.
 */
function settle(root: unknown, converted: ReadonlyMap<object, Map<unknown, unknown>>, maxDepth: number): unknown {
  const fix = (v: unknown): unknown => (v !== null && typeof v === 'object' ? (converted.get(v) ?? v) : v)
  const seen = new Set<object>()
  /** The containers below each one on the path, and how many of them were entered. */
  const path: Array<{ below: object[]; next: number }> = []
  const enter = (v: unknown): void => {
    if (v === null || typeof v !== 'object' || seen.has(v)) return
    seen.add(v)
    const below = childrenFixed(v, fix)
    if (below === undefined) return
    if (path.length + 1 > maxDepth) throw new UnpicklingError(`containers nested more than ${maxDepth} deep`)
    path.push({ below, next: 0 })
  }
  const top = fix(root)
  enter(top)
  while (path.length > 0) {
    const frame = path[path.length - 1]
    if (frame.next < frame.below.length) enter(frame.below[frame.next++])
    else path.pop()
  }
  return top
}

/** A container's items that are objects, after each replaced dict in it is put right; undefined for a leaf. */
function childrenFixed(v: object, fix: (v: unknown) => unknown): object[] | undefined {
  const below: object[] = []
  const note = (x: unknown): unknown => {
    const y = fix(x)
    if (y !== null && typeof y === 'object') below.push(y)
    return y
  }
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = note(v[i])
  } else if (v instanceof Map) {
    const entries = [...v].map(([k, x]): [unknown, unknown] => [note(k), note(x)])
    v.clear()
    for (const [k, x] of entries) v.set(k, x)
  } else if (v instanceof Set) {
    const items = [...v].map(note)
    v.clear()
    for (const x of items) v.add(x)
  } else if (v instanceof PyObject) {
    // Its args are an array of its own (call() copies them), a container as the tuple dumps writes.
    note(v.args)
    v.state = note(v.state)
    if (v.kwargs) note(v.kwargs)
  } else if (isPlainObject(v)) {
    for (const k of Object.keys(v)) {
      const x = v[k]
      const y = note(x)
      if (y !== x) v[k] = y
    }
  } else {
    return undefined
  }
  return below
}

/** Sets one key of a dict being built: a plain object while every key is a str, then a Map. */
function setItem(d: unknown, k: unknown, v: unknown): unknown {
  if (d instanceof Map) {
    d.set(k, v)
    return d
  }
  if (d === null || typeof d !== 'object' || Array.isArray(d) || Object.getPrototypeOf(d) !== Object.prototype) {
    throw new UnpicklingError(`SETITEM on ${describe(d)}`)
  }
  const o = d as Record<string, unknown>
  if (typeof k === 'string') {
    return setOwnKey(o, k, v)
  }
  const m = new Map<unknown, unknown>(Object.entries(o))
  m.set(k, v)
  return m
}

/**
 * Python's `pickle.loads`: the value of a pickle of protocol 0–5 (without out-of-band buffers,
 * persistent ids or the extension registry, which need a Python process's own tables).
 * @throws {@link UnpicklingError} for a stream it cannot read, a global that is not allowed, or
 * one past the bounds; never anything else, whatever the bytes.
 */
export function loads(data: Uint8Array, options: UnpickleOptions = {}): unknown {
  try {
    return load(data, options)
  } catch (e) {
    if (e instanceof UnpicklingError) throw e
    // A RangeError of a typed array or BigInt on crafted input: still the codec's error.
    throw new UnpicklingError(`the pickle is invalid: ${(e as Error)?.message ?? String(e)}`)
  }
}

function load(data: Uint8Array, options: UnpickleOptions): unknown {
  const globals = options.globals ? { ...DEFAULT_GLOBALS, ...options.globals } : DEFAULT_GLOBALS
  const maxDepth = options.maxDepth ?? 1000
  const r = new Reader(data, new DataView(data.buffer, data.byteOffset, data.byteLength))
  // The value stack, with each value's nesting depth beside it, and the marks (stack lengths).
  const stack: unknown[] = []
  const depth: number[] = []
  const marks: number[] = []
  const memo = new Map<number, unknown>()
  const memoDepth = new Map<number, number>()
  // The memo keys of each plain-object dict, so that one which becomes a Map is found without a
  // scan of the whole memo (a scan per dict is quadratic in a list of dicts with int keys). Made at
  // the first such dict: a stream without one pays nothing for it.
  let dictKeys: Map<object, number[]> | undefined
  const indexDict = (v: object, i: number): void => {
    const keys = dictKeys!.get(v)
    if (keys) keys.push(i)
    else dictKeys!.set(v, [i])
  }
  // Dicts that became Maps (the plain object → its Map), and whether any object was pushed a second
  // time (GET, DUP): then copies may hold a replaced dict or a depth that its filling outgrew.
  const converted = new Map<object, Map<unknown, unknown>>()
  let aliased = false
  let proto = 0

  const push = (v: unknown, d = 0): void => {
    if (d > maxDepth) throw new UnpicklingError(`containers nested more than ${maxDepth} deep`)
    stack.push(v)
    depth.push(d)
  }
  const pop = (op: string): unknown => {
    if (stack.length === 0 || (marks.length > 0 && stack.length === marks[marks.length - 1])) throw new UnpicklingError(`${op} on an empty stack`)
    depth.pop()
    return stack.pop()
  }
  const top = (op: string): number => {
    if (stack.length === 0 || (marks.length > 0 && stack.length === marks[marks.length - 1])) throw new UnpicklingError(`${op} on an empty stack`)
    return stack.length - 1
  }
  /** The items since the last MARK, and the deepest of them. */
  const popMark = (op: string): [unknown[], number] => {
    const m = marks.pop()
    if (m === undefined) throw new UnpicklingError(`${op} without a MARK`)
    const items = stack.splice(m)
    const ds = depth.splice(m)
    let d = 0
    for (const x of ds) if (x > d) d = x
    return [items, d]
  }
  const memoPut = (i: number): void => {
    const t = top('PUT')
    const v = stack[t]
    memo.set(i, v)
    memoDepth.set(i, depth[t])
    if (dictKeys && isPlainObject(v)) indexDict(v, i)
  }
  const memoGet = (i: number): void => {
    if (!memo.has(i)) throw new UnpicklingError(`memo key ${i} was never stored`)
    const v = memo.get(i)
    if (v !== null && typeof v === 'object') aliased = true
    push(v, memoDepth.get(i))
  }
  const global = (module: string, name: string): PyGlobal => {
    if (proto < 3) {
      const key = `${module} ${name}`
      if (Object.hasOwn(PY2_NAMES, key)) [module, name] = PY2_NAMES[key]
      else if (Object.hasOwn(PY2_MODULES, module)) module = PY2_MODULES[module]
    }
    if (!Object.hasOwn(globals, `${module} ${name}`)) {
      throw new UnpicklingError(`the pickle names the global ${module}.${name}, which is not allowed here: nothing is imported from a stream (allow it with the globals option if it is data)`)
    }
    return new PyGlobal(module, name)
  }
  const call = (fn: unknown, args: unknown, kwargs: unknown, newobj: boolean, d: number): void => {
    if (!(fn instanceof PyGlobal)) throw new UnpicklingError(`a call of ${describe(fn)}: only allowed globals are called`)
    if (!Array.isArray(args)) throw new UnpicklingError(`a call of ${fn} with ${describe(args)} for its arguments`)
    if (kwargs !== undefined && (kwargs === null || typeof kwargs !== 'object' || kwargs instanceof Map || Array.isArray(kwargs))) {
      throw new UnpicklingError(`a call of ${fn} with ${describe(kwargs)} for its keyword arguments`)
    }
    const builder = globals[`${fn.module} ${fn.name}`]
    const kw = kwargs as Record<string, unknown> | undefined
    push(builder === true ? new PyObject(fn.module, fn.name, [...args], undefined, newobj, kw) : builder([...args], kw), d + 1)
  }

  for (;;) {
    if (r.pos >= data.length) throw new UnpicklingError('the pickle ends before its STOP opcode: it is truncated')
    const op = data[r.pos++]
    switch (op) {
      case PROTO:
        proto = r.u8()
        if (proto > 5) throw new UnpicklingError(`unsupported pickle protocol: ${proto}`)
        break
      case FRAME:
        r.need(r.u64('FRAME'), 'FRAME')
        break
      case STOP: {
        // CPython ignores what is left on the stack or the marks; so does this.
        const v = pop('STOP')
        return aliased ? settle(v, converted, maxDepth) : v
      }
      case MARK:
        marks.push(stack.length)
        break
      case POP:
        if (marks.length > 0 && stack.length === marks[marks.length - 1]) marks.pop()
        else pop('POP')
        break
      case POP_MARK:
        popMark('POP_MARK')
        break
      case DUP: {
        const t = top('DUP')
        if (stack[t] !== null && typeof stack[t] === 'object') aliased = true
        push(stack[t], depth[t])
        break
      }
      case NONE:
        push(null)
        break
      case NEWTRUE:
        push(true)
        break
      case NEWFALSE:
        push(false)
        break
      case BININT:
        push(r.i32())
        break
      case BININT1:
        push(r.u8())
        break
      case BININT2:
        push(r.u16())
        break
      case LONG1:
        push(intFromLE(r.bytes(r.u8(), 'LONG1')))
        break
      case LONG4: {
        const n = r.i32()
        if (n < 0) throw new UnpicklingError('LONG4 of a negative length')
        push(intFromLE(r.bytes(n, 'LONG4')))
        break
      }
      case INT:
        push(intFromText(r.line('INT'), 'INT'))
        break
      case LONG:
        push(intFromText(r.line('LONG'), 'LONG'))
        break
      case BINFLOAT:
        r.need(8, 'BINFLOAT')
        push(r.view.getFloat64(r.pos, false))
        r.pos += 8
        break
      case FLOAT: {
        const s = r.line('FLOAT').trim()
        // Python's float() syntax; Number() alone would also take '', '0x10' and '0b1'.
        if (!PY_FLOAT.test(s)) throw new UnpicklingError(`FLOAT of ${JSON.stringify(s.slice(0, 40))}: not a float`)
        const v = Number(s.replace(/^([-+]?)inf(inity)?$/i, '$1Infinity').replace(/^[-+]?nan$/i, 'NaN'))
        push(v)
        break
      }
      case SHORT_BINUNICODE:
        push(r.str(r.u8()))
        break
      case BINUNICODE:
        push(r.str(r.u32()))
        break
      case BINUNICODE8:
        push(r.str(r.u64('BINUNICODE8')))
        break
      case UNICODE:
        push(rawUnicodeEscape(r.line('UNICODE')))
        break
      case SHORT_BINBYTES:
        push(Buffer.from(r.bytes(r.u8(), 'SHORT_BINBYTES')))
        break
      case BINBYTES:
        push(Buffer.from(r.bytes(r.u32(), 'BINBYTES')))
        break
      case BINBYTES8:
        push(Buffer.from(r.bytes(r.u64('BINBYTES8'), 'BINBYTES8')))
        break
      case BYTEARRAY8: {
        const b = r.bytes(r.u64('BYTEARRAY8'), 'BYTEARRAY8')
        const out = new PyByteArray(b.length)
        out.set(b)
        push(out)
        break
      }
      // Python 2's str: read as latin-1 text (Python 3 reads it as ASCII by default, or bytes).
      case SHORT_BINSTRING:
        push(Buffer.from(r.bytes(r.u8(), 'SHORT_BINSTRING')).toString('latin1'))
        break
      case BINSTRING: {
        const n = r.i32()
        if (n < 0) throw new UnpicklingError('BINSTRING of a negative length')
        push(Buffer.from(r.bytes(n, 'BINSTRING')).toString('latin1'))
        break
      }
      case STRING:
        push(unquote(r.line('STRING')))
        break
      case EMPTY_LIST:
        push([], 1)
        break
      case EMPTY_DICT:
        push({}, 1)
        break
      case EMPTY_SET:
        push(new Set(), 1)
        break
      case EMPTY_TUPLE:
        push(new PyTuple(), 1)
        break
      case LIST: {
        const [items, d] = popMark('LIST')
        push(items, d + 1)
        break
      }
      case TUPLE: {
        const [items, d] = popMark('TUPLE')
        const t = new PyTuple()
        for (const x of items) t.push(x)
        push(t, d + 1)
        break
      }
      case TUPLE1:
      case TUPLE2:
      case TUPLE3: {
        const n = op - TUPLE1 + 1
        if (stack.length < n || (marks.length > 0 && stack.length - n < marks[marks.length - 1])) throw new UnpicklingError(`TUPLE${n} on a stack of fewer items`)
        const items = stack.splice(stack.length - n)
        const d = Math.max(...depth.splice(depth.length - n))
        const t = new PyTuple()
        for (const x of items) t.push(x)
        push(t, d + 1)
        break
      }
      case FROZENSET: {
        const [items, d] = popMark('FROZENSET')
        push(new PyFrozenSet(items), d + 1)
        break
      }
      case DICT: {
        const [items, d] = popMark('DICT')
        if (items.length % 2) throw new UnpicklingError('DICT of an odd number of items')
        let o: unknown = {}
        for (let i = 0; i < items.length; i += 2) o = setItem(o, items[i], items[i + 1])
        push(o, d + 1)
        break
      }
      case APPEND: {
        const dv = depth[depth.length - 1] ?? 0
        const v = pop('APPEND')
        appendTo(top('APPEND'), [v], dv)
        break
      }
      case APPENDS: {
        const [items, d] = popMark('APPENDS')
        appendTo(top('APPENDS'), items, d)
        break
      }
      case SETITEM: {
        const dv = depth[depth.length - 1] ?? 0
        const v = pop('SETITEM')
        const dk = depth[depth.length - 1] ?? 0
        const k = pop('SETITEM')
        const t = top('SETITEM')
        stack[t] = replaceDict(stack[t], setItem(stack[t], k, v))
        bumpDepth(t, Math.max(dk, dv))
        break
      }
      case SETITEMS: {
        const [items, d] = popMark('SETITEMS')
        if (items.length % 2) throw new UnpicklingError('SETITEMS of an odd number of items')
        const t = top('SETITEMS')
        let o = stack[t]
        for (let i = 0; i < items.length; i += 2) o = setItem(o, items[i], items[i + 1])
        stack[t] = replaceDict(stack[t], o)
        bumpDepth(t, d)
        break
      }
      case ADDITEMS: {
        const [items, d] = popMark('ADDITEMS')
        const t = top('ADDITEMS')
        const s = stack[t]
        if (!(s instanceof Set) || s instanceof PyFrozenSet) throw new UnpicklingError(`ADDITEMS on ${describe(s)}`)
        for (const x of items) s.add(x)
        bumpDepth(t, d)
        break
      }
      case PUT:
        memoPut(memoKey(r.line('PUT'), 'PUT'))
        break
      case BINPUT:
        memoPut(r.u8())
        break
      case LONG_BINPUT:
        memoPut(r.u32())
        break
      case MEMOIZE:
        memoPut(memo.size)
        break
      case GET:
        memoGet(memoKey(r.line('GET'), 'GET'))
        break
      case BINGET:
        memoGet(r.u8())
        break
      case LONG_BINGET:
        memoGet(r.u32())
        break
      case GLOBAL: {
        const module = r.line('GLOBAL')
        push(global(module, r.line('GLOBAL')))
        break
      }
      case STACK_GLOBAL: {
        const name = pop('STACK_GLOBAL')
        const module = pop('STACK_GLOBAL')
        if (typeof module !== 'string' || typeof name !== 'string') throw new UnpicklingError('STACK_GLOBAL of values that are not str')
        push(global(module, name))
        break
      }
      case REDUCE: {
        const d = depth[depth.length - 1] ?? 0
        const args = pop('REDUCE')
        call(pop('REDUCE'), args, undefined, false, d)
        break
      }
      case NEWOBJ: {
        const d = depth[depth.length - 1] ?? 0
        const args = pop('NEWOBJ')
        call(pop('NEWOBJ'), args, undefined, true, d)
        break
      }
      case NEWOBJ_EX: {
        const d = Math.max(depth[depth.length - 1] ?? 0, depth[depth.length - 2] ?? 0)
        const kwargs = pop('NEWOBJ_EX')
        const args = pop('NEWOBJ_EX')
        call(pop('NEWOBJ_EX'), args, kwargs, true, d)
        break
      }
      case INST: {
        const g = global(r.line('INST'), r.line('INST'))
        const [items, d] = popMark('INST')
        call(g, items, undefined, false, d)
        break
      }
      case OBJ: {
        const [items, d] = popMark('OBJ')
        call(items[0], items.slice(1), undefined, false, d)
        break
      }
      case BUILD: {
        const ds = depth[depth.length - 1] ?? 0
        const state = pop('BUILD')
        const t = top('BUILD')
        const obj = stack[t]
        if (obj instanceof PyObject) {
          obj.state = state
        } else if (isPlainObject(obj) && isPlainObject(state)) {
          // Key by key, as SETITEM does: a '__proto__' key is a key, not the object's prototype.
          for (const [k, v] of Object.entries(state)) setItem(obj, k, v)
        } else {
          throw new UnpicklingError(`BUILD of ${describe(obj)}: its state has nowhere to go`)
        }
        bumpDepth(t, ds)
        break
      }
      case PERSID:
      case BINPERSID:
        throw new UnpicklingError('a persistent id in the pickle: this codec has no persistent_load')
      case EXT1:
      case EXT2:
      case EXT4:
        throw new UnpicklingError('an extension code in the pickle (copyreg.add_extension): this codec has no extension registry')
      case NEXT_BUFFER:
      case READONLY_BUFFER:
        throw new UnpicklingError('an out-of-band buffer in the pickle (protocol 5 buffer_callback): send the bytes in band')
      default:
        throw new UnpicklingError(`invalid load key, '\\x${op.toString(16).padStart(2, '0')}' at byte ${r.pos - 1}`)
    }
  }

  function bumpDepth(t: number, d: number): void {
    if (d + 1 > depth[t]) {
      if (d + 1 > maxDepth) throw new UnpicklingError(`containers nested more than ${maxDepth} deep`)
      depth[t] = d + 1
    }
  }
  function appendTo(t: number, items: unknown[], d: number): void {
    const list = stack[t]
    if (!Array.isArray(list) || list instanceof PyTuple) throw new UnpicklingError(`APPEND on ${describe(list)}`)
    for (const x of items) list.push(x)
    bumpDepth(t, d)
  }
  /** A dict that became a Map (its first key that is not a str): the memo's references follow it. */
  function replaceDict(before: unknown, after: unknown): unknown {
    if (before === after) return after
    const map = after as Map<unknown, unknown>
    converted.set(before as object, map)
    if (!dictKeys) {
      dictKeys = new Map()
      for (const [i, v] of memo) if (isPlainObject(v)) indexDict(v, i)
    }
    for (const k of dictKeys.get(before as object) ?? []) if (memo.get(k) === before) memo.set(k, map)
    return after
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** The pickler's writer: opcodes with their arguments. */
class Out extends Growable {
  op2(op: number, v: number): void {
    this.reserve(2)
    this.buf[this.pos++] = op
    this.buf[this.pos++] = v
  }
  u32(op: number, v: number): void {
    this.reserve(5)
    this.buf[this.pos] = op
    this.buf.writeUInt32LE(v, this.pos + 1)
    this.pos += 5
  }
  u64(op: number, v: number): void {
    this.reserve(9)
    this.buf[this.pos] = op
    this.buf.writeBigUInt64LE(BigInt(v), this.pos + 1)
    this.pos += 9
  }
}

/** Python's UTF-8 with surrogatepass, for a JS string with lone surrogates. */
function encodeSurrogatePass(s: string): Buffer {
  const out: number[] = []
  for (const ch of s) {
    const cp = ch.codePointAt(0)!
    if (cp < 0x80) out.push(cp)
    else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 0x3f))
    else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f))
    else out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f))
  }
  return Buffer.from(out)
}

/** Two's complement, little-endian, as few bytes as Python's pickle.encode_long. */
function longBytes(v: bigint): Buffer {
  if (v === 0n) return Buffer.alloc(0)
  // The fewest bytes whose signed range holds v, in linear time through hex (a shift per byte made
  // a 400 KB int take two minutes). A negative v is the bitwise inverse of -v - 1.
  const neg = v < 0n
  const hex = (neg ? -v - 1n : v).toString(16)
  let be = Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex')
  if (be[0] & 0x80) be = Buffer.concat([Buffer.from([0]), be]) // the sign bit must stay clear
  be.reverse()
  if (neg) for (let i = 0; i < be.length; i++) be[i] ^= 0xff
  return be
}

class Pickler {
  private readonly memo = new Map<object, number>()
  /** Tuples being written: one that holds itself has no pickle (it would need Python's recursion trick). */
  private readonly open = new Set<object>()
  private depth = 0

  /** Writes into `out` (this thread's one writer) from its start. */
  constructor(readonly out: Out, readonly proto: number, readonly maxDepth: number) {
    out.restart()
  }


  private memoize(v: object): void {
    const i = this.memo.size
    this.memo.set(v, i)
    if (this.proto >= 4) this.out.u8(MEMOIZE)
    else if (i < 256) this.out.op2(BINPUT, i)
    else this.out.u32(LONG_BINPUT, i)
  }

  private get(i: number): void {
    if (i < 256) this.out.op2(BINGET, i)
    else this.out.u32(LONG_BINGET, i)
  }

  int(v: number | bigint): void {
    const o = this.out
    if (typeof v === 'number' && v >= 0 && v < 256) return o.op2(BININT1, v)
    if (typeof v === 'number' && v >= 0 && v < 65536) {
      o.reserve(3)
      o.buf[o.pos] = BININT2
      o.buf.writeUInt16LE(v, o.pos + 1)
      o.pos += 3
      return
    }
    if (typeof v === 'number' && v >= -0x80000000 && v <= 0x7fffffff) {
      o.reserve(5)
      o.buf[o.pos] = BININT
      o.buf.writeInt32LE(v, o.pos + 1)
      o.pos += 5
      return
    }
    const b = longBytes(BigInt(v))
    if (b.length < 256) o.op2(LONG1, b.length)
    else o.u32(LONG4, b.length)
    o.raw(b)
  }

  float(v: number): void {
    const o = this.out
    o.reserve(9)
    o.buf[o.pos] = BINFLOAT
    o.buf.writeDoubleBE(v, o.pos + 1)
    o.pos += 9
  }

  str(s: string): void {
    const o = this.out
    if (!s.isWellFormed()) {
      const b = encodeSurrogatePass(s)
      if (b.length < 256 && this.proto >= 4) o.op2(SHORT_BINUNICODE, b.length)
      else if (b.length <= 0xffffffff) o.u32(BINUNICODE, b.length)
      o.raw(b)
      return
    }
    const len = s.length
    if (this.proto >= 4 && len * 3 < 256) {
      o.reserve(2 + len * 3)
      const n = o.buf.write(s, o.pos + 2, len * 3, 'utf8')
      o.buf[o.pos] = SHORT_BINUNICODE
      o.buf[o.pos + 1] = n
      o.pos += 2 + n
      return
    }
    const n = Buffer.byteLength(s, 'utf8')
    if (this.proto >= 4 && n < 256) o.op2(SHORT_BINUNICODE, n)
    else if (n <= 0xffffffff) o.u32(BINUNICODE, n)
    else o.u64(BINUNICODE8, n)
    o.reserve(n)
    o.buf.write(s, o.pos, n, 'utf8') // the length given: past 2 GiB of buffer Node wrote nothing without it
    o.pos += n
  }

  bytes(b: Uint8Array): void {
    const o = this.out
    if (this.proto < 3) {
      // Protocol 2 has no bytes: Python writes _codecs.encode(latin-1 str, 'latin1') (or bytes() for b'').
      if (b.length === 0) {
        this.global('builtins', 'bytes')
        o.u8(EMPTY_TUPLE)
      } else {
        this.global('_codecs', 'encode')
        this.str(Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1'))
        this.str('latin1')
        o.u8(TUPLE2)
      }
      o.u8(REDUCE)
      return
    }
    if (b.length < 256) o.op2(SHORT_BINBYTES, b.length)
    else if (b.length <= 0xffffffff) o.u32(BINBYTES, b.length)
    else o.u64(BINBYTES8, b.length)
    o.raw(b)
  }

  global(module: string, name: string): void {
    const o = this.out
    if (this.proto >= 4) {
      this.str(module)
      this.str(name)
      o.u8(STACK_GLOBAL)
      return
    }
    if (this.proto < 3) module = PY3_MODULES[module] ?? module
    o.u8(GLOBAL)
    o.raw(Buffer.from(`${module}\n${name}\n`, 'utf8'))
  }

  private items(values: Iterable<unknown>, op: number): void {
    // In batches of 1,000, as Python's pickler writes them.
    let n = 0
    for (const x of values) {
      if (n === 0) this.out.u8(MARK)
      this.save(x)
      if (++n === 1000) {
        this.out.u8(op)
        n = 0
      }
    }
    if (n > 0) this.out.u8(op)
  }

  private pairs(entries: Iterable<[unknown, unknown]>): void {
    let n = 0
    for (const [k, v] of entries) {
      if (n === 0) this.out.u8(MARK)
      this.save(k)
      this.save(v)
      if (++n === 1000) {
        this.out.u8(SETITEMS)
        n = 0
      }
    }
    if (n > 0) this.out.u8(SETITEMS)
  }

  save(v: unknown): void {
    switch (typeof v) {
      case 'number':
        if (Number.isInteger(v) && !Object.is(v, -0) && Number.isSafeInteger(v)) this.int(v)
        else this.float(v)
        return
      case 'string':
        this.str(v)
        return
      case 'boolean':
        this.out.u8(v ? NEWTRUE : NEWFALSE)
        return
      case 'undefined':
        this.out.u8(NONE)
        return
      case 'bigint':
        this.int(v)
        return
      case 'object':
        if (v === null) return this.out.u8(NONE)
        break
      default:
        throw new PicklingError(`a ${typeof v} cannot be pickled: Python has no form of it (send data, or { module, name } of a function)`)
    }
    const seen = this.memo.get(v)
    if (seen !== undefined) return this.get(seen)
    if (++this.depth > this.maxDepth) throw new PicklingError(`the value nests more than ${this.maxDepth} deep`)
    try {
      this.saveObject(v)
    } finally {
      this.depth--
    }
  }

  private saveObject(v: object): void {
    const o = this.out
    if (v instanceof PyTuple) {
      if (this.open.has(v)) throw new PicklingError('a tuple that holds itself cannot be pickled here')
      if (v.length === 0) return o.u8(EMPTY_TUPLE)
      this.open.add(v)
      if (v.length <= 3) {
        for (const x of v) this.save(x)
        o.u8(TUPLE1 + v.length - 1)
      } else {
        o.u8(MARK)
        for (const x of v) this.save(x)
        o.u8(TUPLE)
      }
      this.open.delete(v)
      // An item may have reached this tuple through the memo already (Python pops it then).
      this.memoize(v)
      return
    }
    if (Array.isArray(v)) {
      o.u8(EMPTY_LIST)
      this.memoize(v)
      this.items(v, APPENDS)
      return
    }
    if (v instanceof PyByteArray) {
      if (this.proto >= 5) {
        o.u64(BYTEARRAY8, v.length)
        o.raw(v)
      } else {
        this.global('builtins', 'bytearray')
        if (this.proto < 3) {
          this.str(Buffer.from(v.buffer, v.byteOffset, v.length).toString('latin1'))
          this.str('latin-1')
          o.u8(TUPLE2)
        } else {
          this.bytes(v)
          o.u8(TUPLE1)
        }
        o.u8(REDUCE)
      }
      this.memoize(v)
      return
    }
    if (v instanceof Uint8Array) {
      this.bytes(v)
      this.memoize(v)
      return
    }
    if (v instanceof PyFloat) return this.float(v.value)
    if (v instanceof Map) {
      o.u8(EMPTY_DICT)
      this.memoize(v)
      for (const k of v.keys()) if (Array.isArray(k) && !(k instanceof PyTuple)) throw new PicklingError("a dict key that is a list: Python's dict keys must be hashable (use a PyTuple)")
      this.pairs(v.entries())
      return
    }
    if (v instanceof Set) {
      const frozen = v instanceof PyFrozenSet
      if (this.proto >= 4) {
        if (frozen) {
          o.u8(MARK)
          for (const x of v) this.save(x)
          o.u8(FROZENSET)
        } else {
          o.u8(EMPTY_SET)
          this.memoize(v)
          this.items(v, ADDITEMS)
          return
        }
      } else {
        this.global('builtins', frozen ? 'frozenset' : 'set')
        o.u8(EMPTY_LIST)
        this.memoize([...v])
        this.items(v, APPENDS)
        o.u8(TUPLE1)
        o.u8(REDUCE)
      }
      this.memoize(v)
      return
    }
    if (v instanceof PyObject) {
      this.global(v.module, v.name)
      this.save(tuple(...v.args))
      if (v.kwargs) {
        if (this.proto < 4) throw new PicklingError(`${v.module}.${v.name} with keyword arguments needs protocol 4`)
        this.save(v.kwargs)
        o.u8(NEWOBJ_EX)
      } else {
        o.u8(v.newobj ? NEWOBJ : REDUCE)
      }
      this.memoize(v)
      if (v.state !== undefined) {
        this.save(v.state)
        o.u8(BUILD)
      }
      return
    }
    if (v instanceof PyGlobal) {
      this.global(v.module, v.name)
      this.memoize(v)
      return
    }
    const proto = Object.getPrototypeOf(v)
    if (proto === Object.prototype || proto === null) {
      o.u8(EMPTY_DICT)
      this.memoize(v)
      this.pairs(Object.entries(v))
      return
    }
    throw new PicklingError(`a ${proto?.constructor?.name ?? 'class'} object cannot be pickled: send plain data (objects, arrays, Maps, Sets, numbers, strings, bytes), or a PyObject`)
  }
}

/**
 * Python's `pickle.dumps`: the pickle of a value, protocol 4 unless told (2–5); CPython's
 * `pickle.loads` reads it.
 * @throws {@link PicklingError} for a value Python has no form of (a function, a class instance), or
 * one nested deeper than maxDepth or than this thread's stack holds.
 */
export function dumps(value: unknown, options: PickleOptions = {}): Buffer {
  const proto = options.protocol ?? 4
  if (![2, 3, 4, 5].includes(proto)) throw new PicklingError(`pickle protocol ${proto}: this codec writes 2 to 5`)
  const p = new Pickler(out, proto, options.maxDepth ?? 1000)
  p.out.op2(PROTO, proto)
  try {
    p.save(value)
  } catch (e) {
    // The stack ran out before maxDepth (a maxDepth set beyond what this thread's stack holds).
    if (e instanceof RangeError) throw new PicklingError(`the value cannot be pickled: ${e.message}`, { cause: e })
    throw e
  }
  p.out.u8(STOP)
  const result = Buffer.from(out.buf.subarray(0, out.pos))
  // One writer per thread (dumps calls nothing that pickles again); a huge message's room is let go.
  if (out.buf.length > 1 << 20) out.buf = Buffer.allocUnsafe(256)
  return result
}

const out = new Out(256)

/** Whether a message looks like a pickle (what CPython's Connection sends starts with PROTO). */
export function looksLikePickle(b: Uint8Array): boolean {
  return b.length >= 3 && b[0] === PROTO && b[1] >= 2 && b[1] <= 5
}

// Connections with serializer 'pickle' (connection.ts) use this module through codecs.ts.
providePickle({ dumps, loads })
