// Python's manager protocol on an AioManager's server, so that an unmodified
// `multiprocessing.managers.SyncManager(address, authkey).connect()` (CPython 3.11–3.13) uses the
// objects Node hosts. The server tells the protocols apart by a connection's first message: the
// library's own format starts with a small tag, a pickle with PROTO (0x80).
//
// Python's wire (Lib/multiprocessing/managers.py): every message is a pickle. A request is
// `(ident, methodname, args, kwds)`; a connection starts with a call of the server itself (ident
// None: 'create', 'incref', 'decref', 'dummy', 'accept_connection'...); after 'accept_connection'
// it carries a proxy's calls of `methodname` on the object `ident`. An answer is `('#RETURN', value)`,
// `('#ERROR', exception)` (raised as is in Python), `('#TRACEBACK', text)` or `('#PROXY', (exposed,
// token))`. Python names and seconds are turned into the library's names and milliseconds here,
// and the library's errors into Python's exceptions (queue.Empty, KeyError...).

import { dumps, loads, tuple, PyObject, PyTuple } from '../ipc/pickle.js'
import { ValueError } from '../core/errors.js'
import { toPython } from './py-errors.js'
import { HOSTED, HostedDict, HostedList, HostedNamespace, mapTree, type ClientRef, type HostedType } from './manager-types.js'

/** What the Python protocol needs of the server (manager-server.ts). */
export interface PyHost {
  readonly address: string | [string, number]
  /** Hosts an object and returns its id. */
  hostPython(typeid: string, obj: unknown, type: HostedType): number
  /** An object of a typeid the server knows (the library's, or registered with register()), not hosted yet. */
  make(typeid: string, args: unknown[]): Promise<{ typeid: string; obj: unknown; type: HostedType }>
  lookup(id: number): { typeid: string; obj: unknown; type: HostedType } | undefined
  pyIncref(id: number): void
  pyDecref(id: number): void
  /** The object a token of a Node client's (manager-server.ts keepIn) stands for, taken out; undefined for anything else. */
  taken(v: unknown): object | undefined
  stop(): void
}

/** Python's seconds (None = forever) as the library's milliseconds. */
function ms(t: unknown, negativeIsForever = false): number | null {
  if (t === null || t === undefined) return null
  if (typeof t !== 'number' && typeof t !== 'bigint') throw pyError('builtins', 'TypeError', `timeout must be a number, not ${typeof t}`)
  const s = Number(t)
  if (negativeIsForever && s === -1) return null
  return s * 1000
}

/** A Python call's arguments by name: positional ones, then keywords, as `names` orders them. */
function named(args: readonly unknown[], kwds: Record<string, unknown> | undefined, names: readonly string[], method: string): unknown[] {
  const out = names.map((_, i) => args[i])
  for (const [k, v] of Object.entries(kwds ?? {})) {
    const i = names.indexOf(k)
    if (i < 0) throw pyError('builtins', 'TypeError', `${method}() got an unexpected keyword argument '${k}'`)
    out[i] = v
  }
  return out
}

function pyError(module: string, name: string, ...args: unknown[]): PyObject {
  return new PyObject(module, name, args)
}

/** A Python method: the library's method it calls and how its arguments become that method's. */
interface PyMethod {
  call?: string
  params?: readonly string[]
  /** The library's arguments from Python's, by name. */
  map?: (a: unknown[]) => unknown[]
}

const QUEUE: Record<string, PyMethod> = {
  put: { call: 'put', params: ['item', 'block', 'timeout'], map: ([item, block, t]) => [item, block ?? true, ms(t)] },
  // The hosted queue serves put and get; its putNowait and getNowait are those with block false.
  put_nowait: { call: 'put', params: ['item'], map: ([item]) => [item, false, null] },
  get: { call: 'get', params: ['block', 'timeout'], map: ([block, t]) => [block ?? true, ms(t)] },
  get_nowait: { call: 'get', params: [], map: () => [false, null] },
  qsize: { call: 'qsize', params: [] },
  empty: { call: 'empty', params: [] },
  full: { call: 'full', params: [] },
}
const JOINABLE: Record<string, PyMethod> = { ...QUEUE, task_done: { call: 'taskDone', params: [] }, join: { call: 'join', params: [] } }
const ACQUIRE: PyMethod = { call: 'acquire', params: ['blocking', 'timeout'], map: ([b, t]) => [b ?? true, ms(t, true)] }
const LOCK: Record<string, PyMethod> = { acquire: ACQUIRE, release: { call: 'release', params: [] } }
const SEMAPHORE: Record<string, PyMethod> = { acquire: ACQUIRE, release: { call: 'release', params: ['n'], map: ([n]) => [n ?? 1] } }
const CONDITION: Record<string, PyMethod> = {
  ...LOCK,
  wait: { call: 'wait', params: ['timeout'], map: ([t]) => [ms(t)] },
  notify: { call: 'notify', params: ['n'], map: ([n]) => [n ?? 1] },
  notify_all: { call: 'notifyAll', params: [] },
}
const EVENT: Record<string, PyMethod> = {
  is_set: { call: 'isSet', params: [] },
  set: { call: 'set', params: [] },
  clear: { call: 'clear', params: [] },
  wait: { call: 'wait', params: ['timeout'], map: ([t]) => [ms(t)] },
}
const BARRIER_ATTRS: Record<string, string> = { parties: 'parties', n_waiting: 'nWaiting', broken: 'broken' }
const BARRIER: Record<string, PyMethod> = {
  wait: { call: 'wait', params: ['timeout'], map: ([t]) => [ms(t)] },
  abort: { call: 'abort', params: [] },
  reset: { call: 'reset', params: [] },
  __getattribute__: {
    call: '__get__',
    params: ['name'],
    map: ([name]) => {
      const js = BARRIER_ATTRS[String(name)]
      if (!js) throw pyError('builtins', 'AttributeError', `'Barrier' object has no attribute '${String(name)}'`)
      return [js]
    },
  },
}

/** Python's manager Value: a plain holder of any value (not shared memory), as in managers.py. */
class PyValue {
  constructor(readonly typecode: unknown, public value: unknown) {}
}

/** How each typeid a Python SyncManager knows is made here and what its proxies may call. */
interface PyType {
  /** The library's hosted type (manager-types.ts HOSTED), or a container of this file. */
  hosted?: string
  create?: (args: unknown[], kwds: Record<string, unknown> | undefined) => unknown
  methods: Record<string, PyMethod>
  /** Python's create() arguments as the hosted type's. */
  args?: (args: unknown[], kwds: Record<string, unknown> | undefined) => unknown[]
}

const PY_TYPES: Record<string, PyType> = {
  Queue: { hosted: 'Queue', methods: QUEUE, args: (a, k) => [named(a, k, ['maxsize'], 'Queue')[0] ?? 0] },
  JoinableQueue: { hosted: 'JoinableQueue', methods: JOINABLE, args: (a, k) => [named(a, k, ['maxsize'], 'JoinableQueue')[0] ?? 0] },
  Lock: { hosted: 'Lock', methods: LOCK, args: () => [] },
  RLock: { hosted: 'RLock', methods: LOCK, args: () => [] },
  Semaphore: { hosted: 'Semaphore', methods: SEMAPHORE, args: (a, k) => [named(a, k, ['value'], 'Semaphore')[0] ?? 1] },
  BoundedSemaphore: { hosted: 'BoundedSemaphore', methods: SEMAPHORE, args: (a, k) => [named(a, k, ['value'], 'BoundedSemaphore')[0] ?? 1] },
  Condition: { hosted: 'Condition', methods: CONDITION, args: () => [] },
  Event: { hosted: 'Event', methods: EVENT, args: () => [] },
  Barrier: {
    hosted: 'Barrier',
    methods: BARRIER,
    args: (a, k) => {
      const [parties, action, timeout] = named(a, k, ['parties', 'action', 'timeout'], 'Barrier')
      if (action !== undefined && action !== null) throw pyError('builtins', 'TypeError', 'a Barrier action cannot cross from Python to a Node manager')
      return [parties, null, ms(timeout)]
    },
  },
  Value: {
    create: (a, k) => {
      const [typecode, value] = named(a, k, ['typecode', 'value', 'lock'], 'Value')
      return new PyValue(typecode, value)
    },
    methods: { get: {}, set: { params: ['value'] } },
  },
  dict: {
    create: (a, k) => {
      const d = new HostedDict()
      if (a[0] !== undefined) for (const [key, v] of pyPairs(a[0])) d.set(key, v)
      for (const [key, v] of Object.entries(k ?? {})) d.set(key, v)
      return d
    },
    methods: Object.fromEntries(['__contains__', '__delitem__', '__getitem__', '__iter__', '__len__', '__setitem__', 'clear', 'copy', 'get', 'items', 'keys', 'pop', 'popitem', 'setdefault', 'update', 'values'].map((m) => [m, {}])),
  },
  list: {
    create: (a) => new HostedList(a[0] === undefined ? [] : pyItems(a[0])),
    methods: Object.fromEntries(['__add__', '__contains__', '__delitem__', '__getitem__', '__len__', '__mul__', '__reversed__', '__rmul__', '__setitem__', 'append', 'count', 'extend', 'index', 'insert', 'pop', 'remove', 'reverse', 'sort', '__imul__'].map((m) => [m, {}])),
  },
  Namespace: {
    create: (_a, k) => new HostedNamespace(k ?? {}),
    methods: { __getattribute__: {}, __setattr__: {}, __delattr__: {} },
  },
  Iterator: { methods: { __next__: {}, send: {}, throw: {}, close: {} } },
}

/** The hosted type of a container of this file: its Python methods, run on the object here. */
const PY_CONTAINER: HostedType = { create: () => undefined, call: async () => undefined }

/** Where a Python connection's answers go; drain() settles when the socket's buffer has room (at once if it has). */
export interface PyWire {
  send(bytes: Uint8Array): void
  drain(): Promise<void>
}

/**
 * Requests read ahead of the one being answered, past which the socket is not read. Python's own
 * client has one in flight; a peer that sends more without reading its answers is held to this.
 */
const MAX_READ_AHEAD = 64

/**
 * One connection from a Python client: its requests are answered in order, one at a time, and an
 * answer waits until the socket took the one before, as Python's server thread blocks in send():
 * a peer that does not read its answers stops being served instead of filling this heap.
 */
export class PyConnection {
  /** After 'accept_connection': requests are a proxy's method calls. */
  private proxying = false
  private queue: Promise<void> = Promise.resolve()
  /** Requests received and not answered yet. */
  private unanswered = 0

  constructor(private readonly host: PyHost, private readonly wire: PyWire, private readonly client: ClientRef, private readonly signal: AbortSignal) {}

  received(bytes: Buffer): void {
    this.unanswered++
    // Whatever a request does, the connection answers it and goes on to the next.
    this.queue = this.queue
      .then(() => this.wire.drain())
      .then(() => this.handle(bytes))
      .catch((error) => this.reply(tuple('#TRACEBACK', tracebackOf(error))))
      .finally(() => this.unanswered--)
  }

  /** For FramedSocket's backlog: while too many requests wait, the socket is not read until they are answered. */
  backlog(): Promise<void> | undefined {
    return this.unanswered > MAX_READ_AHEAD ? this.queue : undefined
  }

  private async handle(bytes: Buffer): Promise<void> {
    let request: unknown
    try {
      request = loads(bytes)
    } catch (error) {
      this.reply(tuple('#TRACEBACK', `the Node manager could not read the request: ${(error as Error).message}`))
      return
    }
    if (!Array.isArray(request) || request.length !== 4) {
      this.reply(tuple('#TRACEBACK', 'a request is (ident, methodname, args, kwds)'))
      return
    }
    const [ident, method, args, kwds] = request as [unknown, unknown, unknown, unknown]
    const argv = Array.isArray(args) ? [...args] : []
    const kw = kwds !== null && typeof kwds === 'object' && !(kwds instanceof Map) && !Array.isArray(kwds) ? (kwds as Record<string, unknown>) : undefined
    if (typeof method !== 'string') {
      this.reply(tuple('#TRACEBACK', 'methodname must be a str'))
      return
    }
    if (!this.proxying || ident === null) {
      this.reply(await this.serverCall(method, argv, kw))
      return
    }
    this.reply(await this.objectCall(ident, method, argv, kw))
  }

  private reply(msg: PyTuple): void {
    let bytes: Buffer
    try {
      bytes = dumps(msg)
    } catch (error) {
      bytes = dumps(tuple('#UNSERIALIZABLE', `the Node manager could not pickle the result: ${(error as Error).message}`))
    }
    this.wire.send(bytes)
  }

  /** The server's own methods (Server.public in managers.py); errors come back as '#TRACEBACK', as there. */
  private async serverCall(method: string, args: unknown[], kwds: Record<string, unknown> | undefined): Promise<PyTuple> {
    try {
      switch (method) {
        case 'dummy':
          return tuple('#RETURN', null)
        case 'accept_connection':
          this.proxying = true
          return tuple('#RETURN', null)
        case 'create': {
          const [typeid, ...rest] = args
          const [id, exposed] = await this.create(String(typeid), rest, kwds)
          return tuple('#RETURN', tuple(id, exposed))
        }
        case 'incref':
          this.host.pyIncref(Number(args[0]))
          return tuple('#RETURN', null)
        case 'decref':
          this.host.pyDecref(Number(args[0]))
          return tuple('#RETURN', null)
        case 'get_methods': {
          const token = args[0]
          const typeid = token instanceof PyObject && Array.isArray(token.state) ? String(token.state[0]) : ''
          return tuple('#RETURN', tuple(...Object.keys(PY_TYPES[typeid]?.methods ?? {})))
        }
        case 'number_of_objects':
          return tuple('#RETURN', 0)
        case 'debug_info':
          return tuple('#RETURN', 'a Node AioManager')
        case 'shutdown':
          setImmediate(() => this.host.stop())
          return tuple('#RETURN', null)
        default:
          throw new ValueError(`${JSON.stringify(method)} is not a method of the manager server`)
      }
    } catch (error) {
      return tuple('#TRACEBACK', tracebackOf(error))
    }
  }

  private async create(typeid: string, args: unknown[], kwds: Record<string, unknown> | undefined): Promise<[number, PyTuple<string>]> {
    const t = PY_TYPES[typeid]
    if (!t || typeid === 'Iterator') {
      // A typeid registered on the Node manager (the "remote manager" pattern: get_jobs() returning a
      // shared queue): served as the library's type it returns, or its public methods by name.
      if (kwds && Object.keys(kwds).length) throw new ValueError(`'${typeid}' takes positional arguments only from Python`)
      const made = await this.host.make(typeid, args)
      const known = PY_TYPES[made.typeid]
      const exposed = known && made.typeid !== 'Iterator' ? Object.keys(known.methods) : (made.type.exposed ?? [])
      // A dict, list or Namespace (one a Node client made and published) takes Python's calls here.
      const container = made.obj instanceof HostedDict || made.obj instanceof HostedList || made.obj instanceof HostedNamespace
      return [this.host.hostPython(made.typeid, made.obj, container ? PY_CONTAINER : made.type), tuple(...exposed)]
    }
    const exposed = tuple(...Object.keys(t.methods))
    if (t.create) return [this.host.hostPython(typeid, t.create(args, kwds), PY_CONTAINER), exposed]
    const hosted = HOSTED[t.hosted!]
    if (!hosted) throw new ValueError(`'${typeid}' is not loaded on this manager`)
    return [this.host.hostPython(typeid, hosted.create(t.args ? t.args(args, kwds) : args), hosted), exposed]
  }

  private async objectCall(ident: unknown, method: string, args: unknown[], kwds: Record<string, unknown> | undefined): Promise<PyTuple> {
    const id = Number(ident)
    const h = this.host.lookup(id)
    if (!h) return tuple('#TRACEBACK', `KeyError: ${String(ident)} (no such object on this manager: it was never created or is gone)`)
    const t = PY_TYPES[h.typeid]
    if (method === '__repr__' || method === '__str__') return tuple('#RETURN', reprOf(h.obj, h.typeid))
    if (method === '#GETVALUE') return tuple('#RETURN', valueOf(h.obj))
    if (!t) {
      // A registered user class: its public methods, by the name Python calls. A JavaScript
      // method has no parameter names to match keywords with: they are refused, not dropped.
      try {
        if (kwds && Object.keys(kwds).length) throw pyError('builtins', 'TypeError', `${method}() of a Node object takes positional arguments only, not ${Object.keys(kwds).join(', ')}=`)
        return tuple('#RETURN', await h.type.call(h.obj, method, args, this.signal, this.client, id))
      } catch (error) {
        return tuple('#ERROR', toPython(error))
      }
    }
    const m = t.methods[method]
    if (!m) return tuple('#ERROR', pyError('builtins', 'AttributeError', `method '${method}' of '${h.typeid}' object is not in exposed=${JSON.stringify(Object.keys(t?.methods ?? {}))}`))
    try {
      if (h.type === PY_CONTAINER) return this.containerCall(h.obj, h.typeid, method, args, kwds)
      const given = m.params ? named(args, kwds, m.params, method) : args
      const result = await h.type.call(h.obj, m.call ?? method, m.map ? m.map(given) : given, this.signal, this.client, id)
      // A container of the server's in the result (a list kept in a dict, a queue's item) goes
      // as a copy of its values: Python has no proxy of a Node client's object.
      return tuple('#RETURN', pyCopies(result, this.host))
    } catch (error) {
      return tuple('#ERROR', toPython(error))
    }
  }

  /** dict, list, Namespace, Value and iterators: Python's methods on the containers here. */
  private containerCall(obj: unknown, typeid: string, method: string, args: unknown[], kwds: Record<string, unknown> | undefined): PyTuple {
    const ret = (v: unknown): PyTuple => tuple('#RETURN', pyCopies(v, this.host))
    if (obj instanceof PyValue) {
      if (method === 'get') return ret(obj.value)
      obj.value = named(args, kwds, ['value'], 'set')[0]
      return ret(null)
    }
    if (obj instanceof HostedDict) {
      const r = dictCall(obj, method, args, kwds, (it) => this.proxyOf('Iterator', it))
      return r instanceof PyProxyResult ? tuple('#PROXY', r.payload) : ret(r)
    }
    if (obj instanceof HostedList) return ret(listCall(obj, method, args, kwds))
    if (obj instanceof HostedNamespace) {
      const name = String(args[0])
      if (method === '__getattribute__') {
        if (!obj.hasattr(name)) throw pyError('builtins', 'AttributeError', `'Namespace' object has no attribute '${name}'`)
        return ret(obj.getattr(name))
      }
      if (method === '__setattr__') obj.setattr(name, args[1])
      else if (!obj.hasattr(name)) throw pyError('builtins', 'AttributeError', name)
      else obj.delattr(name)
      return ret(null)
    }
    if (obj instanceof PyIterator) {
      if (method === '__next__') {
        const n = obj.it.next()
        if (n.done) throw pyError('builtins', 'StopIteration')
        return ret(n.value)
      }
      if (method === 'close') obj.it.return?.(undefined)
      return ret(null)
    }
    throw pyError('builtins', 'AttributeError', `'${typeid}' has no method '${method}'`)
  }

  /** A result that Python sees as a proxy ('#PROXY'): an iterator over a dict, as Python's DictProxy gives. */
  private proxyOf(typeid: string, it: Iterator<unknown>): PyProxyResult {
    const id = this.host.hostPython(typeid, new PyIterator(it), PY_CONTAINER)
    const address = typeof this.host.address === 'string' ? this.host.address : tuple(...this.host.address)
    return new PyProxyResult(tuple(tuple(...Object.keys(PY_TYPES[typeid].methods)), new PyObject('multiprocessing.managers', 'Token', [], tuple(typeid, address, id), true)))
  }
}

class PyIterator {
  constructor(readonly it: Iterator<unknown>) {}
}

/** A method's result that goes back as '#PROXY' rather than '#RETURN'. */
class PyProxyResult {
  constructor(readonly payload: PyTuple) {}
}

function keyError(key: unknown): PyObject {
  return pyError('builtins', 'KeyError', key)
}

function dictCall(d: HostedDict, method: string, args: unknown[], kwds: Record<string, unknown> | undefined, iterate: (it: Iterator<unknown>) => PyProxyResult): unknown {
  const [a, b] = args
  switch (method) {
    case '__contains__':
      return d.has(a)
    case '__getitem__':
      if (!d.has(a)) throw keyError(a)
      return d.getitem(a)
    case '__setitem__':
      d.set(a, b)
      return null
    case '__delitem__':
      if (!d.has(a)) throw keyError(a)
      d.delete(a)
      return null
    case '__len__':
      return d.len()
    case '__iter__':
      return iterate(d.keys()[Symbol.iterator]())
    case 'clear':
      d.clear()
      return null
    case 'copy':
      return new Map(d.map)
    case 'get':
      return d.has(a) ? d.getitem(a) : (b ?? null)
    case 'items':
      return d.items().map(([k, v]) => tuple(k, v))
    case 'keys':
      return d.keys()
    case 'values':
      return d.values()
    case 'pop':
      if (d.has(a)) return d.pop(a)
      if (args.length > 1) return b
      throw keyError(a)
    case 'popitem': {
      if (d.len() === 0) throw keyError('popitem(): dictionary is empty')
      return tuple(...d.popitem())
    }
    case 'setdefault':
      if (!d.has(a)) d.set(a, b ?? null)
      return d.getitem(a)
    case 'update':
      if (a !== undefined) for (const [k, v] of pyPairs(a)) d.set(k, v)
      for (const [k, v] of Object.entries(kwds ?? {})) d.set(k, v)
      return null
    default:
      throw pyError('builtins', 'AttributeError', method)
  }
}

/** A Python index (negative from the end) into a list of `n`, or IndexError. */
function indexOf(i: unknown, n: number): number {
  if (typeof i !== 'number' || !Number.isInteger(i)) throw pyError('builtins', 'TypeError', 'list indices must be integers or slices')
  const j = i < 0 ? n + i : i
  if (j < 0 || j >= n) throw pyError('builtins', 'IndexError', 'list index out of range')
  return j
}

/** Python's slice(start, stop, step) over a list of `n`: the indices it selects. */
function sliceIndices(s: PyObject, n: number): number[] {
  const [start, stop, step] = s.args as [number | null, number | null, number | null]
  const st = step ?? 1
  if (st === 0) throw pyError('builtins', 'ValueError', 'slice step cannot be zero')
  const clamp = (v: number | null, dflt: number, lo: number, hi: number): number => (v === null || v === undefined ? dflt : Math.min(Math.max(v < 0 ? v + n : v, lo), hi))
  const out: number[] = []
  if (st > 0) for (let i = clamp(start, 0, 0, n); i < clamp(stop, n, 0, n); i += st) out.push(i)
  else for (let i = clamp(start, n - 1, -1, n - 1); i > clamp(stop, -1, -1, n - 1); i += st) out.push(i)
  return out
}

function isSlice(v: unknown): v is PyObject {
  return v instanceof PyObject && v.module === 'builtins' && v.name === 'slice'
}

function listCall(l: HostedList, method: string, args: unknown[], kwds: Record<string, unknown> | undefined): unknown {
  const items = l.items
  const [a, b] = args
  switch (method) {
    case '__getitem__':
      return isSlice(a) ? sliceIndices(a, items.length).map((i) => items[i]) : items[indexOf(a, items.length)]
    case '__setitem__':
      if (isSlice(a)) {
        const idx = sliceIndices(a, items.length)
        const vals = pyItems(b)
        if ((a.args[2] ?? 1) === 1) spliceIn(items, idx[0] ?? Math.min(Math.max(Number(a.args[0] ?? 0), 0), items.length), idx.length, vals)
        else if (vals.length !== idx.length) throw pyError('builtins', 'ValueError', `attempt to assign sequence of size ${vals.length} to extended slice of size ${idx.length}`)
        else idx.forEach((i, k) => (items[i] = vals[k]))
      } else items[indexOf(a, items.length)] = b
      return null
    case '__delitem__':
      if (isSlice(a)) for (const i of sliceIndices(a, items.length).sort((x, y) => y - x)) items.splice(i, 1)
      else items.splice(indexOf(a, items.length), 1)
      return null
    case '__len__':
      return items.length
    case '__contains__':
      return items.some((x) => pyEqual(x, a))
    case '__add__':
      return [...items, ...(a as unknown[])]
    case '__mul__':
    case '__rmul__':
      return repeated(items, a)
    case '__imul__':
      spliceIn(items, 0, items.length, repeated(items, a))
      return null
    case '__reversed__':
      return [...items].reverse()
    case 'append':
      items.push(a)
      return null
    case 'extend': {
      const more = pyItems(a)
      if (items.length + more.length > MAX_LIST_ITEMS) throw tooLong()
      for (const x of more) items.push(x)
      return null
    }
    case 'insert':
      l.insert(Number(a), b)
      return null
    case 'pop': {
      if (items.length === 0) throw pyError('builtins', 'IndexError', 'pop from empty list')
      return items.splice(indexOf(a ?? -1, items.length), 1)[0]
    }
    case 'count':
      return items.filter((x) => pyEqual(x, a)).length
    case 'index': {
      const i = items.findIndex((x) => pyEqual(x, a))
      if (i < 0) throw pyError('builtins', 'ValueError', `${reprOf(a)} is not in list`)
      return i
    }
    case 'remove': {
      const i = items.findIndex((x) => pyEqual(x, a))
      if (i < 0) throw pyError('builtins', 'ValueError', 'list.remove(x): x not in list')
      items.splice(i, 1)
      return null
    }
    case 'reverse':
      items.reverse()
      return null
    case 'sort': {
      if (kwds?.key !== undefined && kwds.key !== null) throw pyError('builtins', 'TypeError', 'sort(key=...) cannot run on a Node manager')
      const reverse = Boolean(kwds?.reverse)
      items.sort((x, y) => pyCompare(x, y) * (reverse ? -1 : 1))
      return null
    }
    default:
      throw pyError('builtins', 'AttributeError', method)
  }
}

/**
 * The most items a list call may make (16 Mi, 128 MiB of slots): the Node manager's heap is
 * bounded, and a list past it ends the process with every client's objects, where Python would
 * raise MemoryError. Python's `[] * 10**9` is cheap there; here it must not be a loop of 10**9.
 */
const MAX_LIST_ITEMS = 2 ** 24

function tooLong(): PyObject {
  return pyError('builtins', 'MemoryError', `a list of more than ${MAX_LIST_ITEMS} items on a Node manager`)
}

/** Python's `list * n`: n an int (a bool is one); nothing for n <= 0. */
function repeated(items: readonly unknown[], n: unknown): unknown[] {
  if (typeof n === 'boolean') n = Number(n)
  if (typeof n !== 'bigint' && !(typeof n === 'number' && Number.isInteger(n))) throw pyError('builtins', 'TypeError', `can't multiply sequence by non-int of type '${pyTypeName(n)}'`)
  if (n <= 0 || items.length === 0) return []
  if (BigInt(items.length) * BigInt(n) > MAX_LIST_ITEMS) throw tooLong()
  const out: unknown[] = []
  for (let k = 0; k < Number(n); k++) for (const x of items) out.push(x)
  return out
}

/** items.splice(start, deleteCount, ...vals) without spreading vals into arguments (a million of them overflow the stack). */
function spliceIn(items: unknown[], start: number, deleteCount: number, vals: readonly unknown[]): void {
  if (items.length - deleteCount + vals.length > MAX_LIST_ITEMS) throw tooLong()
  const rest = items.splice(start)
  for (const x of vals) items.push(x)
  for (let i = deleteCount; i < rest.length; i++) items.push(rest[i])
}

/** The items of a Python iterable as a pickle carries it: a list or tuple, str, bytes, set, dict (its keys) or range. */
function pyItems(v: unknown): unknown[] {
  if (Array.isArray(v)) return v
  if (typeof v === 'string' || v instanceof Uint8Array || v instanceof Set) return [...v]
  if (v instanceof Map) return [...v.keys()]
  if (v instanceof PyObject && v.module === 'builtins' && v.name === 'range') {
    const [start, stop, step] = (v.args.length === 1 ? [0, v.args[0], 1] : [v.args[0], v.args[1], v.args[2] ?? 1]).map(Number)
    const n = Math.max(0, Math.ceil((stop - start) / step))
    if (n > MAX_LIST_ITEMS) throw tooLong()
    return Array.from({ length: n }, (_, i) => start + i * step)
  }
  if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) return Object.keys(v)
  throw pyError('builtins', 'TypeError', `'${pyTypeName(v)}' object is not iterable`)
}

/** A dict's update argument: a mapping, or an iterable of (key, value) pairs, as dict() takes. */
function pyPairs(v: unknown): [unknown, unknown][] {
  if (v instanceof Map) return [...v]
  if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) return Object.entries(v)
  return pyItems(v).map((pair, i) => {
    const kv = typeof pair === 'string' || pair instanceof Uint8Array ? [...pair] : pair
    if (!Array.isArray(kv) || kv.length !== 2) throw pyError('builtins', 'ValueError', `dictionary update sequence element #${i} has length ${Array.isArray(kv) ? kv.length : 1}; 2 is required`)
    return [kv[0], kv[1]]
  })
}

/** The name Python gives the type of a value a pickle carries, for its error messages. */
function pyTypeName(v: unknown): string {
  if (v === null || v === undefined) return 'NoneType'
  if (typeof v === 'boolean') return 'bool'
  if (typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v))) return 'int'
  if (typeof v === 'number') return 'float'
  if (typeof v === 'string') return 'str'
  if (v instanceof PyTuple) return 'tuple'
  if (Array.isArray(v)) return 'list'
  if (v instanceof Uint8Array) return 'bytes'
  if (v instanceof Set) return 'set'
  if (v instanceof PyObject) return v.name
  return 'dict'
}

/** Python's `<` for sort(): numbers with numbers, str with str, bytes with bytes, sequences item by item; else TypeError, as Python raises. */
function pyCompare(a: unknown, b: unknown): number {
  const numeric = (x: unknown): x is number | bigint | boolean => typeof x === 'number' || typeof x === 'bigint' || typeof x === 'boolean'
  if (numeric(a) && numeric(b)) {
    const [x, y] = [typeof a === 'boolean' ? Number(a) : a, typeof b === 'boolean' ? Number(b) : b]
    return x < y ? -1 : x > y ? 1 : 0
  }
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.compare(a, b)
  if (Array.isArray(a) && Array.isArray(b) && a instanceof PyTuple === b instanceof PyTuple) {
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      if (pyEqual(a[i], b[i])) continue
      return pyCompare(a[i], b[i])
    }
    return a.length - b.length
  }
  throw pyError('builtins', 'TypeError', `'<' not supported between instances of '${pyTypeName(a)}' and '${pyTypeName(b)}'`)
}

/** Python's == for the values a pickle carries: structural for containers and bytes. */
function pyEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a === 'bigint' || typeof b === 'bigint') return typeof a !== 'object' && typeof b !== 'object' && BigInt(a as number) === BigInt(b as number)
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.compare(a, b) === 0
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => pyEqual(x, b[i]))
  return false
}

/** A short Python-like repr, for print(proxy). */
function reprOf(v: unknown, typeid?: string): string {
  if (v instanceof HostedDict) return `{${[...v.map].map(([k, x]) => `${reprOf(k)}: ${reprOf(x)}`).join(', ')}}`
  if (v instanceof HostedList) return `[${v.items.map((x) => reprOf(x)).join(', ')}]`
  if (v instanceof HostedNamespace) return v.toString()
  if (v instanceof PyValue) return `Value(${reprOf(v.typecode)}, ${reprOf(v.value)})`
  if (v === null || v === undefined) return 'None'
  if (v === true) return 'True'
  if (v === false) return 'False'
  if (typeof v === 'string') return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`
  if (typeof v === 'number' || typeof v === 'bigint') return String(v)
  if (v instanceof PyTuple) return `(${v.map((x) => reprOf(x)).join(', ')}${v.length === 1 ? ',' : ''})`
  if (Array.isArray(v)) return `[${v.map((x) => reprOf(x)).join(', ')}]`
  return typeid ? `<${typeid} object of a Node manager: ${String(v)}>` : String(v)
}

/**
 * A by-value object's result for a Python client, with the containers a Node client put in it (a
 * dict in a queue item; as tokens, manager-server.ts keepIn) as copies of their values: Python has no proxy of a Node client's object (their
 * references are counted differently), and the container itself cannot be pickled.
 */
function pyCopies(value: unknown, host: PyHost): unknown {
  return mapTree(value, (v) => {
    const obj = host.taken(v) ?? v
    if (obj instanceof HostedDict || obj instanceof HostedList || obj instanceof HostedNamespace) return pyCopies(valueOf(obj), host)
    return obj === v ? undefined : obj
  })
}

/** '#GETVALUE': a copy of the referent. */
function valueOf(v: unknown): unknown {
  if (v instanceof HostedDict) return new Map(v.map)
  if (v instanceof HostedList) return [...v.items]
  if (v instanceof PyValue) return v.value
  if (v instanceof HostedNamespace) return Object.fromEntries(v.attrs)
  throw pyError('builtins', 'TypeError', 'this object has no value to copy')
}


function tracebackOf(error: unknown): string {
  // A Python exception made here (a create's TypeError): its last line as format_exc() ends.
  if (error instanceof PyObject) return `Traceback (from a Node AioManager):\n${error.name}: ${error.args.map((a) => (typeof a === 'string' ? a : reprOf(a))).join(', ')}\n`
  const e = error as Error
  return `Traceback (from a Node AioManager):\n${e?.stack ?? String(error)}\n`
}

