// Checks that every runtime symbol the spec names exists: the core module, its class, and each
// method or property a generated member calls. Reads the runtime source with ts-morph.

import { existsSync } from 'node:fs'
import { relative } from 'node:path'
import { Project, type ClassDeclaration } from 'ts-morph'
import type { ClassModel, Problem, SpecModel } from './model.js'
import { CALL } from './load.js'

/** Members of the class and of every class it extends. */
function memberNames(start: ClassDeclaration): { instance: Set<string>; statics: Set<string> } {
  const instance = new Set<string>()
  const statics = new Set<string>()
  for (let cls: ClassDeclaration | undefined = start; cls; cls = cls.getBaseClass()) collect(cls, instance, statics)
  return { instance, statics }
}

function collect(cls: ClassDeclaration, instance: Set<string>, statics: Set<string>): void {
  for (const m of cls.getMembers()) {
    const name = 'getName' in m && typeof m.getName === 'function' ? (m.getName() as string) : undefined
    if (!name) continue
    ;('isStatic' in m && typeof m.isStatic === 'function' && m.isStatic() ? statics : instance).add(name)
  }
  for (const p of cls.getConstructors()[0]?.getParameters() ?? []) if (p.isParameterProperty()) instance.add(p.getName())
}

function leadingName(expr: string): string {
  return expr.match(CALL)?.[1] ?? expr.match(/^[\w$]+/)?.[0] ?? expr
}

export function checkRuntime(spec: SpecModel, root: string): Problem[] {
  const project = new Project({ skipAddingFilesFromTsConfig: true, compilerOptions: { allowJs: false } })
  const problems: Problem[] = []
  for (const c of spec.classes) checkClass(c, root, project, problems)
  return problems
}

function checkClass(c: ClassModel, root: string, project: Project, problems: Problem[]): void {
  const file = c.core.module
  if (!existsSync(file)) {
    problems.push({ at: c.core.at, path: 'core.module', message: `no file ${relative(root, file)}; write the path, relative to the spec file, of the runtime module that defines ${c.core.class}, like ../runtime/lock.ts` })
    return
  }
  const source = project.getSourceFile(file) ?? project.addSourceFileAtPath(file)
  const cls = source.getClass(c.core.class)
  if (!cls || !cls.isExported()) {
    const exported = source.getClasses().filter((k) => k.isExported()).map((k) => k.getName())
    problems.push({ at: c.core.at, path: 'core.class', message: `${relative(root, c.core.module)} exports no class ${c.core.class}; it exports: ${exported.join(', ') || '(no classes)'}` })
    return
  }
  const { instance, statics } = memberNames(cls)
  const need = (at: string, path: string, expr: string | undefined, where: 'instance' | 'static' = 'instance'): void => {
    if (!expr) return
    const name = leadingName(expr)
    if (where === 'static' && name === 'new') return
    const set = where === 'static' ? statics : instance
    if (!set.has(name)) {
      problems.push({
        at, path,
        message: `${c.core.class} (${relative(root, c.core.module)}) has no ${where === 'static' ? 'static ' : ''}member '${name}'; add it to the runtime core or write one of: ${[...set].sort().join(', ')}`,
      })
    }
  }
  need(c.core.at, 'core.create', c.core.create, 'static')
  if (c.transfer) {
    need(c.core.at, 'transfer', 'reduce()')
    need(c.core.at, 'transfer', 'rebuild()', 'static')
  }
  need(c.at, 'describe', c.describe)
  for (const m of c.methods) {
    need(m.at, `methods.${m.name}.call`, m.call)
    const b = m.blocking
    if (b) {
      need(b.at, `methods.${m.name}.blocking.fast`, b.fast)
      need(b.at, `methods.${m.name}.blocking.begin`, b.begin)
      need(b.at, `methods.${m.name}.blocking.coro_begin`, b.coroBegin)
      need(b.at, `methods.${m.name}.blocking.attempt`, b.attempt)
      need(b.at, `methods.${m.name}.blocking.awaits`, b.awaits)
      if ('call' in b.onTimeout) need(b.at, `methods.${m.name}.blocking.on_timeout.call`, b.onTimeout.call)
      if (b.timeoutFallback) need(b.at, `methods.${m.name}.blocking.timeout_fallback`, b.timeoutFallback)
      if (b.parksOn !== 'core' && b.parksOn !== 'state') need(b.at, `methods.${m.name}.blocking.parks_on`, b.parksOn)
    }
  }
  for (const p of c.properties) {
    need(p.at, `properties.${p.name}.get`, p.get)
    need(p.at, `properties.${p.name}.set`, p.set)
  }
}
