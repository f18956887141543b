#!/usr/bin/env node
// aioprocessing-codegen: spec/*.yaml → generated/. `--check` regenerates in memory and fails on
// any difference (stale, missing or extra files), so CI catches a spec change without a regenerate.

import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { loadSpec } from './load.js'
import { checkRuntime } from './check-runtime.js'
import { ERRORS, HEADER, emitClass, type Target } from './emit-class.js'
import { emitIndex, emitPortable } from './emit-index.js'
import { emitConformance, emitProxyRunner, type Variant } from './emit-conformance.js'
import { emitDocs, type DocParts } from './emit-docs.js'
import { emitProxy } from './emit-proxy.js'
import { SpecError, type SpecModel } from './model.js'


interface Options {
  root: string
  spec: string
  out: string
  check: boolean
  /**
   * Where generated code imports the library from: the package (`aioprocessing`, its `extend`
   * entry for what a generated class needs), or, with `--self`, this repository's runtime/ folder.
   */
  library: string
  self: boolean
  /** Where the API reference goes, relative to the root (default: <out>/api.generated.md). */
  docs?: string
}

function parseArgs(argv: string[]): Options {
  const root = process.cwd()
  const o: Options = { root, spec: join(root, 'spec'), out: join(root, 'generated'), check: false, library: 'aioprocessing', self: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--check') o.check = true
    else if (a === '--spec') o.spec = resolve(argv[++i])
    else if (a === '--out') o.out = resolve(argv[++i])
    else if (a === '--library') o.library = argv[++i]
    else if (a === '--self') o.self = true
    else if (a === '--docs') o.docs = resolve(argv[++i])
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: aioprocessing-codegen [--spec <dir or file.yaml>] [--out <dir>] [--docs <file.md>] [--library <package name, default aioprocessing>] [--check]\n')
      process.exit(0)
    } else throw new Error(`unknown argument ${a}; see --help`)
  }
  return o
}

function specFiles(spec: string): string[] {
  if (spec.endsWith('.yaml') || spec.endsWith('.yml')) return [spec]
  return readdirSync(spec).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => join(spec, f))
}

/** The repository's runtime modules by file name (`wait` → runtime/core/wait.ts): names are unique across layers. */
function runtimeModules(dir: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile() || !e.name.endsWith('.ts')) continue
    const name = e.name.slice(0, -3)
    if (out.has(name)) throw new Error(`two runtime modules are named ${name}: ${out.get(name)} and ${join(e.parentPath, e.name)}`)
    out.set(name, join(e.parentPath, e.name))
  }
  return out
}

function importPath(fromDir: string, file: string): string {
  let rel = relative(fromDir, file).split(sep).join('/')
  if (!rel.startsWith('.')) rel = `./${rel}`
  return rel.replace(/\.ts$/, '.js')
}

/** What every conformance test file imports beside the spec's classes. */
const TEST_NAMES = [...ERRORS, 'AioPipe', 'AioClient', 'getContext', 'currentProcess']

/** The typeids the Redis context keeps (redis/src/ops.ts TYPES): their cases run on it too. */
const REDIS_TYPES = ['Queue', 'JoinableQueue', 'SimpleQueue', 'Lock', 'RLock', 'Semaphore', 'BoundedSemaphore', 'Event', 'Condition', 'Barrier', 'Value']

/** The pool and what its calls return: their cases run on a spawn-context pool too. */
const POOL_FAMILY = ['AioPool', 'AioAsyncResult', 'AioIMapIterator']

/** The proxies' runs of the conformance cases: the spawn context's broker, and an AioManager's server. */
function proxyVariants(o: Options): Variant[] {
  // A user's own classes: only a manager that registers their proxy modules (the spawn broker knows only the library's).
  return [
    ...(!o.self ? [] : [{ name: 'spawn', prelude: [], ctx: "getContext('spawn')" }]),
    {
      name: 'manager',
      prelude: ["import { managerContext } from '../proxy-contexts.generated.js'"],
      ctx: 'managerContext((shutdown) => test.after.always(shutdown))',
    },
  ]
}

/** The manager context of the proxy tests, one module for every test file (see proxyVariants). */
function emitProxyContexts(spec: SpecModel, o: Options): string {
  const proxied = spec.classes.filter((c) => c.proxy)
  const user = !o.self
  const names = ['AioManager', ...(spec.classes.some((c) => c.name === 'AioProcess') ? ['AioProcess'] : [])]
  const lines = [
    user ? `import { ${names.join(', ')} } from '${o.library}'` : `import { ${names.join(', ')} } from './index.generated.js'`,
    '',
    '/**',
    ' * Starts an AioManager for one test file and returns factories that make every object of the',
    ' * conformance cases on it; `after` registers its shutdown for the end of the file.',
    ' */',
    'export function managerContext(after: (shutdown: () => void) => void): Record<string, (...args: any[]) => any> {',
    '  const manager = new AioManager()',
    ...(user ? proxied.map((c) => `  manager.register('${c.proxy!.typeid}', { module: new URL('./${c.stem}.proxy.generated.js', import.meta.url).href, name: '${c.name}Proxy' })`) : []),
    '  manager.start()',
    '  after(() => manager.shutdown())',
    '  return {',
    ...proxied.map((c) => `    ${c.name}: (...args: unknown[]) => manager.create('${c.proxy!.typeid}', args),`),
    ...(names.includes('AioProcess') ? ['    AioProcess: (options: any) => new AioProcess(options),'] : []),
    ...(proxied.some((c) => c.name === 'AioConnection') ? ['    AioPipe: (duplex = true) => manager.Pipe(duplex),'] : []),
    '  }',
    '}',
  ]
  return `${HEADER('spec/*.yaml')}\n${lines.join('\n')}\n`
}

/** Every generated file, by path relative to the out folder. */
export function generate(spec: SpecModel, o: Options): Map<string, string> {
  const modules = o.self ? runtimeModules(join(o.root, 'runtime')) : undefined
  const target: Target = {
    // A user's generated code reaches the library through its two entry points only.
    runtime: (m) => {
      if (!modules) return m === 'public' ? o.library : `${o.library}/extend`
      const file = modules.get(m)
      if (!file) throw new Error(`no runtime module '${m}' under runtime/`)
      return importPath(o.out, file)
    },
    core: (m) => importPath(o.out, m),
    portable: o.self,
  }
  const files = new Map<string, string>()
  for (const cls of spec.classes) {
    files.set(`${cls.stem}.generated.ts`, emitClass(cls, spec, target))
    if (o.self && POOL_FAMILY.includes(cls.name) && spec.classes.some((c) => c.name === 'AioPool')) {
      // The pool's cases run on worker threads and on worker processes: every object they make
      // comes from the context of each run.
      const made = ['AioPool', 'AioProcess', ...spec.classes.filter((c) => c.proxy).map((c) => c.name)]
      const contexts: Variant[] = ['thread', 'spawn'].map((m) => ({ name: m, prelude: [], ctx: `getContext('${m}')`, typed: true }))
      files.set(`tests/${cls.stem}.conformance.generated.ts`, emitConformance(cls, spec, '../index.generated.js', TEST_NAMES, contexts, made))
    } else files.set(`tests/${cls.stem}.conformance.generated.ts`, emitConformance(cls, spec, '../index.generated.js', TEST_NAMES))
    if (cls.proxy) files.set(`${cls.stem}.proxy.generated.ts`, emitProxy(cls, spec, target))
    if (cls.proxy || cls.name === 'AioProcess') {
      // AioProcess runs again in the spawn context only: its objects there are new Node processes.
      const variants = proxyVariants(o).filter((v) => cls.proxy || v.name === 'spawn')
      const made = [...spec.classes.filter((c) => c.proxy).map((c) => c.name), 'AioProcess']
      if (variants.length && cls.proxy) {
        // The cases once, in a module; each context's file runs them (the Redis package's too).
        files.set(`tests/${cls.stem}.proxy.cases.generated.ts`, emitConformance(cls, spec, '../index.generated.js', TEST_NAMES, undefined, made, { redisSkip: o.self }))
        files.set(`tests/${cls.stem}.proxy.conformance.generated.ts`, emitProxyRunner(cls, spec, variants, `./${cls.stem}.proxy.cases.generated.js`, undefined, '../index.generated.js'))
      } else if (variants.length) files.set(`tests/${cls.stem}.proxy.conformance.generated.ts`, emitConformance(cls, spec, '../index.generated.js', TEST_NAMES, variants, made))
    }
  }
  if (spec.classes.some((c) => c.proxy)) files.set('proxy-contexts.generated.ts', emitProxyContexts(spec, o))
  if (o.self) {
    // The same cases on the Redis context (the aioprocessing-redis workspace package), for the types it keeps.
    const redis: Variant = { name: 'redis', prelude: ["import { redisTestContext } from '../test/context.js'"], ctx: 'redisTestContext((stop) => test.after.always(stop))', redis: true }
    for (const cls of spec.classes.filter((c) => c.proxy && REDIS_TYPES.includes(c.proxy.typeid))) {
      const out = relative(o.out, join(o.root, 'redis', 'src', 'generated-tests', `${cls.stem}.redis.conformance.generated.ts`)).split(sep).join('/')
      // The library's build of the cases module (the Redis package builds after it).
      files.set(out, emitProxyRunner(cls, spec, [redis], `../../../dist/generated/tests/${cls.stem}.proxy.cases.generated.js`, 'REDIS_SKIP'))
    }
  }
  files.set('index.generated.ts', emitIndex(spec, target))
  if (target.portable) files.set('portable.generated.ts', emitPortable(spec, target))
  files.set(o.docs ? relative(o.out, o.docs).split(sep).join('/') : 'api.generated.md', emitDocs(spec, docParts(o.spec)))
  return files
}

/** The reference's hand-written parts: <spec>/docs/intro.md and more.md, when there. */
function docParts(spec: string): DocParts {
  const dir = join(spec.endsWith('.yaml') || spec.endsWith('.yml') ? dirname(spec) : spec, 'docs')
  const read = (name: string) => (existsSync(join(dir, name)) ? readFileSync(join(dir, name), 'utf8') : undefined)
  return { intro: read('intro.md'), more: read('more.md') }
}

function existing(out: string, dir = ''): string[] {
  const here = join(out, dir)
  if (!existsSync(here)) return []
  return readdirSync(here, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? existing(out, join(dir, e.name)) : /\.generated\.(ts|md)$/.test(e.name) ? [join(dir, e.name).split(sep).join('/')] : [],
  )
}

function main(): number {
  const o = parseArgs(process.argv.slice(2))
  const { spec, problems } = loadSpec(specFiles(o.spec), o.root)
  problems.push(...checkRuntime(spec, o.root))
  if (problems.length) {
    process.stderr.write(`${new SpecError(problems).message}\n`)
    return 1
  }
  const files = generate(spec, o)
  const stale: string[] = []
  for (const [path, content] of files) {
    const full = join(o.out, path)
    const old = existsSync(full) ? readFileSync(full, 'utf8') : undefined
    if (old === content) continue
    if (o.check) stale.push(`${old === undefined ? 'missing' : 'stale'}: ${relative(o.root, full)}`)
    else {
      mkdirSync(dirname(full), { recursive: true })
      writeFileSync(full, content)
      process.stdout.write(`wrote ${relative(o.root, full)}\n`)
    }
  }
  for (const path of existing(o.out)) {
    if (!files.has(path)) stale.push(`not generated from the spec (delete it): ${relative(o.root, join(o.out, path))}`)
  }
  if (stale.length) {
    process.stderr.write(`${stale.join('\n')}\ngenerated/ is out of date with spec/: run npm run generate\n`)
    return 1
  }
  if (o.check) process.stdout.write(`generated/ is up to date (${files.size} files from ${spec.classes.length} spec classes)\n`)
  return 0
}

process.exitCode = main()
