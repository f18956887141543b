// The task every pool in bench/pool.ts runs, in each peer's worker format.

/** Busy for `ms` milliseconds of wall time: a CPU task of known length. */
export function spin(ms: number): number {
  const end = performance.now() + ms
  let n = 0
  while (performance.now() < end) n++
  return n
}

export type Job = { op: 'double'; x: number } | { op: 'spin'; ms: number }

export function run(job: Job): number {
  return job.op === 'double' ? job.x * 2 : spin(job.ms)
}
