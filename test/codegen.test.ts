// The generator as users meet it: every spec problem reported at once with file:line:col and what
// to write instead, and --check failing on stale, missing or extra generated files.
import test from 'ava'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, cpSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const CLI = join(ROOT, 'codegen/dist/cli.js')

function codegen(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: ROOT, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'aio-codegen-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

// Paths in a spec are relative to the spec file: a copy elsewhere names the repository's runtime absolutely.
const GOOD = readFileSync(join(ROOT, 'spec/lock.yaml'), 'utf8').replaceAll('../runtime/', `${join(ROOT, 'runtime')}/`)

test('every spec problem is reported at once, located, with what to write instead', async (t) => {
  const dir = tempDir(t)
  const bad = GOOD
    .replace('class: AioLock', 'class: AioLock\nfavourite: colour') // unknown key
    .replace('      - name: block\n        type: boolean', '      - name: block\n        type: bool') // bad type
    .replace('      attempt: acquireAttempt()', '      attempt: acquireAttemptt()') // missing runtime symbol
  writeFileSync(join(dir, 'lock.yaml'), bad)
  writeFileSync(join(dir, 'dup.yaml'), GOOD.replace('class: AioLock', 'class: AioDup').replace('  - name: release\n', '  - name: acquire\n'))
  writeFileSync(join(dir, 'noattempt.yaml'), GOOD.replace('class: AioLock', 'class: AioNoAttempt').replace('      attempt: acquireAttempt()\n', ''))
  const r = await codegen('--spec', dir, '--out', join(dir, 'out'))
  t.is(r.code, 1)
  const at = (file: string) => new RegExp(`${file}:\\d+:\\d+: `)
  t.regex(r.stderr, at('lock.yaml'))
  t.regex(r.stderr, /unknown key 'favourite'; write one of: class, doc, core/)
  t.regex(r.stderr, /unknown type 'bool'; write one of: boolean, timeout/)
  t.regex(r.stderr, /dup\.yaml:\d+:\d+: methods\.acquire: duplicate method 'acquire'/)
  t.regex(r.stderr, /noattempt\.yaml:\d+:\d+: methods\[0\]\.blocking\.attempt: missing required key 'attempt'/)
  t.regex(r.stderr, /lock\.yaml:\d+:\d+: methods\.acquire\.blocking\.attempt: LockCore \(runtime\/sync\/lock\.ts\) has no member 'acquireAttemptt'/)
  t.regex(r.stderr, /\d+ problems in the spec/)
})

test('a missing runtime symbol names the core class and the members it has', async (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'lock.yaml'), GOOD.replace('      attempt: acquireAttempt()', '      attempt: acquireAttemptt()').replace('  class: LockCore', '  class: LockCore'))
  const r = await codegen('--spec', join(dir, 'lock.yaml'), '--out', join(dir, 'out'))
  t.is(r.code, 1)
  t.regex(r.stderr, /lock\.yaml:\d+:\d+: methods\.acquire\.blocking\.attempt: LockCore \(runtime\/sync\/lock\.ts\) has no member 'acquireAttemptt'; add it to the runtime core or write one of: .*acquireAttempt/)
  writeFileSync(join(dir, 'lock.yaml'), GOOD.replace('  class: LockCore', '  class: LockCor'))
  const r2 = await codegen('--spec', join(dir, 'lock.yaml'), '--out', join(dir, 'out'))
  t.regex(r2.stderr, /runtime\/sync\/lock\.ts exports no class LockCor; it exports: .*LockCore/)
})

test('a method without a conformance case is an error', async (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'lock.yaml'), GOOD.replace(/conformance:[\s\S]*$/, 'conformance: []\n'))
  const r = await codegen('--spec', dir, '--out', join(dir, 'out'))
  t.is(r.code, 1)
  t.regex(r.stderr, /method 'acquire' has no conformance step; add a case under conformance: with 'do: acquire\(\.\.\.\)'/)
})

test('--check passes on fresh output and fails on stale, missing and extra files', async (t) => {
  const dir = tempDir(t)
  const out = join(dir, 'out')
  mkdirSync(out)
  writeFileSync(join(dir, 'lock.yaml'), GOOD)
  t.is((await codegen('--spec', dir, '--out', out)).code, 0)
  const fresh = await codegen('--spec', dir, '--out', out, '--check')
  t.is(fresh.code, 0, fresh.stderr)
  t.regex(fresh.stdout, /up to date/)
  const file = join(out, 'lock.generated.ts')
  writeFileSync(file, readFileSync(file, 'utf8') + '\n// hand edit\n')
  writeFileSync(join(out, 'extra.generated.ts'), '')
  rmSync(join(out, 'index.generated.ts'))
  const stale = await codegen('--spec', dir, '--out', out, '--check')
  t.is(stale.code, 1)
  t.regex(stale.stderr, /stale: .*lock\.generated\.ts/)
  t.regex(stale.stderr, /missing: .*index\.generated\.ts/)
  t.regex(stale.stderr, /not generated from the spec \(delete it\): .*extra\.generated\.ts/)
  t.regex(stale.stderr, /run npm run generate/)
})

test('regenerating is idempotent: a second run writes nothing', async (t) => {
  const dir = tempDir(t)
  // spec/ and runtime/ side by side, as in the repository: the spec's relative paths hold in the copy.
  cpSync(join(ROOT, 'spec'), join(dir, 'spec'), { recursive: true })
  cpSync(join(ROOT, 'runtime'), join(dir, 'runtime'), { recursive: true })
  const out = join(dir, 'out')
  t.is((await codegen('--spec', join(dir, 'spec'), '--out', out)).code, 0)
  const again = await codegen('--spec', join(dir, 'spec'), '--out', out)
  t.is(again.code, 0)
  t.is(again.stdout, '')
})
