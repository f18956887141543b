// Loads spec YAML into the SpecModel. Every problem is collected with file:line:col and its path
// in the spec, then reported all at once; unknown keys are errors, never silence.

import { readFileSync } from 'node:fs'
import { basename, dirname, relative, resolve } from 'node:path'
import { LineCounter, parseDocument, isMap, isSeq, isScalar, type Node, type Document } from 'yaml'
import {
  PARAM_TYPES,
  type BlockingModel, type CaseModel, type ClassModel, type MethodModel, type OnTimeout, type ParamModel,
  type Problem, type PropertyModel, type StepModel,
} from './model.js'

const IDENT = /^[A-Za-z_$][\w$]*$/
const CALL = /^([A-Za-z_$][\w$]*)(?:\.[A-Za-z_$][\w$]*)*\((.*)\)$/s

/** Where a node sits, as `file:line:col`. */
class Source {
  readonly lines = new LineCounter()
  readonly doc: Document
  constructor(readonly file: string, readonly display: string, text: string, readonly problems: Problem[]) {
    this.doc = parseDocument(text, { lineCounter: this.lines, keepSourceTokens: false })
    // After the first syntax errors the parser mostly reports their echoes: keep the first few.
    const shown = 3
    for (const e of this.doc.errors.slice(0, shown)) {
      const { line, col } = this.lines.linePos(e.pos[0])
      problems.push({ at: `${display}:${line}:${col}`, path: '(yaml)', message: e.message.split('\n')[0] })
    }
    if (this.doc.errors.length > shown) {
      problems.push({ at: `${display}`, path: '(yaml)', message: `${this.doc.errors.length - shown} more YAML errors, most likely caused by the first; quote values that contain ': ' or start with '{' or '['` })
    }
  }
  at(node: Node | null | undefined): string {
    const offset = node?.range?.[0] ?? 0
    const { line, col } = this.lines.linePos(offset)
    return `${this.display}:${line}:${col}`
  }
  problem(node: Node | null | undefined, path: string, message: string): void {
    this.problems.push({ at: this.at(node), path, message })
  }
}

type Shape = Record<string, { required?: boolean; kind: 'string' | 'boolean' | 'number' | 'list' | 'map' | 'scalar' }>

/** Checks a map's keys against `shape`, reports unknown and missing keys, returns key → node. */
function fields(src: Source, node: unknown, path: string, shape: Shape): Map<string, Node> | undefined {
  const out = new Map<string, Node>()
  if (!isMap(node)) {
    src.problem(node as Node, path, `expected a mapping with keys ${Object.keys(shape).join(', ')}`)
    return undefined
  }
  for (const pair of node.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key)
    const rule = Object.hasOwn(shape, key) ? shape[key] : undefined
    if (!rule) {
      src.problem(pair.key as Node, path ? `${path}.${key}` : key, `unknown key '${key}'; write one of: ${Object.keys(shape).join(', ')}`)
      continue
    }
    if (out.has(key)) src.problem(pair.key as Node, `${path}.${key}`, `duplicate key '${key}'`)
    const value = pair.value as Node
    const ok =
      rule.kind === 'list' ? isSeq(value) :
      rule.kind === 'map' ? isMap(value) :
      isScalar(value) && (rule.kind === 'scalar' || typeof value.value === rule.kind)
    if (!ok) {
      src.problem(value ?? (pair.key as Node), `${path}.${key}`, `'${key}' must be a ${rule.kind}`)
      continue
    }
    out.set(key, value)
  }
  for (const [key, rule] of Object.entries(shape)) {
    if (rule.required && !out.has(key)) src.problem(node, `${path}.${key}`, `missing required key '${key}'`)
  }
  return out
}

function str(f: Map<string, Node> | undefined, key: string): string | undefined {
  const n = f?.get(key)
  return n && isScalar(n) ? String(n.value) : undefined
}
function scalarText(n: Node | undefined): string | undefined {
  if (!n || !isScalar(n)) return undefined
  return typeof n.value === 'string' ? n.value : String(n.value)
}

function checkCall(src: Source, node: Node | undefined, path: string, text: string | undefined): string | undefined {
  if (text === undefined) return undefined
  if (!CALL.test(text.trim())) {
    src.problem(node, path, `'${text}' must be a call on the runtime core, like tryAcquire() or waitAttempt(s)`)
    return undefined
  }
  return text.trim()
}

const PARAM: Shape = {
  name: { required: true, kind: 'string' }, type: { required: true, kind: 'string' }, ts: { kind: 'string' },
  default: { kind: 'scalar' }, optional: { kind: 'boolean' }, min: { kind: 'number' }, doc: { required: true, kind: 'string' },
}

function loadParams(src: Source, node: Node | undefined, path: string): ParamModel[] {
  if (!node) return []
  if (!isSeq(node)) {
    src.problem(node, path, 'params must be a list')
    return []
  }
  const seen = new Set<string>()
  return node.items.flatMap((item, i) => {
    const p = `${path}[${i}]`
    const f = fields(src, item, p, PARAM)
    const name = str(f, 'name')
    const type = str(f, 'type')
    if (!f || !name || !type) return []
    if (!IDENT.test(name)) src.problem(f.get('name'), `${p}.name`, `'${name}' is not an identifier`)
    if (seen.has(name)) src.problem(f.get('name'), `${p}.name`, `duplicate parameter '${name}'`)
    seen.add(name)
    const known = PARAM_TYPES[type]
    const ts = str(f, 'ts')
    if (!known) {
      src.problem(f.get('type'), `${p}.type`, `unknown type '${type}'; write one of: ${Object.keys(PARAM_TYPES).join(', ')} (and 'ts: <TypeScript type>' for a precise annotation)`)
      return []
    }
    const defNode = f.get('default')
    const def = defNode ? scalarText(defNode) : type === 'timeout' ? 'null' : undefined
    return [{
      at: src.at(item as Node), name, type, tsType: ts ?? known.ts, default: def,
      optional: f.get('optional') ? Boolean((f.get('optional') as any).value) : false,
      min: f.get('min') ? Number((f.get('min') as any).value) : undefined,
      doc: str(f, 'doc') ?? '',
    }]
  })
}

const BLOCKING: Shape = {
  fast: { kind: 'string' }, begin: { kind: 'string' }, coro_begin: { kind: 'string' }, attempt: { required: true, kind: 'string' },
  block: { kind: 'string' }, timeout: { kind: 'string' }, timeout_fallback: { kind: 'string' },
  on_timeout: { required: true, kind: 'map' }, parks_on: { kind: 'string' }, awaits: { kind: 'string' },
}
const ON_TIMEOUT: Shape = { return: { kind: 'string' }, throw: { kind: 'string' }, message: { kind: 'string' }, call: { kind: 'string' } }

function loadBlocking(src: Source, node: Node, path: string, params: ParamModel[]): BlockingModel | undefined {
  const f = fields(src, node, path, BLOCKING)
  if (!f) return undefined
  const ot = fields(src, f.get('on_timeout'), `${path}.on_timeout`, ON_TIMEOUT)
  let onTimeout: OnTimeout | undefined
  const kinds = ['return', 'throw', 'call'].filter((k) => ot?.has(k))
  if (kinds.length !== 1) {
    src.problem(f.get('on_timeout'), `${path}.on_timeout`, "write exactly one of 'return: <expression>', 'throw: <ErrorClass>' or 'call: <core call>'")
  } else if (kinds[0] === 'return') onTimeout = { return: str(ot, 'return')! }
  else if (kinds[0] === 'throw') onTimeout = { throw: str(ot, 'throw')!, message: str(ot, 'message') }
  else {
    const call = checkCall(src, ot!.get('call'), `${path}.on_timeout.call`, str(ot, 'call'))
    if (call) onTimeout = { call }
  }
  for (const key of ['block', 'timeout'] as const) {
    const name = str(f, key)
    if (name !== undefined && !params.some((p) => p.name === name)) {
      src.problem(f.get(key), `${path}.${key}`, `'${name}' is not a parameter of this method; write one of: ${params.map((p) => p.name).join(', ') || '(none)'}`)
    }
  }
  const parksOn = str(f, 'parks_on') ?? 'core'
  if (!IDENT.test(parksOn)) src.problem(f.get('parks_on'), `${path}.parks_on`, "write 'core', 'state', or the name of a core member that is a Waiter")
  if (f.has('coro_begin') && !f.has('begin')) src.problem(f.get('coro_begin'), `${path}.coro_begin`, "'coro_begin' replaces 'begin' in the coro_ twin: write 'begin' too")
  if (parksOn === 'state' && !f.has('begin')) src.problem(f.get('parks_on'), `${path}.parks_on`, "'parks_on: state' needs a 'begin' call that makes the state")
  const attempt = checkCall(src, f.get('attempt'), `${path}.attempt`, str(f, 'attempt'))
  if (!attempt || !onTimeout) return undefined
  return {
    at: src.at(node), attempt, onTimeout,
    fast: checkCall(src, f.get('fast'), `${path}.fast`, str(f, 'fast')),
    begin: checkCall(src, f.get('begin'), `${path}.begin`, str(f, 'begin')),
    coroBegin: checkCall(src, f.get('coro_begin'), `${path}.coro_begin`, str(f, 'coro_begin')),
    block: str(f, 'block'), timeout: str(f, 'timeout'), timeoutFallback: str(f, 'timeout_fallback'),
    parksOn, awaits: checkCall(src, f.get('awaits'), `${path}.awaits`, str(f, 'awaits')),
  }
}

const METHOD: Shape = {
  name: { required: true, kind: 'string' }, doc: { required: true, kind: 'string' }, params: { kind: 'list' },
  returns: { kind: 'map' }, throws: { kind: 'list' }, blocking: { kind: 'map' }, call: { kind: 'string' },
  composite: { kind: 'string' }, coro: { kind: 'boolean' }, type_params: { kind: 'string' },
}
const RETURNS: Shape = { type: { required: true, kind: 'string' }, doc: { kind: 'string' } }
const THROWS: Shape = { error: { required: true, kind: 'string' }, when: { required: true, kind: 'string' } }

function loadMethod(src: Source, item: Node, path: string): MethodModel | undefined {
  const f = fields(src, item, path, METHOD)
  const name = str(f, 'name')
  if (!f || !name) return undefined
  if (!IDENT.test(name) || name.startsWith('coro_')) {
    src.problem(f.get('name'), `${path}.name`, `'${name}' must be an identifier without the coro_ prefix (twins are generated)`)
  }
  const params = loadParams(src, f.get('params'), `${path}.params`)
  const ret = f.has('returns') ? fields(src, f.get('returns'), `${path}.returns`, RETURNS) : undefined
  const throwsNode = f.get('throws')
  const throws = isSeq(throwsNode)
    ? throwsNode.items.flatMap((t, i) => {
        const tf = fields(src, t, `${path}.throws[${i}]`, THROWS)
        return tf ? [{ error: str(tf, 'error')!, when: str(tf, 'when')! }] : []
      })
    : []
  const ways = ['blocking', 'call', 'composite'].filter((k) => f.has(k))
  if (ways.length !== 1) {
    src.problem(item, path, `method '${name}' needs exactly one of 'blocking:' (it can wait), 'call: <core call>' (it cannot), or 'composite: <body>'`)
    return undefined
  }
  const blocking = f.has('blocking') ? loadBlocking(src, f.get('blocking')!, `${path}.blocking`, params) : undefined
  if (f.has('blocking') && !blocking) return undefined
  if (f.has('coro') && !f.has('call')) src.problem(f.get('coro'), `${path}.coro`, "'coro' is for 'call' methods; blocking and composite methods always get a coro_ twin")
  return {
    at: src.at(item), name, doc: str(f, 'doc') ?? '', params,
    returns: { type: str(ret, 'type') ?? 'void', doc: str(ret, 'doc') ?? '' },
    throws, blocking,
    call: checkCall(src, f.get('call'), `${path}.call`, str(f, 'call')),
    composite: str(f, 'composite'),
    coro: f.has('coro') ? Boolean((f.get('coro') as any).value) : false,
    typeParams: str(f, 'type_params'),
  }
}

const PROPERTY: Shape = {
  name: { required: true, kind: 'string' }, type: { required: true, kind: 'string' }, doc: { required: true, kind: 'string' },
  get: { required: true, kind: 'string' }, set: { kind: 'string' },
}
const STEP: Shape = {
  do: { kind: 'string' }, expect: { kind: 'string' }, returns: { kind: 'scalar' }, equals: { kind: 'scalar' },
  throws: { kind: 'string' }, message: { kind: 'string' }, matches: { kind: 'string' }, elapsed_at_least: { kind: 'number' },
  as: { kind: 'string' },
}
const CASE: Shape = {
  name: { required: true, kind: 'string' }, given: { kind: 'map' }, setup: { kind: 'string' }, steps: { required: true, kind: 'list' }, teardown: { kind: 'string' },
  proxy_skip: { kind: 'string' },
  redis_skip: { kind: 'string' },
}

function loadCase(src: Source, item: Node, path: string): CaseModel | undefined {
  const f = fields(src, item, path, CASE)
  if (!f || !str(f, 'name')) return undefined
  const stepsNode = f.get('steps')
  const steps: StepModel[] = isSeq(stepsNode)
    ? stepsNode.items.flatMap((s, i) => {
        const p = `${path}.steps[${i}]`
        const sf = fields(src, s, p, STEP)
        if (!sf) return []
        if (sf.has('do') === sf.has('expect')) {
          src.problem(s as Node, p, "a step has exactly one of 'do: <method call>' or 'expect: <expression>'")
          return []
        }
        if (sf.has('as') && (!IDENT.test(str(sf, 'as')!) || ['throws', 'returns', 'equals', 'matches'].some((k) => sf.has(k)))) {
          src.problem(sf.get('as'), `${p}.as`, "'as: <name>' binds the step's value to a name; it cannot be combined with a check")
        }
        if (sf.has('do') && !CALL.test(str(sf, 'do')!.trim())) src.problem(sf.get('do'), `${p}.do`, `'${str(sf, 'do')}' must be a method call like acquire(false)`)
        return [{
          at: src.at(s as Node), do: str(sf, 'do')?.trim(), expect: str(sf, 'expect'),
          returns: sf.has('returns') ? scalarText(sf.get('returns')) : undefined,
          equals: sf.has('equals') ? scalarText(sf.get('equals')) : undefined,
          throws: str(sf, 'throws'), message: str(sf, 'message'), matches: str(sf, 'matches'),
          elapsedAtLeast: sf.has('elapsed_at_least') ? Number((sf.get('elapsed_at_least') as any).value) : undefined,
          as: str(sf, 'as'),
        }]
      })
    : []
  const givenNode = f.get('given')
  const given: [string, string][] = isMap(givenNode)
    ? givenNode.items.map((pair) => [String((pair.key as any)?.value ?? pair.key), scalarText(pair.value as Node) ?? ''])
    : []
  for (const [name] of given) if (!IDENT.test(name)) src.problem(givenNode as Node, `${path}.given`, `'${name}' is not an identifier`)
  return { at: src.at(item), name: str(f, 'name')!, given, setup: str(f, 'setup'), teardown: str(f, 'teardown'), steps, proxy: f.has('proxy_skip') ? false : undefined, redis: f.has('proxy_skip') || f.has('redis_skip') ? false : undefined }
}

const CLASS: Shape = {
  class: { required: true, kind: 'string' }, doc: { required: true, kind: 'string' }, core: { required: true, kind: 'map' },
  type_params: { kind: 'string' }, extends: { kind: 'string' },
  ['constructor' as string]: { kind: 'map' as const }, describe: { kind: 'string' }, transfer: { kind: 'boolean' }, context: { kind: 'map' },
  iterator: { kind: 'string' }, dispose: { kind: 'list' }, proxy: { kind: 'map' }, example: { kind: 'string' }, prints: { kind: 'string' },
  imports: { kind: 'map' }, methods: { kind: 'list' }, properties: { kind: 'list' }, conformance: { kind: 'list' },
}
const CORE: Shape = { module: { required: true, kind: 'string' }, class: { required: true, kind: 'string' }, create: { required: true, kind: 'string' } }
const CONSTRUCTOR: Shape = { params: { kind: 'list' }, doc: { kind: 'string' } }
const PROXY: Shape = { typeid: { required: true, kind: 'string' }, hide: { kind: 'list' } }
const CONTEXT: Shape = { enter: { required: true, kind: 'string' }, exit: { required: true, kind: 'string' } }

function loadClass(src: Source): ClassModel | undefined {
  const root = src.doc.contents as Node
  const f = fields(src, root, '', CLASS)
  const name = str(f, 'class')
  if (!f || !name) return undefined
  if (!/^Aio[A-Z]\w*$/.test(name) && !/^[A-Z]\w*$/.test(name)) src.problem(f.get('class'), 'class', `'${name}' must be a class name in PascalCase`)
  const core = fields(src, f.get('core'), 'core', CORE)
  const ctor = f.has('constructor') ? fields(src, f.get('constructor'), 'constructor', CONSTRUCTOR) : undefined
  const context = f.has('context') ? fields(src, f.get('context'), 'context', CONTEXT) : undefined
  const methodsNode = f.get('methods')
  const methods = isSeq(methodsNode) ? methodsNode.items.flatMap((m, i) => loadMethod(src, m as Node, `methods[${i}]`) ?? []) : []
  const seen = new Map<string, MethodModel>()
  for (const m of methods) {
    if (seen.has(m.name)) src.problems.push({ at: m.at, path: `methods.${m.name}`, message: `duplicate method '${m.name}' (first at ${seen.get(m.name)!.at})` })
    seen.set(m.name, m)
  }
  const propsNode = f.get('properties')
  const properties: PropertyModel[] = isSeq(propsNode)
    ? propsNode.items.flatMap((p, i) => {
        const pf = fields(src, p, `properties[${i}]`, PROPERTY)
        if (!pf || !str(pf, 'name')) return []
        if (seen.has(str(pf, 'name')!)) src.problem(pf.get('name'), `properties[${i}].name`, `'${str(pf, 'name')}' is already a method`)
        return [{ at: src.at(p as Node), name: str(pf, 'name')!, type: str(pf, 'type')!, doc: str(pf, 'doc')!, get: str(pf, 'get')!, set: str(pf, 'set') }]
      })
    : []
  const importsNode = f.get('imports')
  const imports = new Map<string, string[]>()
  if (isMap(importsNode)) {
    for (const pair of importsNode.items) {
      const mod = String((pair.key as any).value ?? pair.key)
      if (!isSeq(pair.value) || !pair.value.items.every((n) => isScalar(n) && typeof n.value === 'string')) {
        src.problem(pair.value as Node, `imports.${mod}`, 'write a list of names to import from that module')
        continue
      }
      // A module path is relative to the spec file, so a spec/ + runtime/ pair works wherever it is copied.
      imports.set(mod === 'generated' ? mod : resolve(dirname(src.file), mod), pair.value.items.map((n) => String((n as any).value)))
    }
  }
  const confNode = f.get('conformance')
  const conformance = isSeq(confNode) ? confNode.items.flatMap((c, i) => loadCase(src, c as Node, `conformance[${i}]`) ?? []) : []
  if (context) {
    for (const key of ['enter', 'exit']) {
      const target = str(context, key)
      if (target && !seen.has(target)) src.problem(context.get(key), `context.${key}`, `'${target}' is not a method of ${name}`)
    }
  }
  const iterator = str(f, 'iterator')
  if (iterator !== undefined && !seen.get(iterator)?.blocking) src.problem(f.get('iterator'), 'iterator', `'${iterator}' is not a blocking method of ${name}; name the one that returns IteratorResult`)
  const disposeNode = f.get('dispose')
  const dispose = isSeq(disposeNode) ? disposeNode.items.map((n) => String((n as any).value)) : undefined
  for (const d of dispose ?? []) if (!seen.has(d)) src.problem(disposeNode as Node, 'dispose', `'${d}' is not a method of ${name}`)
  const proxyFields = f.has('proxy') ? fields(src, f.get('proxy'), 'proxy', PROXY) : undefined
  const hideNode = proxyFields?.get('hide')
  const hide = isSeq(hideNode) ? hideNode.items.map((n) => String((n as any).value)) : []
  // A class with `extends` gets its parent's members later: its hide list is checked against those by the emitter.
  if (!f.has('extends')) for (const h of hide) if (!seen.has(h) && !properties.some((p) => p.name === h)) src.problem(hideNode as Node, 'proxy.hide', `'${h}' is not a method or property of ${name}`)
  const proxy = proxyFields && str(proxyFields, 'typeid') ? { typeid: str(proxyFields, 'typeid')!, hide } : undefined
  const ctorParams = loadParams(src, ctor?.get('params'), 'constructor.params')
  const stem = basename(src.file).replace(/\.ya?ml$/, '')
  return {
    at: src.at(root), name, stem, specFile: src.display, doc: str(f, 'doc')!, typeParams: str(f, 'type_params'),
    core: { module: str(core, 'module') === undefined ? '' : resolve(dirname(src.file), str(core, 'module')!), class: str(core, 'class') ?? '', create: checkCall(src, core?.get('create'), 'core.create', str(core, 'create')) ?? '', at: src.at(f.get('core')) },
    constructorParams: ctorParams,
    constructorDoc: str(ctor, 'doc') ?? '',
    example: str(f, 'example'),
    prints: str(f, 'prints'),
    describe: str(f, 'describe'),
    transfer: f.has('transfer') ? Boolean((f.get('transfer') as any).value) : true,
    context: context ? { enter: str(context, 'enter')!, exit: str(context, 'exit')! } : undefined,
    iterator, dispose, proxy,
    imports, methods, properties, conformance, extends: str(f, 'extends'),
  }
}

/**
 * `extends: AioQueue` takes the parent's constructor, methods, properties, imports and describe
 * where the child does not give its own; the parent's conformance cases run on the child too.
 */
function resolveExtends(classes: ClassModel[], problems: Problem[]): ClassModel[] {
  const byName = new Map(classes.map((c) => [c.name, c]))
  return classes.map((c) => {
    if (!c.extends) return c
    const parent = byName.get(c.extends)
    if (!parent || parent.extends) {
      problems.push({ at: c.at, path: 'extends', message: parent ? `${c.extends} extends another class itself; extend its parent instead` : `no spec class ${c.extends}; write one of: ${[...byName.keys()].join(', ')}` })
      return c
    }
    if (c.constructorParams.length) {
      problems.push({ at: c.at, path: 'constructor', message: `${c.name} extends ${parent.name} and takes its constructor; remove 'constructor' (the core's create call receives the same parameters)` })
      return c
    }
    const own = new Set(c.methods.map((m) => m.name))
    const ownProps = new Set(c.properties.map((p) => p.name))
    return {
      ...c,
      typeParams: c.typeParams ?? parent.typeParams,
      constructorParams: parent.constructorParams,
      constructorDoc: c.constructorDoc || parent.constructorDoc,
      describe: c.describe ?? parent.describe,
      context: c.context ?? parent.context,
      imports: new Map([...parent.imports, ...c.imports]),
      methods: [...parent.methods.filter((m) => !own.has(m.name)), ...c.methods],
      properties: [...parent.properties.filter((p) => !ownProps.has(p.name)), ...c.properties],
      inherited: {
        methods: new Set(parent.methods.map((m) => m.name).filter((n) => !own.has(n))),
        properties: new Set(parent.properties.map((p) => p.name).filter((n) => !ownProps.has(n))),
      },
    }
  })
}

/** Every method is exercised by a conformance step, and every step calls a method of the class. */
function checkConformance(c: ClassModel, problems: Problem[]): void {
  const names = new Set(c.methods.map((m) => m.name))
  // Inherited methods are exercised by the parent's cases, which run on this class too.
  for (const m of c.methods.filter((x) => !c.inherited?.methods.has(x.name))) {
    const used = c.conformance.some((k) => k.steps.some((s) => s.do?.startsWith(`${m.name}(`)))
    if (!used) problems.push({ at: m.at, path: `methods.${m.name}`, message: `method '${m.name}' has no conformance step; add a case under conformance: with 'do: ${m.name}(...)'` })
  }
  for (const k of c.conformance) {
    for (const s of k.steps) {
      const called = s.do?.match(CALL)?.[1]
      if (called && !names.has(called)) problems.push({ at: s.at, path: `conformance.${k.name}`, message: `'${called}' is not a method of ${c.name}` })
    }
  }
  const required = c.constructorParams.filter((p) => p.default === undefined && !p.optional)
  if (required.length) {
    for (const k of c.conformance) {
      if (!k.setup) problems.push({ at: k.at, path: `conformance.${k.name}`, message: `${c.name} needs constructor arguments (${required.map((p) => p.name).join(', ')}); add 'setup: new ${c.name}(...)' to this case` })
    }
  }
}

/** Loads every file, collecting all problems (the classes that loaded are still returned). */
export function loadSpec(files: readonly string[], root: string): { spec: import('./model.js').SpecModel; problems: Problem[] } {
  const problems: Problem[] = []
  const classes: ClassModel[] = []
  for (const file of files) {
    const src = new Source(file, relative(root, file), readFileSync(file, 'utf8'), problems)
    const cls = loadClass(src)
    if (cls) classes.push(cls)
  }
  const names = new Map<string, ClassModel>()
  for (const c of classes) {
    if (names.has(c.name)) problems.push({ at: c.at, path: 'class', message: `class ${c.name} is already defined in ${names.get(c.name)!.specFile}` })
    names.set(c.name, c)
  }
  const resolved = resolveExtends(classes, problems)
  for (const c of resolved) checkConformance(c, problems)
  return { spec: { classes: resolved }, problems }
}

export { CALL }
