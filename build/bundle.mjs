// Bundles the library's JavaScript into dist/lib: the package's entries (index, extend) and the
// first module of each thread and process it starts, with the code they share in chunks beside
// them. Node loads one of these in ~16 ms, against ~48 ms for the 83 modules tsc writes (a fresh
// thread or process pays it each time: a first spawned process, a first pool).
//
// One copy of the library per thread: every entry shares the chunks, and the runtime names each
// thread's first module as `new URL('./<name>.js', import.meta.url)`, which from a chunk is the
// entry beside it. The tests of the library's parts import the modules tsc wrote; what they start
// loads those, by the same rule. dist/generated/index.generated.js, which the tests import as the
// public entry, is replaced by a re-export of the bundle, so that the suite runs what ships.
//
// Few files, not only few bytes: a fresh thread pays ~0.3–0.5 ms per file it loads, about what
// 15–20 KB cost. esbuild puts modules in one chunk when the same entries reach them, and each
// entry reaches its own part of the library, so the chunks multiplied (a thread's bootstrap loaded
// 10 files). So every entry but the I/O thread's and a spawned process's first module (which are
// kept small on purpose) imports CORE first: every module that a thread's or process's first
// module reaches. Those then share one chunk (apart from the few the I/O thread needs as well).
import { build } from 'esbuild'
import { rmSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { resolve } from 'node:path'

const root = fileURLToPath(new URL('..', import.meta.url))
const ENTRIES = [
  'generated/index.generated.ts',
  'runtime/api/extend.ts',
  'runtime/process/supervisor-thread.ts',
  'runtime/process/bootstrap.ts',
  'runtime/process/spawn-main.ts',
  'runtime/ipc/io-thread.ts',
  'runtime/manager/manager-server.ts',
  'runtime/pool/pool-worker.ts',
  'runtime/pool/pool-process-worker.ts',
]
/** The first modules of the library's threads and processes: CORE is what they reach. */
const FIRST_MODULES = [
  'runtime/process/bootstrap.ts',
  'runtime/process/supervisor-thread.ts',
  'runtime/process/spawn-main.ts',
  'runtime/pool/pool-worker.ts',
  'runtime/pool/pool-process-worker.ts',
]
/** Entries that stay small: they do not import CORE. */
const SMALL = new Set(['runtime/ipc/io-thread.ts'])

const options = {
  absWorkingDir: root,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  chunkNames: 'shared-[hash]',
  tsconfig: 'tsconfig.json',
  logLevel: 'warning',
  keepNames: true,
}
const entryName = (e) => e.replace(/^.*\//, '').replace(/(\.generated)?\.ts$/, '')

// The module graph, from a build that writes nothing.
const { metafile } = await build({ ...options, entryPoints: ENTRIES, outdir: 'dist/lib', metafile: true, write: false })
function reached(from, seen = new Set()) {
  if (seen.has(from)) return seen
  seen.add(from)
  for (const i of metafile.inputs[from]?.imports ?? []) if (i.kind === 'import-statement' && !i.external) reached(i.path, seen)
  return seen
}
const core = new Set(FIRST_MODULES.flatMap((m) => [...reached(m)]))
for (const e of ENTRIES) core.delete(e) // an entry's own code runs when it starts, not before

// Chunks are named by their content: the last build's would stay beside this one's, and ship.
rmSync(`${root}/dist/lib`, { recursive: true, force: true })
await build({
  ...options,
  entryPoints: Object.fromEntries(ENTRIES.map((e) => [entryName(e), SMALL.has(e) ? e : `aio-entry:${e}`])),
  outdir: 'dist/lib',
  plugins: [{
    name: 'core-first',
    setup(b) {
      b.onResolve({ filter: /^aio-(entry:|core$)/ }, (a) => ({ path: a.path, namespace: 'aio' }))
      b.onLoad({ filter: /.*/, namespace: 'aio' }, (a) => ({
        resolveDir: root,
        loader: 'js',
        contents: a.path === 'aio-core'
          ? [...core].map((m) => `import ${JSON.stringify(resolve(root, m))}`).join('\n')
          : `import 'aio-core'\nexport * from ${JSON.stringify(resolve(root, a.path.slice('aio-entry:'.length)))}\n`,
      }))
    },
  }],
})
writeFileSync(`${root}/dist/generated/index.generated.js`, "// The public entry is the bundle (build/bundle.mjs).\nexport * from '../lib/index.js'\n")
