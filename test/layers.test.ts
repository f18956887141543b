// The runtime's layers hold: the check passes on the real tree and fails on deliberately wrong imports.
import test from 'ava'
import { fileURLToPath } from 'node:url'
import { checkLayers, readRuntime, LAYERS } from './layers.js'

const RUNTIME = fileURLToPath(new URL('../../runtime', import.meta.url))

test('runtime/: every file in a layer, imports only downward, none into generated/, no circle', (t) => {
  const files = readRuntime(RUNTIME)
  t.true(files.size > 30, `read ${files.size} files`)
  for (const layer of LAYERS) t.true([...files.keys()].some((f) => f.startsWith(`${layer}/`)), `layer ${layer} has files`)
  t.deepEqual(checkLayers(files), [])
})

test('the layer check fails on an upward import, an import of generated/, a circle and a file in no layer', (t) => {
  const files = readRuntime(RUNTIME)
  const wrong = new Map(files)
  wrong.set('core/wait.ts', `${files.get('core/wait.ts')}\nimport { LockCore } from '../sync/lock.js'\n`)
  wrong.set('sync/event.ts', `${files.get('sync/event.ts')}\nexport { AioLock } from '../../generated/lock.generated.js'\n`)
  wrong.set('sync/semaphore.ts', `${files.get('sync/semaphore.ts')}\nimport type { BarrierCore } from './barrier.js'\n`)
  wrong.set('sync/barrier.ts', `${files.get('sync/barrier.ts')}\nconst later = import('./semaphore.js')\n`)
  wrong.set('stray.ts', 'export const x = 1\n')
  const problems = checkLayers(wrong)
  t.true(problems.some((p) => p.startsWith('core/wait.ts imports sync/lock.ts from a higher layer')), problems.join('\n'))
  t.true(problems.some((p) => p.startsWith('sync/event.ts imports ../generated/lock.generated.ts outside runtime/')), problems.join('\n'))
  t.true(problems.some((p) => /^import circle: sync\/(barrier|semaphore)\.ts → sync\/(barrier|semaphore)\.ts → /.test(p)), problems.join('\n'))
  t.true(problems.some((p) => p.startsWith('stray.ts is in no layer')), problems.join('\n'))
  // A comment that mentions an import is not one.
  const commented = new Map(files)
  commented.set('core/wait.ts', `${files.get('core/wait.ts')}\n// import { LockCore } from '../sync/lock.js'\n`)
  t.deepEqual(checkLayers(commented), [])
})
