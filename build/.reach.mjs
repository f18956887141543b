import { build } from 'esbuild'
const root = '/work/main'
const { metafile } = await build({ absWorkingDir: root, bundle: true, format: 'esm', platform: 'node', packages: 'external', write: false, metafile: true, entryPoints: process.argv.slice(2), outdir: '/tmp/x', splitting: true, tsconfig: 'tsconfig.json', logLevel: 'error' })
function reached(from, seen = new Map(), via = null) {
  if (seen.has(from)) return seen
  seen.set(from, via)
  for (const i of metafile.inputs[from]?.imports ?? []) if (i.kind === 'import-statement' && !i.external) reached(i.path, seen, from)
  return seen
}
const all = new Map(); for (const e of process.argv.slice(2)) for (const [k, v] of reached(e)) if (!all.has(k)) all.set(k, v)
let tot = 0
const rows = [...all].map(([m, via]) => { const b = metafile.inputs[m].bytes; tot += b; return [b, m, via] }).sort((a, b) => b[0] - a[0])
for (const [b, m, via] of rows) console.log(String(b).padStart(7), m.padEnd(45), '<-', via)
console.log('total', tot)
