// The same package from CommonJS (Node 20 can require() an ES module without top-level await).
import { AioLock, AioQueue, AioProcess, type Timeout } from 'aioprocessing'

export function typedFromCommonJs(): boolean {
  const t: Timeout = 5
  const q = new AioQueue<number>()
  q.put(1)
  void AioProcess
  return new AioLock().acquire(true, t)
}
