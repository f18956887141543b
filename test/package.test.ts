// The package as users install it: `import` from ESM and `require()` from CommonJS, by name.
import test from 'ava'
import { spawn } from 'node:child_process'
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runNode } from './helpers.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

function project(t: { teardown(f: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'aio-consumer-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'node_modules'))
  symlinkSync(ROOT, join(dir, 'node_modules', 'aioprocessing'), 'dir')
  writeFileSync(join(dir, 'package.json'), '{ "name": "consumer", "version": "1.0.0" }')
  return dir
}

function run(dir: string, file: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [file], { cwd: dir, timeout: 30_000 })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    child.on('close', (code) => resolve({ code, out, err }))
  })
}

const SCRIPT = (load: string) => `${load}
const lock = new AioLock()
const q = new AioQueue()
const p = new AioProcess({ target: (q) => q.put('from a worker'), args: [q] })
p.start()
const item = q.get(true, 30000)
p.join(30000)
console.log(lock.acquire(), item, p.exitcode)
`

const LOADERS = [
  ['require() from CommonJS', 'main.cjs', "const { AioLock, AioQueue, AioProcess } = require('aioprocessing')"],
  ['import from an ES module', 'main.mjs', "import { AioLock, AioQueue, AioProcess } from 'aioprocessing'"],
] as const

for (const [how, file, load] of LOADERS) {
  test(`${how} works by package name`, async (t) => {
    const dir = project(t)
    writeFileSync(join(dir, file), SCRIPT(load))
    const r = await run(dir, file)
    t.is(r.code, 0, r.err)
    t.is(r.out, 'true from a worker 0\n')
  })
}

test('aioprocessing-codegen works on a user\'s own spec in a user\'s own project', async (t) => {
  const dir = project(t)
  mkdirSync(join(dir, 'spec'))
  mkdirSync(join(dir, 'src'))
  const { readFileSync } = await import('node:fs')
  writeFileSync(join(dir, 'src', 'latch.ts'), readFileSync(join(ROOT, 'examples/custom-primitive/runtime/countdown-latch.ts')))
  writeFileSync(
    join(dir, 'spec', 'latch.yaml'),
    readFileSync(join(ROOT, 'examples/custom-primitive/spec/countdown-latch.yaml'), 'utf8').replace('examples/custom-primitive/runtime/countdown-latch.ts', 'src/latch.ts'),
  )
  const cli = join('node_modules', 'aioprocessing', 'build-codegen', 'codegen', 'cli.js')
  const gen = (check: boolean) =>
    new Promise<{ code: number | null; err: string }>((resolve) => {
      const args = [cli, '--spec', 'spec', '--out', 'src/generated', '--runtime', 'aioprocessing/runtime', ...(check ? ['--check'] : [])]
      const child = spawn(process.execPath, args, { cwd: dir, timeout: 60_000 })
      let err = ''
      child.stderr.on('data', (d) => (err += d))
      child.on('close', (code) => resolve({ code, err }))
    })
  t.is((await gen(false)).code, 0)
  const r = await gen(true)
  t.is(r.code, 0, r.err)
  const cls = readFileSync(join(dir, 'src/generated/latch.generated.ts'), 'utf8')
  t.regex(cls, /from 'aioprocessing\/runtime\/wait\.js'/)
  t.regex(cls, /from '\.\.\/latch\.js'/)
  t.regex(readFileSync(join(dir, 'src/generated/tests/latch.conformance.generated.ts'), 'utf8'), /CountDownLatch: counting down to 0 opens the latch \(coro\)/)
})

test('the examples that npm start runs work: seed, quickstart, pool and manager', async (t) => {
  for (const name of ['seed', 'quickstart', 'pool-and-manager']) {
    const script = `await import(${JSON.stringify(new URL(`../examples/${name}.js`, import.meta.url).href)})`
    const { status, stdout, stderr } = await runNode(script)
    t.is(status, 0, `${name}: ${stderr}`)
    t.regex(stdout, { seed: /Got result 78/, quickstart: /counter = 200000 \(expected 200000\)/, 'pool-and-manager': /manager dict: \{"written by":"process \d+"\}, child exitcode 0/ }[name]!, name)
  }
})
