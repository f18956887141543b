// First code in a process worker: registers the shareable types, rebuilds the args into working
// objects over the parent's shared memory, then runs the target.
import { workerData } from 'node:worker_threads'
import { pathToFileURL } from 'node:url'
import { isAbsolute } from 'node:path'
import type { ProcessData } from './process.js'
import { setCurrentProcess } from './current.js'
import { rebuildTree } from './transfer.js'
import { compileFunction } from './source.js'
import { threadId } from 'node:worker_threads'

await import('../generated/index.generated.js')

const data = workerData as ProcessData
setCurrentProcess({ name: data.name, pid: threadId, daemon: data.daemon, identity: data.identity })

async function loadTarget(t: ProcessData['target']): Promise<(...args: unknown[]) => unknown> {
  if ('source' in t) return compileFunction(t.source)
  const specifier = isAbsolute(t.module) ? pathToFileURL(t.module).href : t.module
  const mod = (await import(specifier)) as Record<string, unknown>
  const fn = mod[t.name]
  if (typeof fn !== 'function') throw new TypeError(`${t.module} has no exported function '${t.name}'`)
  return fn as (...args: unknown[]) => unknown
}

const target = await loadTarget(data.target)
await target(...(rebuildTree(data.args) as unknown[]))
