// Type-checks the built package as a user imports it (`tsc -p test/consumer`, part of npm test).
import {
  AioArray, AioBarrier, AioBoundedSemaphore, AioClient, AioCondition, AioConnection, AioEvent, AioJoinableQueue,
  AioListener, AioLock, AioPipe, AioProcess, AioQueue, AioRLock, AioSemaphore, AioSimpleQueue, AioValue,
  AuthenticationError, BrokenBarrierError, BufferTooShort, EOFError, Empty, Full, NotImplementedError, OSError,
  ProcessError, RuntimeError, TimeoutError, ValueError, coro_wait, currentProcess, getContext, wait,
  type CoroOptions, type ProcessOptions, type QueueOptions, type Timeout,
  AioPool, AioAsyncResult, AioIMapIterator, WorkerLostError, PoolTerminatedError, MaybeEncodingError, RemoteTraceback,
  type PoolOptions, type PoolFunction, type AsyncOptions,
  AioManager, AioLockProxy, AioRLockProxy, AioSemaphoreProxy, AioBoundedSemaphoreProxy, AioEventProxy, AioConditionProxy,
  AioBarrierProxy, AioValueProxy, AioArrayProxy, AioQueueProxy, AioJoinableQueueProxy, AioSimpleQueueProxy,
  AioDictProxy, AioListProxy, AioNamespaceProxy, AioAutoProxy, type ManagerOptions, type SpawnContext,
} from 'aioprocessing'

export async function typed(): Promise<void> {
  const lock: AioLock = new AioLock()
  const ok: boolean = lock.acquire(true, 10)
  const later: Promise<boolean> = lock.coro_acquire(true, null, { signal: AbortSignal.timeout(10) })
  const q = new AioQueue<{ id: number }>(10, { bufferSize: 1024 } satisfies QueueOptions)
  q.put({ id: 1 })
  const item: { id: number } = await q.coro_get()
  const [a, b]: [AioConnection, AioConnection] = AioPipe()
  const p = new AioProcess({ target: (x: number) => x, args: [1] } satisfies ProcessOptions<[number]>)
  const t: Timeout = null
  const o: CoroOptions = {}
  void [ok, later, item, a, b, p, t, o, wait, coro_wait, AioClient, AioListener, currentProcess, getContext]
  void [AioArray, AioBarrier, AioBoundedSemaphore, AioCondition, AioEvent, AioJoinableQueue, AioRLock, AioSemaphore, AioSimpleQueue, AioValue]
  await using pool = new AioPool({ processes: 2 } satisfies PoolOptions)
  const doubled: number[] = await pool.coro_map((x: number) => x * 2, [1, 2])
  const squared: number = pool.apply((x: number) => x * x, [3])
  const r: AioAsyncResult<string> = pool.applyAsync(async (s: string) => s, ['a'], { callback: (v: string) => void v } satisfies AsyncOptions<string>)
  const it: AioIMapIterator<number> = pool.imap((x: number) => x, [1])
  for await (const x of it) void (x satisfies number)
  const f: PoolFunction<number> = { module: 'm', name: 'n' }
  using manager = new AioManager({ authkey: 'k' } satisfies ManagerOptions)
  const ml: AioLockProxy = manager.Lock()
  const mq: AioQueueProxy = manager.Queue()
  const md: AioDictProxy = manager.dict()
  const got: boolean = await ml.coro_acquire(true, 10)
  const spawn: SpawnContext = getContext('spawn')
  const sq: AioQueueProxy<string> = spawn.AioQueue<string>()
  const gotten: string = await sq.coro_get()
  void [doubled, squared, r, f, mq, md, got, gotten, WorkerLostError, PoolTerminatedError, MaybeEncodingError, RemoteTraceback]
  void [AioRLockProxy, AioSemaphoreProxy, AioBoundedSemaphoreProxy, AioEventProxy, AioConditionProxy, AioBarrierProxy, AioValueProxy, AioArrayProxy, AioJoinableQueueProxy, AioSimpleQueueProxy, AioListProxy, AioNamespaceProxy, AioAutoProxy]
  void [AuthenticationError, BrokenBarrierError, BufferTooShort, EOFError, Empty, Full, NotImplementedError, OSError, ProcessError, RuntimeError, TimeoutError, ValueError]
}

// Types that carry the data (each @ts-expect-error fails the build if the line compiles).
export function typedValues(): void {
  const i = new AioValue('i', 1)
  const n: number = i.value
  const q = new AioValue('q', 2n)
  const big: bigint = q.value
  const c = new AioValue('c', 'x')
  const byte: Buffer = c.value
  // @ts-expect-error a 'q' value is a bigint, not a number
  const wrong: number = q.value
  // @ts-expect-error an 'i' value is a number
  i.value = 3n
  const ctx = getContext('thread')
  const strings = ctx.AioQueue<string>()
  const s: string = strings.get()
  // @ts-expect-error the thread context's queue is generic: a string queue takes strings
  strings.put(42)
  const d: bigint = ctx.AioValue('Q').value
  const spawn = getContext('spawn')
  const sv: number = spawn.AioValue('d').value
  // @ts-expect-error 'z' is no typecode (it compiled: Typecode was any string)
  const noCode = new AioValue('z', 0)
  // @ts-expect-error a misspelt start method (it compiled: context was unknown)
  const misspelt = new AioPool({ context: 'spwan' })
  const spawnPool = new AioPool({ context: spawn })
  void [n, big, byte, wrong, s, d, sv, noCode, misspelt, spawnPool]
}

// A process's args are checked against its inline target's parameters.
export function typedArgs(): void {
  const ok = new AioProcess({ target: (x: number, s: string) => s.repeat(x), args: [2, 'ab'] })
  // @ts-expect-error args do not match the target's parameters
  const bad = new AioProcess({ target: (x: number) => x, args: ['a'] })
  // @ts-expect-error a missing argument
  const missing = new AioProcess({ target: (x: number, y: number) => x + y, args: [1] })
  const v = new AioValue('i', 0)
  const shared = new AioProcess({ target: (counter: AioValue<'i'>) => { counter.value += 1 }, args: [v] })
  const anyValue = (value: AioValue): void => void value
  anyValue(v) // an AioValue<'i'> is an AioValue
  const byModule = new AioProcess({ target: { module: 'pkg', name: 'run' }, args: [1, 'anything'] })
  void [ok, bad, missing, shared, byModule]
}

// A manager's containers and queues are generic.
export function typedManager(m: AioManager): void {
  const d = m.dict<string, number>({ a: 1 })
  const one: number | undefined = d.get('a')
  // @ts-expect-error a dict of numbers takes numbers
  d.set('b', 'two')
  const l = m.list<string>(['x'])
  const first: string = l.get(0)
  const q = m.Queue<{ id: number }>()
  // @ts-expect-error a queue of { id } takes { id }
  q.put('not an item')
  const jq = m.JoinableQueue<number>()
  void [one, first, q, jq]
}

// A pool task's args are checked against an inline task's parameters.
export async function typedTasks(pool: AioPool): Promise<void> {
  const n: number = await pool.coro_apply((x: number, y: number) => x + y, [1, 2])
  // @ts-expect-error a string where the task takes a number
  pool.apply((x: number) => x, ['1'])
  const r = pool.applyAsync((s: string) => s.length, ['abc'])
  const byModule: unknown = pool.apply({ module: 'pkg', name: 'task' }, [1, 'anything'])
  const lengths: number[] = pool.map((s: string) => s.length, ['a', 'bb'])
  // @ts-expect-error map's inputs are checked against the task's parameter
  pool.map((s: string) => s.length, [1, 2])
  const sums: number[] = await pool.coro_starmap((x: number, y: number) => x + y, [[1, 2], [3, 4]])
  // @ts-expect-error starmap's argument lists are checked against the task's parameters
  pool.starmap((x: number, y: number) => x + y, [[1, 'b']])
  const upper: AioIMapIterator<string> = pool.imap((s: string) => s.toUpperCase(), ['a'])
  // @ts-expect-error imapUnordered's inputs are checked too
  pool.imapUnordered((s: string) => s, [1])
  const anyInputs: unknown[] = pool.map({ module: 'pkg', name: 'task' }, [1, 'x'])
  void [n, r, byModule, lengths, sums, upper, anyInputs]
}

// An array's items are typed from its typecode.
export function typedArrays(m: AioManager): void {
  const d = new AioArray('d', [1.5, 2])
  const x: number = d.get(0)
  const q = new AioArray('q', 4)
  const big: bigint = q.get(0)
  // @ts-expect-error a 'q' array holds bigints
  q.set(0, 1)
  // @ts-expect-error a 'd' array's items are numbers
  const wrong: bigint = d.get(1)
  const items: number[] = d.toArray()
  const proxy = getContext('spawn').AioArray('Q', 2)
  const p: bigint = proxy.get(0)
  const managed: number = m.Array('i', [1, 2]).get(0)
  void [x, big, wrong, items, p, managed]
}
