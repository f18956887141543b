import { transformSync } from 'esbuild'
import { readFileSync, writeFileSync, readdirSync } from 'node:fs'
const [src, dst, mode] = process.argv.slice(2)
for (const f of readdirSync(src)) if (f.endsWith('.js')) {
  const code = readFileSync(`${src}/${f}`, 'utf8')
  const opts = mode === 'ws' ? { minifyWhitespace: true } : mode === 'all' ? { minify: true, keepNames: true } : { minifyWhitespace: true, minifySyntax: true }
  writeFileSync(`${dst}/${f}`, transformSync(code, { ...opts, format: 'esm', loader: 'js', target: 'node20' }).code)
}
