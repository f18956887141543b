// `npm run bench`: runs the primitive benchmarks and prints one Markdown table on stdout
// (progress goes to stderr so the table can be redirected on its own).
//
// Each section runs in a process of its own (this file again, with BENCH_SECTION set), so that a
// peer that kills its process survives as a failed section: piscina's worker once hit a V8 fatal
// error inside Node 20's require(esm) and took the whole run, and every row, with it. A section
// that fails is run once more, then reported as failed with its exit and last error line.

import { availableParallelism, cpus } from 'node:os'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { benchPrimitives, type Row } from './primitives.js'
import { benchQueues } from './queues.js'
import { benchPipes } from './pipes.js'
import { benchPool } from './pool.js'
import { benchManager } from './manager.js'
import { benchSpawnPool } from './spawn-pool.js'
import { benchPythonManager } from './python-manager.js'
import { benchPickle } from './pickle.js'

function fmt(v: number | null, unit: string): string {
  // A failed run's NaN crosses from its section's process as null (JSON): the row says so.
  if (v === null || !Number.isFinite(v)) return 'failed'
  // Rates and µs-scale figures: whole numbers with separators; small ns/pair keep one decimal.
  if (unit === 'ns/pair' && v < 1000) return v.toFixed(1)
  if (unit === '× ideal') return v.toFixed(3)
  if (unit === 'ms' && v < 1000) return v.toFixed(1)
  return Math.round(v).toLocaleString('en-US')
}

function table(rows: Row[]): string {
  // Group rows by benchmark, in first-appearance order, so Node and Python peers sit together.
  const order = [...new Set(rows.map((r) => r.benchmark))]
  const sorted = order.flatMap((b) => rows.filter((r) => r.benchmark === b))
  const lines = ['| benchmark | implementation | median | min–max | unit |', '|---|---|--:|--:|---|']
  for (const r of sorted) {
    lines.push(`| ${r.benchmark} | ${r.implementation} | ${fmt(r.median, r.unit)} | ${fmt(r.min, r.unit)}–${fmt(r.max, r.unit)} | ${r.unit} |`)
  }
  return lines.join('\n')
}

const started = performance.now()
const only = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY, 'i') : undefined
const log = (line: string): boolean => process.stderr.write(`bench: ${line}\n`)
// The Redis context's bench lives in its package (built after this one): loaded by path.
const SECTIONS: [string, () => Promise<Row[]>][] = [
  ['primitives', () => benchPrimitives({ log, only })],
  ['queues', () => benchQueues({ log, only })],
  ['pipes', () => benchPipes({ log, only })],
  ['pool', () => benchPool({ log, only })],
  ['spawn-pool', () => benchSpawnPool({ log, only })],
  ['manager', () => benchManager({ log, only })],
  ['python-manager', () => benchPythonManager({ log, only })],
  ['pickle', () => benchPickle({ log, only })],
  ['redis', async () => ((await import(new URL('../../redis/dist/bench/redis.js', import.meta.url).href)) as { benchRedis: typeof benchPool }).benchRedis({ log, only })],
]
/** The line a section's process prints its rows on. */
const ROWS = 'bench-rows: '

const section = process.env.BENCH_SECTION
if (section !== undefined) {
  const run = SECTIONS.find(([name]) => name === section)
  if (!run) throw new Error(`no bench section ${section}`)
  process.stdout.write(`${ROWS}${JSON.stringify(await run[1]())}\n`)
  process.exit(0)
}

/** A section in a process of its own: its rows, or why it failed (its exit and last error line). */
function runSection(name: string): Promise<Row[] | string> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], { env: { ...process.env, BENCH_SECTION: name }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let lastError = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      process.stderr.write(d)
      const lines = d.split('\n').filter((l) => /error/i.test(l))
      if (lines.length) lastError = lines[lines.length - 1].trim()
    })
    child.on('close', (code, signal) => {
      const line = out.split('\n').find((l) => l.startsWith(ROWS))
      if (code === 0 && line) resolve(JSON.parse(line.slice(ROWS.length)) as Row[])
      else resolve(`exit ${signal ?? code}${lastError ? `: ${lastError}` : ''}`)
    })
  })
}

const rows: Row[] = []
const failed: string[] = []
for (const [name] of SECTIONS) {
  let got = await runSection(name)
  if (typeof got === 'string') {
    log(`${name}: failed (${got}); running it again`)
    got = await runSection(name)
  }
  if (typeof got === 'string') failed.push(`${name} (${got})`)
  else rows.push(...got)
}

console.log(table(rows))
console.log()
const counts = [...new Map(rows.map((r) => [`${r.benchmark} / ${r.implementation}`, r])).values()]
const runs = rows[0]?.runs ?? 0
console.log(`Median of ${runs} runs after one warm-up run unless a row says otherwise. Operations per run:`)
// Rows with another run count (queues, memory) say so: a median of 3 is not one of 7.
for (const r of counts) console.log(`- ${r.benchmark} / ${r.implementation}: ${r.n.toLocaleString('en-US')}${r.runs === runs ? '' : ` (${r.runs} runs)`}`)
for (const r of rows) for (const note of r.notes ?? []) console.log(`- NOTE ${r.benchmark} / ${r.implementation}: ${note}`)
// BENCH_SAMPLES=1 lists every run, to tell drift (e.g. a leak) from scheduler noise.
if (process.env.BENCH_SAMPLES === '1') {
  console.log()
  for (const r of rows) console.log(`- ${r.benchmark} / ${r.implementation} [${r.unit}]: ${r.samples.map((v) => fmt(v, r.unit)).join(', ')}`)
}
for (const f of failed) console.log(`- FAILED section ${f}, twice: its rows are missing`)
console.log()
// Ping-pong figures swing with thread placement (same CPU or not); pinning gives stable numbers.
console.log('Ping-pong rows depend on whether both threads share a CPU; `taskset -c 0 npm run bench` pins them.')
console.log(
  `Node ${process.version}, ${availableParallelism()} CPUs (${cpus()[0]?.model ?? 'unknown'}), ` +
    `AIOPROCESSING_SPIN=${process.env.AIOPROCESSING_SPIN ?? '(runtime default)'}, total ${((performance.now() - started) / 1000).toFixed(1)} s`,
)
