#!/usr/bin/env node
// npx aioprocessing-worker --url redis://host:6379 --pool squares --module ./tasks.js [--module id=./more.js] [--namespace aio] [--concurrency 1] [--idle 30000]

import { parseArgs } from 'node:util'
import { runWorker } from './worker.js'

const USAGE = 'usage: aioprocessing-worker --pool <name> --module <file or id=file> [--module ...] [--url redis://host:6379] [--namespace aio] [--concurrency 1] [--idle 30000]\n'

/** Says what is wrong and how to call, and ends with 2 (a bad command line), as before for a missing --pool. */
function refuse(why: string): never {
  process.stderr.write(`aioprocessing-worker: ${why}\n${USAGE}`)
  process.exit(2)
}

let parsed
try {
  parsed = parseArgs({
    options: {
      url: { type: 'string', default: 'redis://127.0.0.1:6379' },
      namespace: { type: 'string', default: 'aio' },
      pool: { type: 'string' },
      module: { type: 'string', multiple: true },
      concurrency: { type: 'string', default: '1' },
      idle: { type: 'string', default: '30000' },
    },
  })
} catch (error) {
  refuse((error as Error).message)
}
const { values } = parsed
if (!values.pool || !values.module?.length) refuse('--pool and at least one --module are needed')
// Number('abc') is NaN: a worker of NaN slots ran no loop and exited 0, doing nothing.
const concurrency = Number(values.concurrency)
const idle = Number(values.idle)
if (!Number.isInteger(concurrency) || concurrency < 1) refuse(`--concurrency must be a positive integer, not '${values.concurrency}'`)
if (!Number.isInteger(idle) || idle < 1) refuse(`--idle must be a positive integer of ms, not '${values.idle}'`)
const stop = new AbortController()
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => stop.abort())
try {
  await runWorker({ url: values.url, namespace: values.namespace, pool: values.pool, modules: values.module, concurrency, idle, signal: stop.signal })
} catch (error) {
  // A module that does not load, a Redis that does not answer: one line, and 1.
  process.stderr.write(`aioprocessing-worker: ${(error as Error)?.message ?? String(error)}\n`)
  process.exit(1)
}
