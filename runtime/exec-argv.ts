// Node flags for the workers this library starts: the parent's, minus those that would make a
// worker run the parent's inline script instead of its own file (`node -e`, `-p`, `--input-type`).
const WITH_VALUE = new Set(['-e', '--eval', '-p', '--print', '--input-type'])
const ALONE = /^(?:-e|--eval|-p|--print|--input-type)=|^-(?:pe|ep)$/

export function workerExecArgv(argv: readonly string[] = process.execArgv): string[] {
  const out: string[] = []
  for (let i = 0; i < argv.length; i++) {
    if (WITH_VALUE.has(argv[i])) i++
    else if (!ALONE.test(argv[i])) out.push(argv[i])
  }
  return out
}
