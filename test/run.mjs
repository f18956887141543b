// Runs the whole suite with ava and ends with one line `N passed, N failed[, N skipped]`.
// ava's TAP reporter gives exact counts; its lines are passed through as they come.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const ava = fileURLToPath(new URL('../node_modules/ava/entrypoints/cli.mjs', import.meta.url))
const child = spawn(process.execPath, [ava, '--tap', ...process.argv.slice(2)], { stdio: ['ignore', 'pipe', 'inherit'] })
const counts = { pass: 0, fail: 0, skip: 0, todo: 0 }
// Counted from the test lines too, in case ava dies before its summary.
const seen = { pass: 0, fail: 0, skip: 0 }
let summary = false
let rest = ''
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk)
  rest += chunk
  const lines = rest.split('\n')
  rest = lines.pop()
  for (const line of lines) {
    const m = /^# (pass|fail|skip|todo) +(\d+)/.exec(line)
    if (m) {
      counts[m[1]] = Number(m[2])
      summary = true
    }
    if (/^ok \d+ .*# SKIP/.test(line)) seen.skip++
    else if (/^ok \d+/.test(line)) seen.pass++
    else if (/^not ok \d+/.test(line)) seen.fail++
  }
})
child.on('close', (code) => {
  const m = /^# (pass|fail|skip|todo) +(\d+)/.exec(rest)
  if (m) counts[m[1]] = Number(m[2])
  if (!summary) {
    // ava ended without its summary (it crashed): report what was seen, and one failure for the crash.
    Object.assign(counts, { pass: seen.pass, fail: seen.fail + 1, skip: seen.skip })
  }
  const skipped = counts.skip + counts.todo
  process.stdout.write(`\n${counts.pass} passed, ${counts.fail} failed${skipped ? `, ${skipped} skipped` : ''}\n`)
  process.exitCode = code === 0 && counts.fail === 0 ? 0 : 1
})
