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
// 10 files). So the library's code that the first modules of threads and of spawned processes
// reach is cut in three cores: SHARED (reached by both), THREAD (by a process's thread or a
// pool's thread only: the rings, locks and waits of shared memory) and PROCESS (by a spawned
// process or a process pool's only). A thread's first module imports SHARED and THREAD, a spawned
// process's SHARED and PROCESS, every other entry but the small ones all three: a thread loads the
// library in few chunks and nothing a thread does not run, and a spawned process no longer
// compiles the shared-memory code it cannot use (~45 KB, a third of what it loaded: a first process
// pool's first result came ~20 ms sooner). A pool's first result waits for its threads to compile
// what they load (~0.1 ms per KB here; 218 KB took a thread ~20 ms, piscina's worker loads in ~7 ms).
import { build } from 'esbuild'
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { resolve } from 'node:path'

const root = fileURLToPath(new URL('..', import.meta.url))
const ENTRIES = [
  'generated/index.generated.ts',
  // What a spawned process loads of the classes (transfer.ts portableModuleList): the index
  // imports it, so it is a chunk of its own that both share.
  'generated/portable.generated.ts',
  'runtime/api/extend.ts',
  'runtime/process/supervisor-thread.ts',
  // The supervisor's first module: small, so that it starts the processes asked for at once (start-process.ts).
  'runtime/process/supervisor-start.ts',
  'runtime/process/bootstrap.ts',
  'runtime/process/spawn-main.ts',
  'runtime/manager/manager-server.ts',
  'runtime/pool/pool-worker.ts',
  'runtime/pool/pool-process-worker.ts',
]
/** The first modules of a process's thread and a pool's thread. */
const THREAD_FIRST = ['runtime/process/bootstrap.ts', 'runtime/pool/pool-worker.ts']
/** The first modules of a spawned process and a process pool's. */
const PROCESS_FIRST = ['runtime/process/spawn-main.ts', 'runtime/pool/pool-process-worker.ts']
/** Entries that stay small: they do not import CORE. */
const SMALL = new Set(['runtime/process/supervisor-start.ts'])
/**
 * Built each on its own, with what they use of the library inside them. The I/O thread's first
 * module: that thread loads nothing else of the library. Built with the others, the modules it
 * shares with them were cut out of the cores into chunks of their own, and a pool's thread loaded
 * 6 files, not 4. The sender of OP_GONE (ipc/gone.ts), which a supervisor loads by URL when a
 * process ends: imported, it put ~15 KB and node:crypto in every supervisor's boot. The first
 * module of a first pool's threads (pool/first-task.ts), which runs the pool's first task
 * before that thread loads the library: with it, it would load the library first.
 */
const FIRST_TASK = 'runtime/pool/first-task.ts'
const ALONE = ['runtime/ipc/io-thread.ts', 'runtime/ipc/key-release.ts', FIRST_TASK]

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
const reach = (first) => new Set(first.flatMap((m) => [...reached(m)]).filter((m) => !ENTRIES.includes(m))) // an entry's own code runs when it starts, not before
const threadReach = reach(THREAD_FIRST)
const processReach = reach(PROCESS_FIRST)
const sharedCore = new Set([...threadReach].filter((m) => processReach.has(m)))
const threadCore = new Set([...threadReach].filter((m) => !sharedCore.has(m)))
const processCore = new Set([...processReach].filter((m) => !sharedCore.has(m)))
const CORES = { 'aio-core:shared': sharedCore, 'aio-core:thread': threadCore, 'aio-core:process': processCore }
/** The cores an entry imports first. */
const coresOf = (e) =>
  THREAD_FIRST.includes(e) ? ['aio-core:shared', 'aio-core:thread'] :
  PROCESS_FIRST.includes(e) ? ['aio-core:shared', 'aio-core:process'] :
  ['aio-core:shared', 'aio-core:thread', 'aio-core:process']

// Chunks are named by their content: the last build's would stay beside this one's, and ship.
rmSync(`${root}/dist/lib`, { recursive: true, force: true })
await build({
  ...options,
  entryPoints: Object.fromEntries(ENTRIES.map((e) => [entryName(e), SMALL.has(e) ? e : `aio-entry:${e}`])),
  outdir: 'dist/lib',
  plugins: [{
    name: 'core-first',
    setup(b) {
      b.onResolve({ filter: /^aio-(entry|core):/ }, (a) => ({ path: a.path, namespace: 'aio' }))
      b.onLoad({ filter: /.*/, namespace: 'aio' }, (a) => {
        const entry = a.path.slice('aio-entry:'.length)
        const imports = CORES[a.path] ? [...CORES[a.path]].map((m) => resolve(root, m)) : coresOf(entry)
        const reexport = CORES[a.path] ? '' : `export * from ${JSON.stringify(resolve(root, entry))}\n`
        return { resolveDir: root, loader: 'js', contents: imports.map((m) => `import ${JSON.stringify(m)}\n`).join('') + reexport }
      })
    },
  }],
})
inlineHelpers()
// The first pool's first module is minified: it is on the way to that pool's first result (~0.3 ms less to load, measured).
for (const alone of ALONE) await build({ ...options, splitting: false, minify: alone === FIRST_TASK, entryPoints: { [entryName(alone)]: alone }, outdir: 'dist/lib' })
writeFileSync(`${root}/dist/generated/index.generated.js`, "// The public entry is the bundle (build/bundle.mjs).\nexport * from '../lib/index.js'\n")

/**
 * esbuild's helpers (__name for keepNames, __export for namespaces) go in a chunk of their own that
 * every other file imports: one more file for each thread and process to load (~0.3–0.5 ms at a
 * fresh thread's start) for ~300 bytes of stateless functions. Each file that imports them gets
 * its own copy, and the chunk goes. A chunk with anything else in it is left as it is.
 */
function inlineHelpers() {
  const dir = `${root}/dist/lib`
  const files = readdirSync(dir).filter((f) => f.endsWith('.js'))
  for (const f of files) {
    const code = readFileSync(`${dir}/${f}`, 'utf8')
    const exported = /\nexport \{([^}]*)\};\s*$/.exec(code)
    if (!f.startsWith('shared-') || !exported) continue
    const body = code.slice(0, exported.index)
    // Only declarations of __-named helpers: each statement starts a line with `var __`.
    const statements = body.trim().split(/\n(?=var )/)
    if (!statements.every((s) => /^var __\w+ = /.test(s))) continue
    const names = exported[1].split(',').map((n) => n.trim()).filter(Boolean)
    if (!names.every((n) => /^__\w+$/.test(n))) continue
    const importOf = new RegExp(`import (?:\\{[^}]*\\} from )?"\\./${f.replace(/[.]/g, '\\.')}";\\n`, 'g')
    for (const g of files) {
      if (g === f) continue
      const text = readFileSync(`${dir}/${g}`, 'utf8')
      if (!importOf.test(text)) continue
      importOf.lastIndex = 0
      writeFileSync(`${dir}/${g}`, `${body.trim()}\n${text.replace(importOf, '')}`)
    }
    rmSync(`${dir}/${f}`)
  }
}
