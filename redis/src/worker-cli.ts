#!/usr/bin/env node
// npx aioprocessing-worker --url redis://host:6379 --pool squares --module ./tasks.js [--module id=./more.js] [--namespace aio] [--concurrency 1] [--idle 30000]

import { parseArgs } from 'node:util'
import { runWorker } from './worker.js'

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: 'redis://127.0.0.1:6379' },
    namespace: { type: 'string', default: 'aio' },
    pool: { type: 'string' },
    module: { type: 'string', multiple: true },
    concurrency: { type: 'string', default: '1' },
    idle: { type: 'string', default: '30000' },
  },
})
if (!values.pool || !values.module?.length) {
  process.stderr.write('usage: aioprocessing-worker --pool <name> --module <file or id=file> [--module ...] [--url redis://host:6379] [--namespace aio] [--concurrency 1] [--idle 30000]\n')
  process.exit(2)
}
const stop = new AbortController()
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => stop.abort())
await runWorker({ url: values.url, namespace: values.namespace, pool: values.pool, modules: values.module, concurrency: Number(values.concurrency), idle: Number(values.idle), signal: stop.signal })
