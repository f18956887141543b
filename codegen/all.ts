// `npm run generate [-- --check]`: the library's own spec, then the custom-primitive example's,
// which is generated the way a user's project is (imports from the 'aioprocessing' package).
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const cli = fileURLToPath(new URL('./cli.js', import.meta.url))
const extra = process.argv.slice(2)
const runs = [
  ['--self', '--docs', 'docs/api.md'],
  ['--spec', 'examples/custom-primitive/spec', '--out', 'examples/custom-primitive/generated'],
]
for (const args of runs) {
  const r = spawnSync(process.execPath, [cli, ...args, ...extra], { stdio: 'inherit' })
  if (r.status !== 0) process.exit(r.status ?? 1)
}
