// The pool and the manager in a few lines: a pool maps a function over worker threads; a manager
// holds a dict that a process of the spawn context (a new Node process) writes into.
import { AioManager, AioPool, getContext, type AioDictProxy } from '../generated/index.generated.js'

{
  await using pool = new AioPool({ processes: 2 }) // Python: with Pool(2) as pool:
  const squares = await pool.coro_map((x: number) => x * x, Array.from({ length: 10 }, (_, i) => i))
  console.log(`pool.coro_map squares: ${squares.join(' ')}`)
}

{
  await using manager = new AioManager() // Python: with Manager() as manager:
  manager.start()
  const results = manager.dict()
  const child = getContext('spawn').AioProcess({
    target: (d: AioDictProxy) => d.set('written by', `process ${process.pid}`),
    args: [results],
  })
  child.start()
  await child.coro_join()
  console.log(`manager dict: ${JSON.stringify(Object.fromEntries(results.items() as [string, unknown][]))}, child exitcode ${child.exitcode}`)
}
