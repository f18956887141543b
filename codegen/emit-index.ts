// Emits the public entry point: every spec class, the runtime's public names, and getContext()
// whose 'thread' context offers a factory for every spec class.

import { Project } from 'ts-morph'
import { typeParamNames, withoutVariance, type SpecModel } from './model.js'
import { HEADER, type Target } from './emit-class.js'

export function emitIndex(spec: SpecModel, target: Target): string {
  const project = new Project({ useInMemoryFileSystem: true })
  const file = project.createSourceFile('index.generated.ts', '')
  const classes = [...spec.classes].sort((a, b) => a.name.localeCompare(b.name))
  const proxied = classes.filter((c) => c.proxy)
  const spawn = proxied.length > 0 && classes.some((c) => c.name === 'AioProcess')
  file.addStatements([
    ...classes.map((c) => `import { ${c.name} } from './${c.stem}.generated.js'`),
    ...proxied.map((c) => `import { ${c.name}Proxy } from './${c.stem}.proxy.generated.js'`),
    ...(proxied.length ? [`export { ${proxied.map((c) => `${c.name}Proxy`).join(', ')} }`] : []),
    ...(spawn ? [`import { spawnObject, spawnPipe } from '${target.runtime('spawn-context')}'`, `import type { ProcessOptions } from '${target.runtime('process')}'`] : []),
    `import { NotImplementedError, ValueError } from '${target.runtime('errors')}'`,
    `import { registerClassModule } from '${target.runtime('transfer')}'`,
    ...(target.portable && proxied.length ? [`import { PORTABLE_MODULE } from './portable.generated.js'`] : []),
    `import { withContextOptions, type ContextOptions } from '${target.runtime('context-options')}'`,
    `export * from '${target.runtime('public')}'`,
    // The public functions (AioPipe, AioClient, wait) return the generated AioConnection: tell the runtime its type.
    ...(classes.some((c) => c.name === 'AioConnection')
      ? [`declare module '${target.runtime('public')}' {\n  interface PublicClasses {\n    AioConnection: AioConnection\n  }\n}`]
      : []),
    `export { ${classes.map((c) => c.name).join(', ')} }`,
    // Types a class's type parameters are bounded by (AioValue<C extends Typecode>), for the factories.
    ...typeParamImports(classes, target),
  ])
  file.addStatements((w) => {
    const portable = target.portable && proxied.length > 0
    w.writeLine('// Threads and processes started from here load this module first, so that shared objects of its classes rebuild there.')
    if (portable) w.writeLine('// A spawned process, which can receive proxies only, loads the portable module instead.')
    w.writeLine(`registerClassModule(import.meta.url${portable ? ', PORTABLE_MODULE' : ''})`)
    w.writeLine('')
    w.writeLine('/** The start methods this version has; the first is the default. */')
    w.writeLine(spawn ? "export const startMethods = ['thread', 'spawn'] as const" : "export const startMethods = ['thread'] as const")
    w.writeLine('')
    w.writeLine("/** A start method's factories, as Python's `get_context(method)`: `ctx.AioLock()`, `ctx.AioQueue()`. */")
    w.writeLine('export interface Context {')
    w.writeLine('  getStartMethod(): string')
    // Generic like the classes: ctx.AioQueue<string>(), and ctx.AioValue('q') is an AioValue<'q'>.
    for (const c of classes) w.writeLine(`  ${c.name}${generic(c)}(...args: ConstructorParameters<typeof ${c.name}${names(c)}>): ${c.name}${names(c)}`)
    w.writeLine('}')
    w.writeLine('')
    w.writeLine('const threadContext: Context = Object.freeze({')
    w.writeLine("  getStartMethod: () => 'thread',")
    for (const c of classes) w.writeLine(`  ${c.name}: ((...args: ConstructorParameters<typeof ${c.name}>) => new ${c.name}(...args))${c.typeParams ? ` as Context['${c.name}']` : ''},`)
    w.writeLine('})')
    w.writeLine('')
    if (spawn) {
      w.writeLine('/** A parameter type of a direct class, as the spawn context takes it: its proxies in place of direct objects. */')
      w.writeLine(`type Proxied<T> = ${proxied.map((c) => `T extends ${c.name} ? ${c.name}Proxy : `).join('')}T`)
      w.writeLine('type ProxyArgs<A extends unknown[]> = { [K in keyof A]: Proxied<A[K]> }')
      w.writeLine('')
      w.writeLine("/** The 'spawn' context: processes are new Node processes; shared objects are proxies served by a broker thread of this process. */")
      w.writeLine('export interface SpawnContext {')
      w.writeLine('  getStartMethod(): string')
      w.writeLine('  AioProcess(options: ProcessOptions): AioProcess')
      if (classes.some((c) => c.name === 'AioPool')) {
        w.writeLine('  /** A pool of worker processes: `new AioPool({ ...options, context: \'spawn\' })`. */')
        w.writeLine('  AioPool(...args: ConstructorParameters<typeof AioPool>): AioPool')
      }
      if (proxied.some((c) => c.name === 'AioConnection')) w.writeLine('  /** Python\'s Pipe(duplex): both ends live in the broker, so either may go to a spawned process. */\n  AioPipe(duplex?: boolean): [AioConnectionProxy, AioConnectionProxy]')
      for (const c of proxied) w.writeLine(`  ${c.name}${generic(c)}(...args: ProxyArgs<ConstructorParameters<typeof ${c.name}${names(c)}>>): ${c.name}Proxy${names(c)}`)
      w.writeLine('}')
      w.writeLine('')
      w.writeLine('const spawnContext: SpawnContext = Object.freeze({')
      w.writeLine("  getStartMethod: () => 'spawn',")
      w.writeLine("  AioProcess: (options: ProcessOptions) => new AioProcess({ ...options, startMethod: 'spawn' }),")
      if (classes.some((c) => c.name === 'AioPool')) w.writeLine("  AioPool: (options: ConstructorParameters<typeof AioPool>[0] = {}) => new AioPool({ ...options, context: 'spawn' }),")
      if (proxied.some((c) => c.name === 'AioConnection')) w.writeLine('  AioPipe: (duplex = true) => spawnPipe<AioConnectionProxy>(duplex),')
      for (const c of proxied) w.writeLine(`  ${c.name}: (...args: unknown[]) => spawnObject<${c.name}Proxy>('${c.proxy!.typeid}', args),`)
      w.writeLine('}) as SpawnContext')
      w.writeLine('')
    }
    w.writeLine("/** Python's `get_context()`: 'thread' (worker_threads, shared memory) is the default; `options` apply to every process and pool it makes. */")
    if (spawn) {
      w.writeLine("export function getContext(method: 'spawn', options?: ContextOptions): SpawnContext")
      w.writeLine("export function getContext(method?: 'thread', options?: ContextOptions): Context")
      w.writeLine('export function getContext(method?: string, options?: ContextOptions): Context | SpawnContext')
    }
    w.writeLine(`export function getContext(method: string = 'thread', options: ContextOptions = {}): Context${spawn ? ' | SpawnContext' : ''} {`)
    w.writeLine("  if (method === 'thread') return withContextOptions(threadContext, options)")
    if (spawn) w.writeLine("  if (method === 'spawn') return withContextOptions(spawnContext, options)")
    w.writeLine("  if (method === 'spawn' || method === 'fork' || method === 'forkserver') {")
    w.writeLine(spawn
      ? "    throw new NotImplementedError(`the '${method}' start method is not supported: Node cannot fork a running process; use getContext('spawn') (new processes) or getContext('thread') (worker threads)`)"
      : "    throw new NotImplementedError(`the '${method}' start method is not supported yet; use getContext('thread'), whose processes are worker threads`)")
    w.writeLine('  }')
    w.writeLine("  throw new ValueError(`cannot find context for '${String(method)}'`)")
    w.writeLine('}')
  })
  file.formatText({ indentSize: 2, convertTabsToSpaces: true, semicolons: 'remove' as any })
  return `${HEADER('spec/*.yaml')}\n${file.getFullText()}`
}

type ClassModel = SpecModel['classes'][number]

/**
 * The library's portable module: every proxy class, the containers' (dict, list, Namespace), and
 * AioConnection. A spawned process loads it in place of the index (transfer.ts
 * registerClassModule): a proxy is all that can reach another process, and the rest of the index
 * cost a first spawned process ~17 ms to load.
 */
export function emitPortable(spec: SpecModel, target: Target): string {
  const proxied = [...spec.classes].filter((c) => c.proxy).sort((a, b) => a.name.localeCompare(b.name))
  // A proxy's calls over TCP take an AioConnection (the runtime wraps its ConnectionCore).
  const connection = spec.classes.filter((c) => c.name === 'AioConnection')
  const lines = [
    ...proxied.map((c) => `import './${c.stem}.proxy.generated.js'`),
    ...connection.map((c) => `import './${c.stem}.generated.js'`),
    `import '${target.runtime('containers')}'`,
    '',
    '/** This module, which a spawned process loads to rebuild what it receives. */',
    'export const PORTABLE_MODULE = import.meta.url',
  ]
  return `${HEADER('spec/*.yaml')}\n${lines.join('\n')}\n`
}

/** `<T = unknown>`: a class's type parameters as declared, or nothing. */
function generic(c: ClassModel): string {
  return c.typeParams ? `<${withoutVariance(c.typeParams)}>` : ''
}

/** `<T>`: a class's type parameters as arguments, or nothing. */
function names(c: ClassModel): string {
  return c.typeParams ? `<${typeParamNames(c.typeParams)}>` : ''
}

/** `import type` lines for the spec imports that classes' type parameters name (Typecode). */
function typeParamImports(classes: readonly ClassModel[], target: Target): string[] {
  const lines: string[] = []
  for (const c of classes) {
    if (!c.typeParams) continue
    for (const [module, imported] of c.imports) {
      if (module === 'generated') continue
      const wanted = imported.filter((n) => new RegExp(`\\b${n}\\b`).test(c.typeParams!))
      if (wanted.length) lines.push(`import type { ${wanted.join(', ')} } from '${target.core(module)}'`)
    }
  }
  return [...new Set(lines)]
}
