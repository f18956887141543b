// Emits the conformance tests of a spec class: each case runs twice, with the blocking methods and
// with their coro_ twins, so every behaviour in the spec is checked in both styles.

import Handlebars from 'handlebars'
import { readFileSync } from 'node:fs'
import type { CaseModel, ClassModel, MethodModel, SpecModel, StepModel } from './model.js'
import { CALL } from './load.js'

const hbs = Handlebars.create()
hbs.registerHelper('json', (v: unknown) => JSON.stringify(v))
const template = hbs.compile(readFileSync(new URL('../../codegen/templates/conformance.hbs', import.meta.url), 'utf8'), { strict: true, noEscape: true })

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
 * Where the cases run: the class itself, or its proxies in a context that makes objects on a
 * manager server (`ctx.AioLock(...)` for `new AioLock(...)`).
 */
export interface Variant {
  /** Test title suffix and the proxies' context, e.g. 'spawn'. */
  readonly name: string
  /** Code before the tests: defines `ctx`. */
  readonly prelude: string
  /** Classes whose `new X(` becomes `ctx.X(`. */
  readonly made: readonly string[]
}

/** Whether a case can run on proxies: it must not call what proxies do not offer. */
export function proxyCase(cls: ClassModel, c: CaseModel): boolean {
  if (c.proxy === false) return false
  const hidden = cls.proxy?.hide ?? []
  return !c.steps.some((s) => s.do && hidden.includes(s.do.match(CALL)![1]))
}

export function emitConformance(cls: ClassModel, spec: SpecModel, entry: string, errorNames: readonly string[], variant?: Variant): string {
  const imports = [...spec.classes.map((c) => c.name), ...errorNames].sort().join(', ')
  const made = variant ? new RegExp(`\\bnew (${variant.made.join('|')})(?=[<(])`, 'g') : undefined
  const rw = (text: string) => (made ? text.replace(made, 'ctx.$1') : text)
  const cases = variant ? cls.conformance.filter((c) => proxyCase(cls, c)) : cls.conformance
  const label = variant ? `${cls.name}Proxy (${variant.name})` : cls.name
  return template({
    specFile: cls.specFile,
    className: label,
    imports,
    entry,
    prelude: variant?.prelude ?? '',
    cases: cases.map((c) => ({
      given: c.given.map(([name, expr]) => `const ${name} = ${rw(expr)}`),
      setup: rw(c.setup ?? `new ${cls.name}()`),
      teardown: rw(c.teardown ?? ''),
      variants: [false, true].map((coro) => ({
        title: `${label}: ${c.name} (${coro ? 'coro' : 'blocking'})`,
        coro,
        steps: c.steps.flatMap((s) => renderStep(cls, { ...s, expect: s.expect === undefined ? undefined : rw(s.expect) }, coro)),
      })),
    })),
  })
}
