// Emits the proxy variant of a spec class (`proxy: { typeid }`): `<Class>Proxy`, the same methods,
// parameters, checks and docs, each a call to the object's manager server; and the server's
// table of what each type exposes. A proxy's blocking method blocks its thread on the reply (the
// socket is pumped by the I/O thread); its coro_ twin awaits it, and an abort cancels the call
// on the server, which leaves nothing acquired or taken.

import { Project, StructureKind, type ClassDeclarationStructure, type MethodDeclarationStructure, type OptionalKind } from 'ts-morph'
import { typeParamNames, type ClassModel, type MethodModel, type SpecModel } from './model.js'
import { HEADER, HELPERS, SIGNAL_TAG, contextMethods, docs, hostedSpec, paramChecks, paramStructures, paramTags, renderComposite, shown, type Target } from './emit-class.js'

/** `AioRLock` → `AioRLockProxy` wherever a proxied class appears in a type. */
export function proxyTypes(text: string, spec: SpecModel): string {
  return text.replace(/\bAio(\w+)\b/g, (whole) => (spec.classes.some((c) => c.name === whole && c.proxy) ? `${whole}Proxy` : whole))
}

function proxyMethods(cls: ClassModel, spec: SpecModel, m: MethodModel): OptionalKind<MethodDeclarationStructure>[] {
  const params = paramStructures(m.params).map((p) => ({ ...p, type: p.type ? proxyTypes(String(p.type), spec) : p.type }))
  const ret = proxyTypes(m.returns.type, spec)
  const args = `[${m.params.map((p) => p.name).join(', ')}]`
  // The names let a serializer error name the argument, as the direct class's does.
  const names = JSON.stringify(m.params.map((p) => p.name)).replace(/"/g, "'")
  const tags = [...paramTags(m), ...(m.returns.doc ? [['returns', m.returns.doc] as [string, string]] : [])]
  if (m.composite) {
    const body = m.composite.trim()
    return [
      { name: m.name, parameters: params, returnType: ret, statements: [...paramChecks(m.params), ...renderComposite(body, cls, false).split('\n')], docs: docs(`${m.doc} Runs here, calling the server for each step.`, tags) },
      { name: `coro_${m.name}`, isAsync: true, parameters: [...params, { name: '{ signal }', type: 'CoroOptions', initializer: '{}' }], returnType: `Promise<${ret}>`, statements: [...paramChecks(m.params), 'checkSignal(signal)', ...renderComposite(body, cls, true).split('\n')], docs: docs(`Awaitable twin of ${m.name}.`, [...tags, SIGNAL_TAG]) },
    ]
  }
  return [
    { name: m.name, parameters: params, returnType: ret, statements: [...paramChecks(m.params), `return this[CORE].call('${m.name}', ${args}, ${names}) as ${ret}`], docs: docs(`${m.doc} Runs on the manager server; blocks this thread until it answers.`, tags) },
    {
      name: `coro_${m.name}`, isAsync: true, parameters: [...params, { name: '{ signal }', type: 'CoroOptions', initializer: '{}' }], returnType: `Promise<${ret}>`,
      statements: [...paramChecks(m.params), `return (await this[CORE].coro_call('${m.name}', ${args}, signal, ${names})) as ${ret}`],
      docs: docs(`Awaitable twin of ${m.name}: the thread never parks; an abort cancels the call on the server.`, [...tags, SIGNAL_TAG]),
    },
  ]
}

export function emitProxy(cls: ClassModel, spec: SpecModel, target: Target): string {
  const project = new Project({ useInMemoryFileSystem: true })
  const file = project.createSourceFile(`${cls.stem}.proxy.generated.ts`, '')
  const name = `${cls.name}Proxy`
  // A subclass's proxy extends its parent's proxy: only its own members are emitted.
  const parent = cls.extends ? spec.classes.find((c) => c.name === cls.extends && c.proxy) : undefined
  const props = cls.properties.filter((p) => !cls.proxy!.hide.includes(p.name) && !(parent && cls.inherited?.properties.has(p.name)))
  const methods = shown(cls).filter((m) => !(parent && cls.inherited?.methods.has(m.name)))
  const structure: ClassDeclarationStructure = {
    kind: StructureKind.Class,
    name,
    isExported: true,
    typeParameters: cls.typeParams ? [cls.typeParams] : undefined,
    docs: docs(`A proxy of a ${cls.name} held by a manager server (typeid '${cls.proxy!.typeid}'): the spawn context's primitives and AioManager's are these. It travels to processes of either context. ${cls.doc}`),
    extends: parent ? `${parent.name}Proxy${parent.typeParams ? `<${typeParamNames(parent.typeParams)}>` : ''}` : 'BaseProxy',
    properties: [
      { name: 'module', isStatic: true, isReadonly: true, hasOverrideKeyword: true, initializer: 'import.meta.url', docs: docs('The module that defines this class.', [['internal', '']]) },
      { name: 'tag', type: 'string', isStatic: true, isReadonly: true, hasOverrideKeyword: true, initializer: `'${name}'`, docs: docs('The name it travels under (see BaseProxy.tag).', [['internal', '']]) },
    ],
    methods: [
      { name: 'fromCore', isStatic: true, hasOverrideKeyword: Boolean(parent), parameters: [{ name: 'core', type: 'ProxyCore' }], returnType: name, statements: [`return new ${name}(core)`], docs: docs('Wraps a proxy core.', [['internal', '']]) },
      ...methods.flatMap((m) => proxyMethods(cls, spec, m).map((x) => ({ ...x, hasOverrideKeyword: Boolean(parent?.methods.some((pm) => pm.name === m.name)) }))),
      ...(!parent && cls.context && !cls.proxy!.hide.includes(cls.context.enter) ? contextMethods(cls) : []),
    ],
    getAccessors: [
      ...props.map((p) => ({ kind: StructureKind.GetAccessor as const, name: p.name, returnType: proxyTypes(p.type, spec), statements: [`return this[CORE].call('__get__', ['${p.name}']) as ${proxyTypes(p.type, spec)}`], docs: docs(`${p.doc} (Read from the server.)`) })),
    ],
    setAccessors: props.filter((p) => p.set).map((p) => ({ kind: StructureKind.SetAccessor as const, name: p.name, parameters: [{ name: 'value', type: proxyTypes(p.type, spec) }], statements: [`this[CORE].call('__set__', ['${p.name}', value])`] })),
  }
  file.addClass(structure)
  file.addStatements([
    `registerType('${name}', (state) => (ProxyCore.referent(state) as ${name} | undefined) ?? ${name}.fromCore(ProxyCore.rebuild(state)))`,
    `registerWrapper(ProxyCore, (core) => wrapProxy(core))`,
    `PROXY_CLASSES.set('${cls.proxy!.typeid}', ${name} as unknown as new (core: ProxyCore) => unknown)`,
    ...(target.portable ? [] : [`// What a server hosting a ${cls.name} lets its proxies call.`, `registerHostedType('${cls.proxy!.typeid}', ${hostedSpec(cls)})`]),
  ])
  const body = file.getFullText()
  const used = (n: string) => new RegExp(`(?<![\\w$.])${n}(?![\\w$])`).test(body)
  const lines = [`import { ProxyCore, PROXY_CLASSES, wrapProxy } from '${target.runtime('proxy')}'`]
  if (!parent) lines.push(`import { BaseProxy } from '${target.runtime('proxy-base')}'`)
  if (!target.portable) lines.push(`import { registerHostedType } from '${target.runtime('manager-types')}'`, `import { ${cls.name} } from './${cls.stem}.generated.js'`)
  lines.push(`import { CORE, registerType, registerWrapper } from '${target.runtime('transfer')}'`)
  if (used('CoroOptions')) lines.push(`import type { CoroOptions } from '${target.runtime('wait')}'`)
  const checks = ['checkBoolean', 'checkTimeout', 'checkInteger', 'checkNumber', 'checkString', 'checkFunction', 'checkSignal', 'deadlineOf'].filter(used)
  if (checks.length) lines.push(`import { ${checks.join(', ')} } from '${target.runtime('args')}'`)
  const guards = HELPERS.guard.filter(used)
  if (guards.length) lines.push(`import { ${guards.join(', ')} } from '${target.runtime('guard')}'`)
  if (used('Timeout')) lines.push(`import type { Timeout } from '${target.runtime('args')}'`)
  for (const [module, names] of cls.imports) {
    if (module === 'generated') continue
    lines.push(`import type { ${names.join(', ')} } from '${target.core(module)}'`)
  }
  for (const c of spec.classes) {
    if (c === parent) lines.push(`import { ${c.name}Proxy } from './${c.stem}.proxy.generated.js'`)
    else if (c.proxy && c !== cls && used(`${c.name}Proxy`)) lines.push(`import type { ${c.name}Proxy } from './${c.stem}.proxy.generated.js'`)
  }
  file.insertStatements(0, lines)
  file.formatText({ indentSize: 2, convertTabsToSpaces: true, semicolons: 'remove' as any })
  return HEADER(cls.specFile) + '\n' + file.getFullText()
}
