// The two packages as users install them: `npm pack` of each, the tarballs installed into a fresh
// project outside the repository (no symlink), and used there by name: ESM and CommonJS imports, a
// type-checked consumer, a Process + Queue + Pool program, and aioprocessing-codegen run on a copy
// of the custom-primitive example whose class then works across two threads.
import test from 'ava'
import { execFile } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runNode, runNodeWith } from './helpers.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const NPM_TIMEOUT = 180_000

interface Run {
  code: number
  out: string
  err: string
}

function run(cmd: string, args: string[], cwd: string, timeout = 60_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, timeout, maxBuffer: 64 * 1024 * 1024 }, (error, out, err) => {
      resolve({ code: error ? Number((error as { code?: unknown }).code ?? 1) || 1 : 0, out, err })
    })
  })
}
const node = (args: string[], cwd: string): Promise<Run> => run(process.execPath, args, cwd)
// The repository's npm, so that the test needs nothing outside it and the machine.
const npm = (args: string[], cwd: string): Promise<Run> => run('npm', [...args, '--no-audit', '--no-fund', '--prefer-offline'], cwd, NPM_TIMEOUT)
const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')

/** Packs a workspace package (built by npm test before the tests run) into `dest`; the tarball's path. */
async function pack(dir: string, dest: string): Promise<string> {
  const r = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dest], dir, NPM_TIMEOUT)
  if (r.code !== 0) throw new Error(`npm pack in ${dir} failed: ${r.err}`)
  return join(dest, JSON.parse(r.out)[0].filename)
}

/** A fresh project in the temp folder, with `tarballs` installed from files. */
async function project(name: string, tarballs: string[]): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), `aio-${name}-`))
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true, type: 'module' }))
  const r = await npm(['install', ...tarballs], dir)
  if (r.code !== 0) throw new Error(`npm install in ${dir} failed: ${r.err}`)
  return dir
}

let lib = ''
let codegen = ''
let app = ''
let gen = ''
const made: string[] = []

test.before(async () => {
  const dest = mkdtempSync(join(tmpdir(), 'aio-tarballs-'))
  made.push(dest)
  lib = await pack(ROOT, dest)
  codegen = await pack(join(ROOT, 'codegen'), dest)
  app = await project('app', [lib])
  made.push(app)
})
test.after.always(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true })
})

test.serial('the library installs alone: no dependency, and only what users run', (t) => {
  const modules = readdirSync(join(app, 'node_modules')).filter((n) => !n.startsWith('.'))
  t.deepEqual(modules, ['aioprocessing'])
  const installed = JSON.parse(readFileSync(join(app, 'node_modules', 'aioprocessing', 'package.json'), 'utf8'))
  t.is(installed.dependencies, undefined)
  // Nothing runs at install: `prepare` rebuilt the package from sources it does not ship (an
  // install from a folder deleted dist/ and failed).
  t.deepEqual(Object.keys(installed.scripts ?? {}).filter((s) => /^(pre|post)?install$|^prepare$/.test(s)), [])
  const files = readdirSync(join(app, 'node_modules', 'aioprocessing'), { recursive: true }).map(String)
  t.deepEqual(files.filter((f) => /(^|\/)(test|tests|bench|examples|custom-primitive)(\/|$)|\.map$|conformance/.test(f)), [])
  // The maps are left out, so no file may point at one: bundlers and --enable-source-maps look
  // for each and warn (source-map-loader once per file) when it is missing.
  const pointing = files.filter((f) => f.endsWith('.js') && /^\/\/# sourceMappingURL=/m.test(readFileSync(join(app, 'node_modules', 'aioprocessing', f), 'utf8')))
  t.deepEqual(pointing, [], 'files that name a source map the package does not ship')
  t.true(files.includes('dist/lib/extend.js'))
  // The code ships as the bundle (build/bundle.mjs) and its types: none of tsc's 83 modules, which
  // would be a second copy of the library's classes in a thread that loaded both.
  t.deepEqual(files.filter((f) => f.endsWith('.js') && !f.startsWith('dist/lib/')), [])
  t.true(files.filter((f) => f.startsWith('dist/lib/')).every((f) => f.endsWith('.js')))
  t.true(files.includes('dist/generated/index.generated.d.ts') && files.includes('dist/runtime/api/extend.d.ts'))
  t.true(files.includes('docs/api.md'), 'the API reference ships')
  t.false(existsSync(join(app, 'node_modules', 'aioprocessing', 'codegen')))
})

const SMOKE = (load: string) => `${load}
const q = new AioQueue()
const p = new AioProcess({ target: (q, n) => { for (let i = 0; i < n; i++) q.put(i) }, args: [q, 100] })
p.start()
let sum = 0
for (let i = 0; i < 100; i++) sum += q.get(true, 30000)
p.join(30000)
const pool = new AioPool({ processes: 2 })
const squares = pool.map((x) => x * x, [1, 2, 3, 4])
pool.terminate()
pool.join()
console.log(p.exitcode, sum, squares.join(','), typeof AioLock)
`

for (const [how, file, load] of [
  ['import from an ES module', 'main.mjs', "import { AioLock, AioQueue, AioProcess, AioPool } from 'aioprocessing'"],
  ['require() from CommonJS', 'main.cjs', "const { AioLock, AioQueue, AioProcess, AioPool } = require('aioprocessing')"],
] as const) {
  test.serial(`${how}: a Process + Queue + Pool program runs by package name`, async (t) => {
    writeFileSync(join(app, file), SMOKE(load))
    const r = await node([file], app)
    t.is(r.code, 0, r.err)
    t.is(r.out, '0 4950 1,4,9,16 function\n')
  })
}

test.serial('the installed package gives a pipe\'s peer EOF when a child holding the other end is killed before it loaded (its supervisor loads the release\'s sender by URL, from the package)', async (t) => {
  writeFileSync(join(app, 'killed-child.mjs'), `import { getContext } from 'aioprocessing'
const ctx = getContext('spawn')
const [a, b] = ctx.AioPipe()
const p = ctx.AioProcess({ target: (c) => { c.send('up'); for (;;); }, args: [b] })
p.start(); b.close(); p.kill()
const ready = await a.coro_poll(30000)
let how = 'no EOF'
try { while (true) await a.coro_recv() } catch (e) { how = e.name }
console.log(ready, how)
`)
  const r = await node(['killed-child.mjs'], app)
  t.is(r.code, 0, r.err)
  t.is(r.out, 'true EOFError\n')
})

test.serial('internal modules are not importable; the two entry points are', async (t) => {
  writeFileSync(join(app, 'deep.mjs'), `
const tries = ['aioprocessing/runtime/core/wait.js', 'aioprocessing/dist/runtime/core/wait.js', 'aioprocessing/extend', 'aioprocessing']
for (const s of tries) {
  try { const m = await import(s); console.log(s, 'ok', typeof (m.park ?? m.AioLock)) } catch (e) { console.log(s, e.code) }
}`)
  const r = await node(['deep.mjs'], app)
  t.is(r.code, 0, r.err)
  t.is(r.out, [
    'aioprocessing/runtime/core/wait.js ERR_PACKAGE_PATH_NOT_EXPORTED',
    'aioprocessing/dist/runtime/core/wait.js ERR_PACKAGE_PATH_NOT_EXPORTED',
    'aioprocessing/extend ok function',
    'aioprocessing ok function',
    '',
  ].join('\n'))
})

test.serial('a TypeScript consumer type-checks against the published types, which hide @internal members', async (t) => {
  writeFileSync(join(app, 'consumer.ts'), `
import { AioLock, AioQueue, AioPool, AioPipe, type AioConnection, type Timeout } from 'aioprocessing'
import { park, PENDING, BaseProxy, type Waiter } from 'aioprocessing/extend'
export async function use(): Promise<number> {
  const lock = new AioLock()
  const held: boolean = await lock.coro_acquire(true, 10)
  const q = new AioQueue<number>()
  q.put(1)
  const n: number = q.get()
  const [a]: [AioConnection, AioConnection] = AioPipe()
  const t: Timeout = null
  const w: Waiter | undefined = undefined
  // @ts-expect-error fromCore is @internal: stripped from the published types
  AioLock.fromCore
  void [held, a, t, w, park, PENDING, BaseProxy, AioPool]
  return n
}
`)
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: false, lib: ['ES2024', 'ESNext.Disposable'], types: ['node'], typeRoots: [join(ROOT, 'node_modules', '@types')] },
    files: ['consumer.ts'],
  }))
  const r = await node([tsc, '-p', '.'], app)
  t.is(r.code, 0, r.out + r.err)
})

test.serial('aioprocessing-codegen on a copy of the custom-primitive example, in another folder, used across two threads', async (t) => {
  gen = await project('latch-app', [lib, codegen])
  made.push(gen)
  // The example's spec/ and runtime/ under another folder name: the spec's paths are relative to it.
  const home = join(gen, 'src', 'primitives')
  mkdirSync(home, { recursive: true })
  for (const sub of ['spec', 'runtime']) cpSync(join(ROOT, 'examples', 'custom-primitive', sub), join(home, sub), { recursive: true })
  const r = await run('npx', ['--no-install', 'aioprocessing-codegen', '--spec', 'src/primitives/spec', '--out', 'src/primitives/generated'], gen, NPM_TIMEOUT)
  t.is(r.code, 0, r.err)
  const check = await run('npx', ['--no-install', 'aioprocessing-codegen', '--spec', 'src/primitives/spec', '--out', 'src/primitives/generated', '--check'], gen, NPM_TIMEOUT)
  t.is(check.code, 0, check.err)
  const cls = readFileSync(join(home, 'generated', 'countdown-latch.generated.ts'), 'utf8')
  t.regex(cls, /from 'aioprocessing\/extend'/)
  t.regex(cls, /from '\.\.\/runtime\/countdown-latch\.js'/)
  writeFileSync(join(gen, 'src', 'main.ts'), `
import { AioProcess } from 'aioprocessing'
import { CountDownLatch } from './primitives/generated/index.generated.js'
const latch = new CountDownLatch(2)
const workers = [0, 1].map(() => new AioProcess({ target: (l: CountDownLatch) => l.countDown(), args: [latch] }))
for (const w of workers) w.start()
const opened = await latch.coro_wait(30_000)
for (const w of workers) w.join(30_000)
console.log(opened, latch.getCount(), workers.map((w) => w.exitcode).join(','))
`)
  writeFileSync(join(gen, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, outDir: 'out', rootDir: 'src', skipLibCheck: true, lib: ['ES2024', 'ESNext.Disposable'], types: ['node'], typeRoots: [join(ROOT, 'node_modules', '@types')] },
    include: ['src/main.ts', 'src/primitives/generated/*.ts', 'src/primitives/runtime/*.ts'],
  }))
  const built = await node([tsc, '-p', '.'], gen)
  t.is(built.code, 0, built.out + built.err)
  const ran = await node(['out/main.js'], gen)
  t.is(ran.code, 0, ran.err)
  t.is(ran.out, 'true 0 0,0\n')
})

test('the examples that npm start runs work: seed, quickstart, pool and manager', async (t) => {
  for (const name of ['seed', 'quickstart', 'pool-and-manager']) {
    const script = `await import(${JSON.stringify(new URL(`../examples/${name}.js`, import.meta.url).href)})`
    const { status, stdout, stderr } = await runNode(script)
    t.is(status, 0, `${name}: ${stderr}`)
    t.regex(stdout, { seed: /Got result 78/, quickstart: /counter = 200000 \(expected 200000\)/, 'pool-and-manager': /manager dict: \{"written by":"process \d+"\}, child exitcode 0/ }[name]!, name)
  }
})

test('a symlinked install (npm link) under node --preserve-symlinks: a thread gets one copy of the library (it loaded a second, and could not rebuild a queue)', async (t) => {
  const app = mkdtempSync(join(tmpdir(), 'aio-linked-'))
  t.teardown(() => rmSync(app, { recursive: true, force: true }))
  mkdirSync(join(app, 'node_modules'))
  symlinkSync(ROOT, join(app, 'node_modules', 'aioprocessing'))
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'linked', private: true, type: 'module' }))
  writeFileSync(join(app, 'app.mjs'), `import { AioQueue, AioProcess } from 'aioprocessing'
const q = new AioQueue()
const p = new AioProcess({ target: (q) => q.put('from the thread'), args: [q] })
p.start()
console.log(await q.coro_get(true, 30000))
await p.coro_join()`)
  const r = await runNodeWith(['--preserve-symlinks', join(app, 'app.mjs')])
  t.is(r.stdout.trim(), 'from the thread', r.stderr)
  t.is(r.status, 0, r.stderr)
})
