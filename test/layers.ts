// The house rule of runtime/ (DESIGN.md, "Runtime layers"): each folder is a layer, a file imports
// only its own layer or the ones below, nothing imports generated/, and no import circle exists.
// Checked on the sources by test/layers.test.ts, so a wrong import fails the suite, not a review.

import { readFileSync, readdirSync } from 'node:fs'
import { dirname, join, normalize, relative, sep } from 'node:path'

/** Bottom to top; a file may import its own layer and those before it. */
export const LAYERS = ['core', 'sync', 'ipc', 'process', 'pool', 'manager', 'api'] as const

export interface Edge {
  readonly from: string
  readonly to: string
  /** A module loaded at run time by URL (a worker's script), not imported: it cannot form an import circle. */
  readonly byUrl: boolean
}

// `import … from '…'`, `export … from '…'`, `import '…'`, `import('…')`, `new URL('….js', import.meta.url)`.
const STATIC = /^\s*(?:import|export)\s[^;]*?\bfrom\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]/gm
const DYNAMIC = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g
const URL_REF = /\bnew URL\(\s*['"]([^'"]+\.js)['"]\s*,\s*import\.meta\.url\s*\)/g

/** The relative imports of each file, as paths relative to the runtime folder (`core/wait.ts`). */
export function edgesOf(files: ReadonlyMap<string, string>): Edge[] {
  const edges: Edge[] = []
  for (const [from, text] of files) {
    const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '')
    for (const [re, byUrl] of [[STATIC, false], [DYNAMIC, false], [URL_REF, true]] as const) {
      for (const m of code.matchAll(re)) {
        const spec = m[1] ?? m[2]
        if (!spec.startsWith('.')) continue // node: builtins and packages
        const to = normalize(join(dirname(from), spec)).split(sep).join('/').replace(/\.js$/, '.ts')
        edges.push({ from, to, byUrl })
      }
    }
  }
  return edges
}

function layerOf(path: string): number {
  return (LAYERS as readonly string[]).indexOf(path.split('/')[0])
}

/** Every broken rule, one line each; [] when the house is in order. */
export function checkLayers(files: ReadonlyMap<string, string>): string[] {
  const problems: string[] = []
  const edges = edgesOf(files)
  for (const path of files.keys()) {
    if (layerOf(path) < 0) problems.push(`${path} is in no layer: put it in one of ${LAYERS.join(', ')}`)
  }
  for (const e of edges) {
    if (e.to.startsWith('../')) problems.push(`${e.from} imports ${e.to} outside runtime/ (the runtime never imports generated/: load a class from the module its transfer record names)`)
    else if (!files.has(e.to)) problems.push(`${e.from} imports ${e.to}, which does not exist`)
    else if (layerOf(e.to) > layerOf(e.from)) problems.push(`${e.from} imports ${e.to} from a higher layer (${LAYERS[layerOf(e.from)]} < ${LAYERS[layerOf(e.to)]})`)
  }
  // Circles: a depth-first search over the import edges (type-only imports count too).
  const next = new Map<string, string[]>()
  for (const e of edges) if (!e.byUrl && files.has(e.to)) next.set(e.from, [...(next.get(e.from) ?? []), e.to])
  const state = new Map<string, 'open' | 'done'>()
  const stack: string[] = []
  const seen = new Set<string>()
  const visit = (f: string): void => {
    state.set(f, 'open')
    stack.push(f)
    for (const g of next.get(f) ?? []) {
      if (state.get(g) === 'open') {
        const circle = [...stack.slice(stack.indexOf(g)), g].join(' → ')
        const key = [...stack.slice(stack.indexOf(g))].sort().join()
        if (!seen.has(key)) problems.push(`import circle: ${circle}`)
        seen.add(key)
      } else if (!state.has(g)) visit(g)
    }
    stack.pop()
    state.set(f, 'done')
  }
  for (const f of [...files.keys()].sort()) if (!state.has(f)) visit(f)
  return problems
}

/** The runtime's sources under `dir`, by path relative to it. */
export function readRuntime(dir: string): Map<string, string> {
  const files = new Map<string, string>()
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith('.ts')) {
      const full = join(e.parentPath, e.name)
      files.set(relative(dir, full).split(sep).join('/'), readFileSync(full, 'utf8'))
    }
  }
  return files
}
