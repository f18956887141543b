// Emits the conformance tests of a spec class: each case runs twice, with the blocking methods and
// with their coro_ twins, so every behaviour in the spec is checked in both styles.

import Handlebars from 'handlebars'
import { readFileSync } from 'node:fs'
import type { CaseModel, ClassModel, MethodModel, SpecModel, StepModel } from './model.js'
import { CALL } from './load.js'

const hbs = Handlebars.create()
hbs.registerHelper('json', (v: unknown) => JSON.stringify(v))
const template = hbs.compile(readFileSync(new URL('../templates/conformance.hbs', import.meta.url), 'utf8'), { strict: true, noEscape: true })

function hasCoro(m: MethodModel): boolean {
  return Boolean(m.blocking || m.composite || m.coro)
}

function renderCall(cls: ClassModel, call: string, coro: boolean): string {
  const [, name, args] = call.match(CALL)!
  const m = cls.methods.find((x) => x.name === name)!
  return coro && hasCoro(m) ? `await obj.coro_${name}(${args})` : `obj.${name}(${args})`
}

function renderStep(cls: ClassModel, s: StepModel, coro: boolean): string[] {
  const value = s.do ? renderCall(cls, s.do, coro) : s.expect!
  const where = JSON.stringify(s.at)
  const lines: string[] = []
  if (s.throws) {
    const expectation = `{ instanceOf: ${s.throws}${s.message ? `, message: /${s.message}/` : ''} }`
    lines.push(coro ? `await t.throwsAsync(async () => ${value}, ${expectation}, ${where})` : `t.throws(() => ${value}, ${expectation}, ${where})`)
  } else if (s.returns !== undefined) {
    lines.push(`t.deepEqual(${value}, ${s.returns}, ${where})`)
  } else if (s.equals !== undefined) {
    lines.push(`t.deepEqual(${value}, ${s.equals}, ${where})`)
  } else if (s.matches !== undefined) {
    lines.push(`t.regex(String(${value}), /${s.matches}/, ${where})`)
  } else if (s.as) {
    lines.push(`const ${s.as} = ${value}`)
  } else {
    lines.push(value)
  }
  if (s.elapsedAtLeast === undefined) return lines
  return [
    '{',
    '  const started = performance.now()',
    ...lines.map((l) => `  ${l}`),
    `  t.true(performance.now() - started >= ${s.elapsedAtLeast}, ${JSON.stringify(`${s.at}: returned before ${s.elapsedAtLeast} ms`)})`,
    '}',
  ]
}

/**
 * A context the cases run again in, on proxies: `ctx.AioLock(...)` for `new AioLock(...)`, where
 * `ctx` makes the object on a manager server.
 */
export interface Variant {
  /** Test title suffix, e.g. 'spawn'. */
  readonly name: string
  /** Statements before the tests (a manager to start). */
  readonly prelude: readonly string[]
  /** The context object's expression. */
  readonly ctx: string
  /** The object under test is the class itself, not a proxy: `make` is typed as its constructor. */
  readonly typed?: boolean
  /** Objects kept in Redis: cases marked `redis_skip` are left out. */
  readonly redis?: boolean
}

/** The const that holds a variant's context in a test file: `ctxSpawn`, `ctxManager`. */
const ctxName = (v: Variant): string => `ctx${v.name[0].toUpperCase()}${v.name.slice(1)}`

/** Whether a case can run on proxies: it must not call what proxies do not offer. */
export function proxyCase(cls: ClassModel, c: CaseModel): boolean {
  if (c.proxy === false) return false
  const hidden = cls.proxy?.hide ?? []
  return !c.steps.some((s) => s.do && hidden.includes(s.do.match(CALL)![1]))
}

/**
 * The conformance tests of a class; with `variants`, those of its proxies instead: each case runs
 * in every variant's context, in both styles. A class that others extend runs its cases on each of
 * them too (`for ... of` one body). `made` names the classes whose construction becomes `ctx.X(...)`.
 */
export function emitConformance(cls: ClassModel, spec: SpecModel, entry: string, errorNames: readonly string[], variants?: readonly Variant[], made: readonly string[] = []): string {
  const imports = [...spec.classes.map((c) => c.name), ...errorNames].sort().join(', ')
  const family = [cls, ...spec.classes.filter((c) => c.extends === cls.name)]
  const under = new RegExp(`\\bnew ${cls.name}(?:<[^>(]*>)?(?=\\()`, 'g')
  const others = new RegExp(`\\bnew (${made.filter((m) => m !== cls.name).join('|') || '$^'})(?=[<(])`, 'g')
  // The class under test is made by the loop's `make` (proxies) or `Cls` (subclasses); for proxies
  // every other object, and AioPipe(), comes from the context too.
  const rw = (text: string): string => {
    if (variants) return text.replace(under, 'make').replace(others, 'ctx.$1').replace(/(?<![\w.])AioPipe\(/g, 'ctx.AioPipe(')
    return family.length > 1 ? text.replace(under, 'new Cls') : text
  }
  const cases = variants ? cls.conformance.filter((c) => proxyCase(cls, c) && !(variants.some((v) => v.redis) && c.redis === false)) : cls.conformance
  let prelude = ''
  let loop = ''
  if (variants) {
    prelude = [
      ...variants.flatMap((v) => v.prelude),
      ...variants.map((v) => `const ${ctxName(v)}: any = ${v.ctx}`),
      '/** Where every case runs: [title prefix, the context that makes its objects, what makes the object under test]. */',
      // A class without proxies (the pool, on the spawn context) is made as itself: its cases' callbacks keep their types.
      `const CONTEXTS: [string, any, ${!variants.every((v) => v.typed) ? '(...args: any[]) => any' : `(...args: ConstructorParameters<typeof ${cls.name}>) => ${cls.name}`}][] = [`,
      ...variants.flatMap((v) => family.map((c) => `  ['${c.name}${c.proxy ? 'Proxy' : ''} (${v.name})', ${ctxName(v)}, (...args) => ${ctxName(v)}.${c.name}(...args)],`)),
      ']',
    ].join('\n')
    loop = 'for (const [label, ctx, make] of CONTEXTS) {'
  } else if (family.length > 1) {
    prelude = `/** ${cls.name}'s cases run on every class that extends it. */\nconst CLASSES: (typeof ${cls.name})[] = [${family.map((c) => c.name).join(', ')}]`
    loop = 'for (const Cls of CLASSES) {'
  }
  const title = (name: string, coro: boolean) => {
    const text = `${name} (${coro ? 'coro' : 'blocking'})`
    const escaped = text.replace(/[`\\$]/g, '\\$&')
    if (variants) return `\`\${label}: ${escaped}\``
    if (family.length > 1) return `\`\${Cls.name}: ${escaped}\``
    return JSON.stringify(`${cls.name}: ${text}`)
  }
  return template({
    specFile: cls.specFile,
    className: variants && cls.proxy ? `${cls.name}Proxy` : cls.name,
    imports,
    entry,
    prelude,
    loop,
    cases: cases.map((c) => ({
      given: c.given.map(([name, expr]) => `const ${name} = ${rw(expr)}`),
      setup: rw(c.setup ?? `new ${cls.name}()`),
      teardown: rw(c.teardown ?? ''),
      variants: [false, true].map((coro) => ({
        title: title(c.name, coro),
        coro,
        steps: c.steps.flatMap((s) => renderStep(cls, { ...s, expect: s.expect === undefined ? undefined : rw(s.expect) }, coro)),
      })),
    })),
  })
}
