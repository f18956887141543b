// Every example in the README and the API reference (docs/api.md) is a whole program, and this
// file runs each one: TypeScript blocks under tsx and, compiled by tsc, as plain .mjs on this Node
// (after one type check of them all), JavaScript blocks as plain .mjs, a Python block together with
// its Node block (the two ends of one connection or manager: a Python server before its Node client, a
// Python client after its Node server). A block followed by "Prints:" and a text block must print exactly
// that. The examples import 'aioprocessing', which resolves to this repository's build.
import test from 'ava'
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { LONG } from './helpers.js'

const root = fileURLToPath(new URL('../../', import.meta.url))

interface Block {
  readonly doc: string
  /** 1-based line of the opening fence. */
  readonly line: number
  readonly lang: 'ts' | 'js' | 'python'
  readonly code: string
  /** What it must print, when the document says. */
  readonly prints?: string
}

/** The fenced blocks of a Markdown file that are programs (ts, js, python), with what each prints. */
export function programs(doc: string, text: string): Block[] {
  const lines = text.split('\n')
  const blocks: Block[] = []
  for (let i = 0; i < lines.length; i++) {
    // A block whose info string has more words (```ts signature) is not a program.
    const open = /^```(\S*)(\s.*)?$/.exec(lines[i])
    if (!open) continue
    const end = lines.indexOf('```', i + 1)
    if (end < 0) throw new Error(`${doc}:${i + 1}: a code block that does not end`)
    const lang = open[2]?.trim() ? 'other' : open[1]
    if (lang === 'ts' || lang === 'js' || lang === 'python') {
      // "Prints:" then a text block, possibly after a blank line.
      let j = end + 1
      while (j < lines.length && lines[j].trim() === '') j++
      let prints: string | undefined
      if (lines[j]?.trim() === 'Prints:') {
        let k = j + 1
        while (k < lines.length && lines[k].trim() === '') k++
        if (lines[k] !== '```text') throw new Error(`${doc}:${k + 1}: "Prints:" must be followed by a \`\`\`text block`)
        const close = lines.indexOf('```', k + 1)
        prints = lines.slice(k + 1, close).join('\n') + '\n'
      }
      blocks.push({ doc, line: i + 1, lang, code: lines.slice(i + 1, end).join('\n') + '\n', prints })
    }
    i = end
  }
  return blocks
}

const docs = ['README.md', 'docs/api.md', 'redis/README.md'].flatMap((doc) => programs(doc, readFileSync(join(root, doc), 'utf8')))

// A folder outside the repository where `import 'aioprocessing'` finds this build, as in a user's project.
const dir = mkdtempSync(join(tmpdir(), 'aio-docs-'))
test.after.always(() => rmSync(dir, { recursive: true, force: true }))
mkdirSync(join(dir, 'node_modules'))
symlinkSync(root, join(dir, 'node_modules', 'aioprocessing'), 'dir')
symlinkSync(join(root, 'redis'), join(dir, 'node_modules', 'aioprocessing-redis'), 'dir')
writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n')

const fileOf = (b: Block) => join(dir, `${b.doc.replace(/\W/g, '_')}_${b.line}.${b.lang === 'ts' ? 'ts' : b.lang === 'js' ? 'mjs' : 'py'}`)
for (const b of docs) writeFileSync(fileOf(b), b.code)

test('the README and the API reference have examples, and the reference has one for every class', (t) => {
  t.true(docs.filter((b) => b.doc === 'README.md').length >= 5)
  const api = readFileSync(join(root, 'docs/api.md'), 'utf8')
  const sections = api.split(/^## /m).slice(1)
  const classes = sections.filter((s) => /^Aio\w+\n/.test(s))
  t.true(classes.length >= 19)
  for (const s of classes) t.true(/\nExample:\n\n```ts\n/.test(s), `the section of ${s.split('\n')[0]} has no example`)
})

test.serial('the TypeScript examples type-check against the published types', (t) => {
  const files = docs.filter((b) => b.lang === 'ts').map((b) => fileOf(b))
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      strict: true, noEmit: true, target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', skipLibCheck: true,
      typeRoots: [join(root, 'node_modules/@types')], types: ['node'], lib: ['es2022', 'esnext.disposable'],
    },
    files,
  }))
  const tsc = join(root, 'node_modules/typescript/bin/tsc')
  const r = spawnSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8', timeout: 5 * LONG })
  // Name the document's line, not the temporary file's.
  const where = (out: string) => docs.reduce((text, b) => text.split(fileOf(b)).join(`${b.doc}:${b.line}+`), out)
  t.is(r.status, 0, where(r.stdout + r.stderr))
})

/**
 * Runs one program to its end (killed after LONG ms), with a temporary folder of its own (TMPDIR):
 * `left` is what it left there. (The AioAutoProxy example left a folder in /tmp on every run.)
 */
function run(command: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string; left: string[] }> {
  const tmp = mkdtempSync(join(dir, 'tmp-'))
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: dir, timeout: LONG, env: { ...process.env, TMPDIR: tmp } })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('close', (status) => {
      // tsx keeps its compile cache there (tsx-<uid>), as it does in /tmp: tsx's, not the program's.
      const left = readdirSync(tmp).filter((f) => !/^tsx-\d+$/.test(f))
      rmSync(tmp, { recursive: true, force: true })
      resolve({ status, stdout, stderr, left })
    })
  })
}

const tsx = join(root, 'node_modules/tsx/dist/cli.mjs')
let runId = 0
/** A TypeScript example as tsc compiles it for Node 20 (ES2022: `using` becomes helper calls), run as plain .mjs. */
function compiled(b: Block, code: string): string {
  const file = fileOf(b).replace(/\.ts$/, `.compiled-${runId++}.mjs`)
  writeFileSync(file, ts.transpileModule(code, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } }).outputText)
  return file
}
const node = (b: Block, how: 'tsx' | 'mjs', code: string, file = fileOf(b)) => (b.lang === 'js' ? run(process.execPath, [file]) : how === 'tsx' ? run(process.execPath, [tsx, file]) : run(process.execPath, [compiled(b, code)]))

/** A TCP port nothing listens on now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
    s.on('error', reject)
  })
}

/** Until something listens on 127.0.0.1:port (read from /proc, so no probe connection is made). */
async function listening(port: number, deadline: number): Promise<boolean> {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')} `
  while (Date.now() < deadline) {
    if (readFileSync('/proc/net/tcp', 'utf8').split('\n').some((l) => l.includes(hex) && / 0A /.test(l))) return true
    await new Promise((r) => setTimeout(r, 20))
  }
  return false
}

// At most two examples at once: each starts threads or processes of its own.
let running = 0
const queue: Array<() => void> = []
async function slot<T>(f: () => Promise<T>): Promise<T> {
  if (running >= 2) await new Promise<void>((r) => queue.push(r))
  running++
  try {
    return await f()
  } finally {
    running--
    queue.shift()?.()
  }
}

const runs = docs.flatMap((b, i) => (b.lang === 'ts' ? [[b, i, 'tsx'], [b, i, 'mjs']] : b.lang === 'js' ? [[b, i, 'mjs']] : [])) as [Block, number, 'tsx' | 'mjs'][]
/** A Python block that serves (a Listener, a manager's server) runs before the Node block after it; a client, after the Node block before it. */
const serves = (p: Block): boolean => /Listener\(|get_server\(|serve_forever/.test(p.code)

runs.forEach(([b, i, how]) => {
  const before = docs[i - 1]?.lang === 'python' && docs[i - 1].doc === b.doc && serves(docs[i - 1]) ? docs[i - 1] : undefined
  const after = docs[i + 1]?.lang === 'python' && docs[i + 1].doc === b.doc && !serves(docs[i + 1]) ? docs[i + 1] : undefined
  const peer = before ?? after
  const as = b.lang === 'js' ? 'as plain .mjs' : how === 'tsx' ? 'under tsx' : 'compiled by tsc, as plain .mjs'
  test(`${b.doc}:${b.line} runs ${as}${peer ? ` with the Python ${before ? 'server' : 'client'} of line ${peer.line}` : ''}${b.prints ? ' and prints what the document says' : ''}`, (t) =>
    slot(async () => {
      let python: ReturnType<typeof run> | undefined
      let code = b.code
      let file = fileOf(b)
      let port = 0
      let pyFile = ''
      if (peer) {
        // The two ends meet at the port the document names; a free one is put in its place.
        const named = /\b(\d{4,5})\b/.exec(peer.code)![1]
        port = await freePort()
        // Files of this run's own: the same pair runs again (tsx, .mjs), maybe at the same time.
        pyFile = fileOf(peer).replace(/\.py$/, `.${how}.py`)
        file = fileOf(b).replace(/(\.\w+)$/, `.${how}$1`)
        writeFileSync(pyFile, peer.code.split(named).join(String(port)))
        code = b.code.split(named).join(String(port))
        writeFileSync(file, code)
      }
      // An example of the Redis context gets a private redis-server, at the port the document names.
      let redis: ReturnType<typeof spawn> | undefined
      if (code.includes("from 'aioprocessing-redis'")) {
        const port = await freePort()
        redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
        t.teardown(() => redis!.kill('SIGKILL'))
        t.true(await listening(port, Date.now() + LONG), 'redis-server never listened')
        code = code.split('6379').join(String(port))
        file = fileOf(b).replace(/(\.\w+)$/, `.${how}-redis$1`)
        writeFileSync(file, code)
      }
      if (before) {
        python = run('python3', [pyFile])
        t.true(await listening(port, Date.now() + LONG), 'the Python side never listened')
      }
      const started = node(b, how, code, file)
      if (after) {
        // The Python client starts once the Node side listens (or the Node side has ended: its status says why).
        const up = await Promise.race([listening(port, Date.now() + LONG), started.then(() => false)])
        t.true(up, 'the Node side never listened')
        if (up) python = run('python3', [pyFile])
      }
      const r = await started
      t.is(r.status, 0, `${r.stdout}\n${r.stderr}`)
      t.is(r.stderr, '')
      if (b.prints !== undefined) t.is(r.stdout, b.prints)
      t.deepEqual(r.left, [], 'what the program left in its temporary folder')
      if (python) {
        const p = await python
        t.is(p.status, 0, p.stderr)
        t.deepEqual(p.left, [], 'what the Python program left in its temporary folder')
      }
    }),
  )
})
