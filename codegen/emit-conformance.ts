// Emits the conformance tests of a spec class: each case runs twice, with the blocking methods and
// with their coro_ twins, so every behaviour in the spec is checked in both styles.

import Handlebars from 'handlebars'
import { readFileSync } from 'node:fs'
import type { CaseModel, ClassModel, MethodModel, SpecModel, StepModel } from './model.js'
import { CALL } from './load.js'
import { HEADER } from './emit-class.js'

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

/** The CONTEXTS a proxy test file runs its cases in: one row per variant and per class of the family. */
function contextsPrelude(cls: ClassModel, spec: SpecModel, variants: readonly Variant[]): string {
  const family = [cls, ...spec.classes.filter((c) => c.extends === cls.name)]
  return [
    ...variants.flatMap((v) => v.prelude),
    ...variants.map((v) => `const ${ctxName(v)}: any = ${v.ctx}`),
    '/** Where every case runs: [title prefix, the context that makes its objects, what makes the object under test]. */',
    // A class without proxies (the pool, on the spawn context) is made as itself: its cases' callbacks keep their types.
    `const CONTEXTS: [string, any, ${!variants.every((v) => v.typed) ? '(...args: any[]) => any' : `(...args: ConstructorParameters<typeof ${cls.name}>) => ${cls.name}`}][] = [`,
    ...variants.flatMap((v) => family.map((c) => `  ['${c.name}${c.proxy ? 'Proxy' : ''} (${v.name})', ${ctxName(v)}, (...args) => ${ctxName(v)}.${c.name}(...args)],`)),
    ']',
  ].join('\n')
}

/** The name of the function that a proxy cases module exports: `lockProxyCases`. */
export const casesFunction = (cls: ClassModel): string => `${cls.stem.replace(/-(\w)/g, (_, c: string) => c.toUpperCase())}ProxyCases`

/**
 * The conformance tests of a class; with `variants`, those of its proxies instead: each case runs
 * in every variant's context, in both styles. A class that others extend runs its cases on each of
 * them too (`for ... of` one body). `made` names the classes whose construction becomes `ctx.X(...)`.
 * With `exported`, the proxies' cases are a module that exports them as one function of the test
 * function and the contexts (with the names of cases to leave out), which each context's test file
 * calls (emitProxyRunner): the cases are written once for the manager, spawn and Redis contexts.
 */
export function emitConformance(cls: ClassModel, spec: SpecModel, entry: string, errorNames: readonly string[], variants?: readonly Variant[], made: readonly string[] = [], exported?: { redisSkip: boolean }): string {
  const imports = [...spec.classes.map((c) => c.name), ...errorNames].sort().join(', ')
  const family = [cls, ...spec.classes.filter((c) => c.extends === cls.name)]
  const under = new RegExp(`\\bnew ${cls.name}(?:<[^>(]*>)?(?=\\()`, 'g')
  const others = new RegExp(`\\bnew (${made.filter((m) => m !== cls.name).join('|') || '$^'})(?=[<(])`, 'g')
  // The class under test is made by the loop's `make` (proxies) or `Cls` (subclasses); for proxies
  // every other object, and AioPipe(), comes from the context too.
  const proxies = Boolean(variants) || exported
  const rw = (text: string): string => {
    if (proxies) return text.replace(under, 'make').replace(others, 'ctx.$1').replace(/(?<![\w.])AioPipe\(/g, 'ctx.AioPipe(')
    return family.length > 1 ? text.replace(under, 'new Cls') : text
  }
  const cases = proxies ? cls.conformance.filter((c) => proxyCase(cls, c) && !(variants?.some((v) => v.redis) && c.redis === false)) : cls.conformance
  let prelude = ''
  let loop = ''
  let loopEnd = ''
  if (exported) {
    const skipped = cases.filter((c) => c.redis === false).map((c) => JSON.stringify(c.name))
    prelude = exported.redisSkip
      ? ['/** The cases that cannot hold on the Redis context (`redis_skip` in the spec says why). */', `export const REDIS_SKIP: ReadonlySet<string> = new Set([${skipped.join(', ')}])`].join('\n')
      : ''
    loop = [
      '/** Registers every case in each of `CONTEXTS` ([title prefix, context, maker of the object under test]), but those named in `skip`. */',
      `export function ${casesFunction(cls)}(test: typeof avaTest, CONTEXTS: [string, any, (...args: any[]) => any][], skip: ReadonlySet<string> = new Set()): void {`,
      'for (const [label, ctx, make] of CONTEXTS) {',
    ].join('\n')
    loopEnd = '}\n}'
  } else if (variants) {
    prelude = contextsPrelude(cls, spec, variants)
    loop = 'for (const [label, ctx, make] of CONTEXTS) {'
    loopEnd = '}'
  } else if (family.length > 1) {
    prelude = `/** ${cls.name}'s cases run on every class that extends it. */\nconst CLASSES: (typeof ${cls.name})[] = [${family.map((c) => c.name).join(', ')}]`
    loop = 'for (const Cls of CLASSES) {'
    loopEnd = '}'
  }
  const title = (name: string, coro: boolean) => {
    const text = `${name} (${coro ? 'coro' : 'blocking'})`
    const escaped = text.replace(/[`\\$]/g, '\\$&')
    if (proxies) return `\`\${label}: ${escaped}\``
    if (family.length > 1) return `\`\${Cls.name}: ${escaped}\``
    return JSON.stringify(`${cls.name}: ${text}`)
  }
  return template({
    specFile: cls.specFile,
    className: proxies && cls.proxy ? `${cls.name}Proxy` : cls.name,
    what: exported ? 'module of the conformance cases' : 'conformance cases',
    avaImport: exported ? "import type avaTest from 'ava'" : "import test from 'ava'",
    imports,
    entry,
    prelude,
    loop,
    loopEnd,
    cases: cases.map((c) => ({
      guard: exported ? `if (!skip.has(${JSON.stringify(c.name)})) ` : '',
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

/**
 * A test file that runs a proxy class's cases module (`casesModule`, from emitConformance with
 * `exported`) in its variants' contexts; `skip` is the expression of the case names to leave out,
 * `entry` the library's module for a context that getContext() makes.
 */
export function emitProxyRunner(cls: ClassModel, spec: SpecModel, variants: readonly Variant[], casesModule: string, skip?: string, entry?: string): string {
  const fn = casesFunction(cls)
  // A context made by getContext(): imported from the library's entry.
  const getContext = entry && variants.some((v) => v.ctx.includes('getContext(')) ? [`import { getContext } from '${entry}'`] : []
  return [
    HEADER(cls.specFile).trimEnd(),
    '//',
    `// Conformance cases of ${cls.name}Proxy (${casesModule}), each run once with blocking calls and once with coro_ twins, in: ${variants.map((v) => v.name).join(', ')}.`,
    '',
    "import test from 'ava'",
    ...getContext,
    `import { ${fn}${skip ? `, ${skip}` : ''} } from '${casesModule}'`,
    '',
    contextsPrelude(cls, spec, variants),
    '',
    `${fn}(test, CONTEXTS${skip ? `, ${skip}` : ''})`,
    '',
  ].join('\n')
}
