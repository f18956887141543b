// Runs the whole suite with ava and ends with one line `N passed, N failed[, N skipped]`.
// ava's TAP reporter gives exact counts; its lines are passed through as they come.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const ava = fileURLToPath(new URL('../node_modules/ava/entrypoints/cli.mjs', import.meta.url))
const child = spawn(process.execPath, [ava, '--tap', ...process.argv.slice(2)], { stdio: ['ignore', 'pipe', 'inherit'] })
const counts = { pass: 0, fail: 0, skip: 0, todo: 0 }
let rest = ''
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk)
  rest += chunk
  const lines = rest.split('\n')
  rest = lines.pop()
  for (const line of lines) {
    const m = /^# (pass|fail|skip|todo) +(\d+)/.exec(line)
    if (m) counts[m[1]] = Number(m[2])
  }
})
child.on('close', (code) => {
  const m = /^# (pass|fail|skip|todo) +(\d+)/.exec(rest)
  if (m) counts[m[1]] = Number(m[2])
  const skipped = counts.skip + counts.todo
  process.stdout.write(`\n${counts.pass} passed, ${counts.fail} failed${skipped ? `, ${skipped} skipped` : ''}\n`)
  process.exitCode = code === 0 && counts.fail === 0 ? 0 : 1
})
