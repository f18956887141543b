// Type-checks the built package as a user imports it (`tsc -p test/consumer`, part of npm test).
import {
  AioArray, AioBarrier, AioBoundedSemaphore, AioClient, AioCondition, AioConnection, AioEvent, AioJoinableQueue,
  AioListener, AioLock, AioPipe, AioProcess, AioQueue, AioRLock, AioSemaphore, AioSimpleQueue, AioValue,
  AuthenticationError, BrokenBarrierError, BufferTooShort, EOFError, Empty, Full, NotImplementedError, OSError,
  ProcessError, RuntimeError, TimeoutError, ValueError, coro_wait, currentProcess, getContext, wait,
  type CoroOptions, type ProcessOptions, type QueueOptions, type Timeout,
} from 'aioprocessing'

export async function typed(): Promise<void> {
  const lock: AioLock = new AioLock()
  const ok: boolean = lock.acquire(true, 10)
  const later: Promise<boolean> = lock.coro_acquire(true, null, { signal: AbortSignal.timeout(10) })
  const q = new AioQueue<{ id: number }>(10, { bufferSize: 1024 } satisfies QueueOptions)
  q.put({ id: 1 })
  const item: { id: number } = await q.coro_get()
  const [a, b]: [AioConnection, AioConnection] = AioPipe()
  const p = new AioProcess({ target: (x: number) => x, args: [1] } satisfies ProcessOptions)
  const t: Timeout = null
  const o: CoroOptions = {}
  void [ok, later, item, a, b, p, t, o, wait, coro_wait, AioClient, AioListener, currentProcess, getContext]
  void [AioArray, AioBarrier, AioBoundedSemaphore, AioCondition, AioEvent, AioJoinableQueue, AioRLock, AioSemaphore, AioSimpleQueue, AioValue]
  void [AuthenticationError, BrokenBarrierError, BufferTooShort, EOFError, Empty, Full, NotImplementedError, OSError, ProcessError, RuntimeError, TimeoutError, ValueError]
}
