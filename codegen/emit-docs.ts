// Emits the API reference (docs/api.md for the library) from the spec: every class, method,
// parameter with its default and unit, return value, what a timeout does, errors, variants and an
// example; hand-written sections for what is not in the spec come from <spec>/docs/*.md.
import Handlebars from 'handlebars'
import { readFileSync } from 'node:fs'
import type { MethodModel, ParamModel, SpecModel } from './model.js'

const hbs = Handlebars.create()
const template = hbs.compile(readFileSync(new URL('../templates/api.hbs', import.meta.url), 'utf8'), { strict: true, noEscape: true })

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ')

function params(ps: readonly ParamModel[]) {
  return ps.map((p) => ({
    name: p.name,
    type: cell(p.type === 'timeout' ? 'number | null (ms)' : p.tsType),
    default: p.default !== undefined ? `\`${cell(p.default)}\`` : p.optional ? 'optional' : 'required',
    doc: cell(p.doc),
  }))
}

function signature(ps: readonly ParamModel[]): string {
  return ps.map((p) => (p.default !== undefined ? `${p.name} = ${p.default}` : p.optional ? `${p.name}?` : p.name)).join(', ')
}

function variants(m: MethodModel): string {
  // A *Nowait method parks only on the queue's internal lock, never for an item or a slot.
  if ((m.blocking || m.composite) && /Nowait$/.test(m.name)) return `\`${m.name}(…)\` (does not wait for an item or a slot; it may wait a moment for the queue's internal lock) and awaitable \`coro_${m.name}(…, { signal })\``
  if (m.blocking || m.composite) return `**blocking** \`${m.name}(…)\` and awaitable \`coro_${m.name}(…, { signal })\``
  return m.coro ? `\`${m.name}(…)\` (never waits) and \`coro_${m.name}(…, { signal })\` for ported aioprocessing code` : `\`${m.name}(…)\` (never waits)`
}

function onTimeout(m: MethodModel): string {
  const b = m.blocking
  if (!b || !b.timeout) return ''
  if ('return' in b.onTimeout) return `returns \`${b.onTimeout.return}\`.`
  if ('throw' in b.onTimeout) return `throws \`${b.onTimeout.throw}\`.`
  return 'see the errors below.'
}

/** Hand-written parts: `intro` goes before the classes, `more` after them (its `## ` sections join the contents). */
export interface DocParts {
  readonly intro?: string
  readonly more?: string
}

const heading = (h: string) => ({ title: h, anchor: h.toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-') })

export function emitDocs(spec: SpecModel, parts: DocParts = {}): string {
  const classes = [...spec.classes].sort((a, b) => a.name.localeCompare(b.name))
  const sections = (text: string | undefined) => [...(text ?? '').matchAll(/^## (.+)$/gm)].map((m) => heading(m[1]))
  return template({
    intro: parts.intro?.trim() ?? '',
    introSections: sections(parts.intro),
    more: parts.more?.trim() ?? '',
    moreSections: sections(parts.more),
    classes: classes.map((c) => ({
      name: c.name,
      anchor: c.name.toLowerCase(),
      typeParams: c.typeParams ? `<${c.typeParams}>` : '',
      doc: c.doc,
      ctorDoc: c.constructorDoc,
      example: c.example?.trimEnd() ?? '',
      prints: c.prints?.trimEnd() ?? '',
      signature: signature(c.constructorParams),
      params: params(c.constructorParams),
      context: c.context ? `\`${c.context.enter}\` on entry, \`${c.context.exit}\` on exit` : '',
      proxy: c.proxy
        ? `\`${c.name}Proxy\`, from ${proxySources(spec, c)} (typeid \`${c.proxy.typeid}\`): the same methods and properties as calls to the server, every one with a \`coro_\` twin${c.proxy.hide.length ? `; not offered: ${c.proxy.hide.map((h) => `\`${h}\``).join(', ')}` : ''}.`
        : '',
      extras: [
        c.iterator ? `Iterable: \`for (const x of it)\` calls \`${c.iterator}()\`; \`for await (const x of it)\` awaits \`coro_${c.iterator}()\`.` : '',
        c.dispose ? `\`using\` runs ${c.dispose.map((d) => `\`${d}()\``).join(' then ')} on leaving the block; \`await using\` awaits the \`coro_\` twins.` : '',
      ].filter(Boolean),
      methods: c.methods.map((m) => ({
        name: m.name,
        signature: signature(m.params),
        returns: m.returns.type === 'void' ? '' : m.returns.type,
        doc: m.doc,
        variants: variants(m),
        params: params(m.params),
        returnsDoc: m.returns.doc,
        onTimeout: onTimeout(m),
        throws: m.throws,
      })),
      properties: c.properties.map((p) => ({ name: p.name, type: cell(p.type), doc: cell(p.doc), settable: Boolean(p.set) })),
    })),
  })
}

/**
 * Where a class's proxies come from, naming only what exists: the spawn context's factory (a
 * connection comes in pairs, from its AioPipe) and the manager's method of that typeid, if any.
 */
function proxySources(spec: SpecModel, c: SpecModel['classes'][number]): string {
  const typeid = c.proxy!.typeid
  const sources = [typeid === 'Connection' ? "`getContext('spawn').AioPipe(…)`" : `\`getContext('spawn').${c.name}(…)\``]
  const manager = spec.classes.find((k) => k.name === 'AioManager')
  if (manager?.methods.some((m) => m.name === typeid)) sources.push(`\`manager.${typeid}(…)\``)
  else if (typeid === 'Connection' && manager?.methods.some((m) => m.name === 'Pipe')) sources.push('`manager.Pipe(…)`')
  return sources.join(' or ')
}
