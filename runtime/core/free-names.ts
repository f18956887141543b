// The names a function's source uses without declaring them: variables of the scope it was written
// in, which do not travel with a function sent to another thread as source (core/source.ts).
//
// No parser (the core has no dependencies): a tokenizer that tells a regular expression from a
// division and an object literal from a block by the tokens before them (the "reader" of sweet.js,
// Disney et al., *Sweet.js: Hygienic Macros for JavaScript*), then one pass that finds what the
// function declares and one that finds the names it uses. It errs one way only: a name declared
// anywhere in the function counts as declared everywhere in it, class bodies are skipped, and a
// construct it does not follow declares every name in it. A name it misses still fails with an
// explanation where the function runs; a name it reports wrongly would refuse a valid function.

type Kind = 'name' | 'punct' | 'literal' | 'private'

interface Token {
  kind: Kind
  value: string
  /** A line break before it (where automatic semicolon insertion may end a statement). */
  nl: boolean
  /** Index of the innermost enclosing `(`, `[`, `{` or template `${`; -1 at the top. */
  parent: number
  /** For a bracket, the index of the one that closes or opens it. */
  match: number
  brace?: 'block' | 'object' | 'class'
  colon?: 'label' | 'case' | 'ternary' | 'key'
}

// Words that are never a variable's name (strict mode's reserved words included: a target may be
// strict), and words that are, in some places, a keyword: those are never reported.
const RESERVED = new Set(
  'break case catch class const continue debugger default delete do else enum export extends false finally for function if import in instanceof new null return super switch this throw true try typeof var void while with implements interface package private protected public'.split(' '),
)
const CONTEXTUAL = new Set('arguments async await yield let static of get set as from accessor using'.split(' '))
// Keywords after which an expression starts: a `/` there opens a regular expression, a `{` an object
// (after var, let and const, an object pattern).
const BEFORE_EXPRESSION = new Set('return typeof instanceof in of new delete void throw case yield await extends var let const'.split(' '))
// A declaration's initializer ends where a line starts with one of these (no semicolons needed).
const STATEMENT_START = new Set('break case class const continue debugger default do else for function if let return switch throw try var while with'.split(' '))
const CONTROL = new Set(['if', 'while', 'for', 'with', 'switch'])
const MODIFIERS = new Set(['get', 'set', 'async', 'static'])

const ESCAPE = String.raw`\\u(?:[\da-fA-F]{4}|\{[\da-fA-F]+\})`
const NAME = new RegExp(String.raw`(?:[\p{ID_Start}$_]|${ESCAPE})(?:[\p{ID_Continue}$\u200C\u200D]|${ESCAPE})*`, 'uy')
const SPACE = /(?:\s+|\/\/.*|\/\*[\s\S]*?(?:\*\/|$))*/y
const LINE_BREAK = /[\n\r\u2028\u2029]/
const NUMBER = /(?:0[xXoObB][\da-fA-F_]+|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d[\d_]*)?)n?/y
const STRING = /'(?:[^'\\\n\r]|\\(?:\r\n|[\s\S]))*'?|"(?:[^"\\\n\r]|\\(?:\r\n|[\s\S]))*"?/y
const REGEX = /\/(?:[^\\/[\n\r\u2028\u2029]|\\.|\[(?:[^\]\\\n\r\u2028\u2029]|\\.)*\])+\/[\p{ID_Continue}$]*/uy
// A template's text up to its end or its next `${`.
const TEMPLATE_TEXT = /(?:[^`\\$]|\\[\s\S]|\$(?!\{))*(`|\$\{)?/y
const PUNCT = />>>=|\.\.\.|===|!==|\*\*=|<<=|>>=|>>>|&&=|\|\|=|\?\?=|=>|==|!=|<=|>=|&&|\|\||\?\?|\?\.(?!\d)|\+\+|--|\+=|-=|\*=|\/=|%=|&=|\|=|\^=|\*\*|<<|>>|[{}()[\];,<>+\-*/%&|^!~?:=.@#]/y

/** The names `source` (a function's, as `Function.prototype.toString` gives it) uses and does not declare. */
export function freeNames(source: string): string[] {
  let tokens = tokenize(`(${source}\n)`)
  if (isMethod(tokens)) tokens = tokenize(`({${source}\n})`)
  const bindings = findBindings(tokens)
  const declared = new Set([...bindings].map((i) => tokens[i].value))
  const free = new Set<string>()
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]
    if (t.kind !== 'name' || bindings.has(i) || !isReference(tokens, i)) continue
    // with (o) { x } may read o.x, and a direct eval may declare anything: nothing can be said.
    if (t.value === 'with' || (t.value === 'eval' && tokens[i + 1]?.value === '(')) return []
    if (RESERVED.has(t.value) || CONTEXTUAL.has(t.value) || declared.has(t.value) || isTypeofGuarded(tokens, i)) continue
    free.add(t.value)
  }
  return [...free]
}

/** Whether `source` uses `this` as code: not in a string, a comment or a property name (`o.this`). */
export function usesThis(source: string): boolean {
  const tokens = tokenize(`(${source}\n)`)
  return tokens.some((t, i) => t.kind === 'name' && t.value === 'this' && !afterDot(tokens, i))
}

/** Whether `source` uses `import.meta` (which a function compiled from its source text has not: it is no module). */
export function usesImportMeta(source: string): boolean {
  const tokens = tokenize(`(${source}\n)`)
  return tokens.some((t, i) => t.kind === 'name' && t.value === 'import' && !afterDot(tokens, i) && tokens[i + 1]?.value === '.' && tokens[i + 2]?.value === 'meta')
}

// --- tokens ------------------------------------------------------------------------------------

interface Frame {
  index: number
  kind: 'block' | 'object' | 'class' | 'paren' | 'template'
  ternaries: number
  pendingCase: boolean
  pendingClass: boolean
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = []
  const stack: Frame[] = [{ index: -1, kind: 'block', ternaries: 0, pendingCase: false, pendingClass: false }]
  const top = (): Frame => stack[stack.length - 1]
  let pos = 0
  let nl = false
  const sticky = (re: RegExp, at = pos): string | undefined => {
    re.lastIndex = at
    return re.exec(text)?.[0] || undefined
  }
  const push = (kind: Kind, value: string, length = value.length): Token => {
    const t: Token = { kind, value, nl, parent: top().index, match: -1 }
    tokens.push(t)
    pos += length
    nl = false
    return t
  }
  const open = (kind: Frame['kind']): void => {
    stack.push({ index: tokens.length - 1, kind, ternaries: 0, pendingCase: false, pendingClass: false })
  }
  const close = (t: Token): void => {
    if (stack.length === 1) return
    const frame = stack.pop()!
    t.match = frame.index
    t.parent = top().index
    tokens[frame.index].match = tokens.length - 1
  }
  // A template's text from `pos` (after its opening backquote, or the `}` ending a substitution).
  const templateText = (start: string): void => {
    TEMPLATE_TEXT.lastIndex = pos + start.length
    const m = TEMPLATE_TEXT.exec(text)!
    const end = m[1] === '${' ? '${' : '`'
    const length = start.length + m[0].length
    if (start === '`' && end === '`') push('literal', '`', length)
    else if (start === '`') {
      push('punct', '`${', length)
      open('template')
    }
    else if (end === '${') push('punct', '}${', length)
    else close(push('punct', '}`', length))
  }

  while (pos < text.length) {
    const space = sticky(SPACE)
    if (space) {
      if (LINE_BREAK.test(space)) nl = true
      pos += space.length
      continue
    }
    const c = text[pos]
    const name = sticky(NAME)
    const privateName = c === '#' ? sticky(NAME, pos + 1) : undefined
    if (name) {
      const t = push('name', name.includes('\\') ? decodeEscapes(name) : name, name.length)
      if (!afterDot(tokens, tokens.length - 1)) {
        if (t.value === 'case') top().pendingCase = true
        else if (t.value === 'class' && /^\s*(?:[\p{ID_Start}$_\\{]|\/[/*])/u.test(text.slice(pos, pos + 64))) top().pendingClass = true
      }
    } else if (privateName) {
      push('private', `#${privateName}`)
    } else if (/[\d.]/.test(c) && (c !== '.' || /\d/.test(text[pos + 1] ?? ''))) {
      push('literal', sticky(NUMBER) ?? c)
    } else if (c === '"' || c === "'") {
      push('literal', sticky(STRING)!)
    } else if (c === '`') {
      templateText('`')
    } else if (c === '/' && startsExpression(tokens) && sticky(REGEX)) {
      push('literal', sticky(REGEX)!)
    } else if (c === '}' && top().kind === 'template') {
      templateText('}')
    } else {
      const value = sticky(PUNCT) ?? c
      const frame = top()
      const t = push('punct', value)
      if (value === '{') {
        // `class extends {}.constructor { … }`: a brace right after `extends` is an object literal
        // of the heritage, and the class body is still to come.
        const heritage = frame.pendingClass && tokens[tokens.length - 2]?.value === 'extends'
        t.brace = frame.pendingClass && !heritage ? 'class' : braceAfter(tokens, tokens.length - 2)
        if (!heritage) frame.pendingClass = false
        open(t.brace)
      } else if (value === '(' || value === '[') {
        open('paren')
      } else if (value === ')' || value === ']' || value === '}') {
        close(t)
      } else if (value === '?') {
        frame.ternaries++
      } else if (value === ':') {
        t.colon = colonRole(frame)
      }
    }
  }
  return tokens
}

function colonRole(frame: Frame): NonNullable<Token['colon']> {
  if (frame.ternaries > 0) {
    frame.ternaries--
    return 'ternary'
  }
  if (frame.kind === 'object') return 'key'
  if (frame.pendingCase) {
    frame.pendingCase = false
    return 'case'
  }
  return frame.kind === 'block' ? 'label' : 'ternary'
}

function decodeEscapes(name: string): string {
  return name.replace(/\\u\{([\da-fA-F]+)\}|\\u([\da-fA-F]{4})/g, (_, long: string | undefined, short: string | undefined) => String.fromCodePoint(parseInt(long ?? short!, 16)))
}

function afterDot(tokens: Token[], i: number): boolean {
  const p = tokens[i - 1]
  return p !== undefined && p.kind === 'punct' && (p.value === '.' || p.value === '?.')
}

/** Whether a `/` after the last token opens a regular expression (else it divides). */
function startsExpression(tokens: Token[]): boolean {
  const i = tokens.length - 1
  const p = tokens[i]
  if (p === undefined) return true
  switch (p.kind) {
    case 'literal':
    case 'private':
      return false
    case 'name':
      return (BEFORE_EXPRESSION.has(p.value) || p.value === 'do' || p.value === 'else') && !afterDot(tokens, i)
  }
  switch (p.value) {
    case ')':
      return isControlParen(tokens, p.match)
    case '}':
      return tokens[p.match]?.brace !== 'object'
    case ']':
    case '}`':
    case '++':
    case '--':
      return false
  }
  return true
}

/** Whether a `{` after token `i` opens a block (or a function body) rather than an object literal. */
function braceAfter(tokens: Token[], i: number): 'block' | 'object' {
  const p = tokens[i]
  if (p === undefined) return 'block'
  if (p.kind === 'name') return BEFORE_EXPRESSION.has(p.value) && !afterDot(tokens, i) ? 'object' : 'block'
  if (p.kind !== 'punct') return 'block'
  switch (p.value) {
    case ')':
    case ']':
    case '}':
    case ';':
    case '{':
    case '=>':
    case '}`':
      return 'block'
    case ':':
      return p.colon === 'label' || p.colon === 'case' ? 'block' : 'object'
  }
  return 'object'
}

/**
 * Whether the `(` at `i` holds the head of if/while/for/with/switch, not parameters or arguments
 * (of a method named so: `with(fields) {}`).
 */
function isControlParen(tokens: Token[], i: number): boolean {
  const p = tokens[i - 1]
  if (p?.kind !== 'name' || memberName(tokens, i - 1) !== undefined) return false
  return CONTROL.has(p.value) || (p.value === 'await' && tokens[i - 2]?.value === 'for')
}

/** Whether the source is method shorthand (`m(x) {}`, `get x() {}`, `async *g() {}`), wrapped as `(…)`. */
function isMethod(tokens: Token[]): boolean {
  const [, a, b, c] = tokens
  const arrowParams = (t: Token | undefined): boolean => t?.value === '(' && tokens[t.match + 1]?.value === '=>'
  if (a === undefined || a.value === '(' || (a.kind === 'name' && (a.value === 'function' || a.value === 'class'))) return false
  if (a.kind === 'name' && b?.value === '=>') return false
  if (a.value === 'async' && (b?.value === 'function' || (b?.kind === 'name' && c?.value === '=>') || arrowParams(b))) return false
  return true
}

// --- declarations ------------------------------------------------------------------------------

/** Indices of the tokens that declare a name: parameters, variables, functions, classes, catch. */
function findBindings(tokens: Token[]): Set<number> {
  const bindings = new Set<number>()
  const bind = (i: number): void => {
    if (tokens[i].kind === 'name' && !RESERVED.has(tokens[i].value)) bindings.add(i)
  }
  // A construct not followed: every name in it counts as declared.
  const bindAll = (from: number, to: number): void => {
    for (let i = from; i < to; i++) if (!afterDot(tokens, i)) bind(i)
  }
  const value = (i: number): string | undefined => tokens[i]?.value
  // The index after the expression starting at `i` that ends at a `,` of frame `level`, or the
  // frame's end; in a declaration also at `;`, a line starting a statement, or a for head's in/of.
  const skipExpression = (i: number, level: number, declaration: boolean): number => {
    const forHead = declaration && tokens[level]?.value === '(' && isControlParen(tokens, level)
    for (; i < tokens.length; i++) {
      const t = tokens[i]
      if (t.parent !== level || t.value === ',') return i
      if (declaration && (t.value === ';' || (t.kind === 'name' && t.nl && STATEMENT_START.has(t.value)))) return i
      if (forHead && t.kind === 'name' && (t.value === 'in' || t.value === 'of')) return i
      if (t.match > i) i = t.match
    }
    return i
  }
  // A binding target (a name, or an array or object pattern) at `i`; the index after it.
  const target = (i: number): number => {
    const t = tokens[i]
    if (t === undefined) return i
    if (t.kind === 'name' && !RESERVED.has(t.value)) {
      bind(i)
      return i + 1
    }
    if (t.value === '[') elements(i + 1, t.match)
    else if (t.value === '{') properties(i + 1, t.match)
    else return i
    return t.match + 1
  }
  // `a, [b] = c, ...d`, as in parameters and array patterns, from `i` to the closing bracket `end`.
  const elements = (i: number, end: number): void => {
    while (i < end) {
      if (value(i) === ',') {
        i++
        continue
      }
      const start = value(i) === '...' ? i + 1 : i
      const next = target(start)
      if (next === start) return bindAll(i, end)
      i = value(next) === '=' ? skipExpression(next + 1, tokens[i].parent, false) : next
      if (i < end && value(i) !== ',') return bindAll(i, end)
    }
  }
  // `a, b: c, [k]: d, e = 1, ...f`, as in object patterns.
  const properties = (i: number, end: number): void => {
    while (i < end) {
      const t = tokens[i]
      let next: number
      if (t.value === ',') {
        i++
        continue
      } else if (t.value === '...') {
        next = target(i + 1)
      } else if (value(i + 1) === ':' && (t.kind === 'name' || t.kind === 'literal')) {
        next = target(i + 2)
      } else if (t.value === '[' && value(t.match + 1) === ':') {
        next = target(t.match + 2)
      } else if (t.kind === 'name') {
        bind(i)
        next = i + 1
      } else {
        return bindAll(i, end)
      }
      if (value(next) === '=') next = skipExpression(next + 1, t.parent, false)
      if (next <= i || (next < end && value(next) !== ',')) return bindAll(i, end)
      i = next
    }
  }
  // `var`, `let` or `const`, from its first declarator at `i`.
  const declarators = (i: number): void => {
    const level = tokens[i - 1].parent
    for (;;) {
      const next = target(i)
      if (next === i) return
      i = value(next) === '=' ? skipExpression(next + 1, level, true) : next
      if (value(i) !== ',' || tokens[i].parent !== level) return
      i++
    }
  }

  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]
    if (t.kind === 'punct' && t.value === '(') {
      const after = value(t.match + 1)
      if (after === '=>' || (after === '{' && !isControlParen(tokens, i))) elements(i + 1, t.match)
      continue
    }
    // A class body's members are skipped in the uses, not here: its fields' functions declare names.
    if (t.kind !== 'name' || memberName(tokens, i) === 'property' || memberName(tokens, i) === 'key') continue
    switch (t.value) {
      case 'var':
      case 'const':
        declarators(i + 1)
        break
      case 'let': {
        const n = tokens[i + 1]
        if (n && (n.value === '[' || n.value === '{' || (n.kind === 'name' && n.value !== 'in' && n.value !== 'instanceof'))) declarators(i + 1)
        break
      }
      case 'using': {
        // `using x = …`, `await using x = …`; not `using(x)`, `using.x`, `for (using of xs)`.
        const n = tokens[i + 1]
        if (n?.kind === 'name' && !n.nl && n.value !== 'in' && n.value !== 'of' && n.value !== 'instanceof') declarators(i + 1)
        break
      }
      case 'function': {
        const n = value(i + 1) === '*' ? i + 2 : i + 1
        if (tokens[n]?.kind === 'name') bind(n)
        break
      }
      case 'class':
        if (tokens[i + 1]?.kind === 'name' && value(i + 1) !== 'extends') bind(i + 1)
        break
      default:
        if (value(i + 1) === '=>') bind(i)
    }
  }
  return bindings
}

// --- uses --------------------------------------------------------------------------------------

/**
 * What the name at `i` is when it is not a variable: a property after `.`, an object literal's key
 * or a modifier before one (`get`, `async`), or anything directly in a class body (member names,
 * and, conservatively, field initializers).
 */
function memberName(tokens: Token[], i: number): 'property' | 'key' | 'class' | undefined {
  if (afterDot(tokens, i)) return 'property'
  const frame = tokens[tokens[i].parent]
  if (frame?.brace === 'class') return 'class'
  if (frame?.brace !== 'object' || !isPropertyNamePosition(tokens, i)) return undefined
  if (isModifier(tokens, i)) return 'key'
  const next = tokens[i + 1]?.value
  // `{ a }` and `{ a = 1 } = o` use a.
  return next === ',' || next === '}' || next === '=' ? undefined : 'key'
}

/** Whether token `i` starts a member of the object literal around it (after its `{` or a `,`). */
function isMemberStart(tokens: Token[], i: number): boolean {
  const t = tokens[i]
  const p = tokens[i - 1]
  if (p === undefined) return false
  if (p.kind === 'name') return isModifier(tokens, i - 1)
  return p.kind === 'punct' && ((p.value === '{' && i - 1 === t.parent) || (p.value === ',' && p.parent === t.parent))
}

function isPropertyNamePosition(tokens: Token[], i: number): boolean {
  return isMemberStart(tokens, i) || (tokens[i - 1]?.value === '*' && isMemberStart(tokens, i - 1))
}

/** `get`, `set`, `async` or `static` before a member's name (not a member named so). */
function isModifier(tokens: Token[], i: number): boolean {
  const t = tokens[i]
  const n = tokens[i + 1]
  if (t.kind !== 'name' || !MODIFIERS.has(t.value) || n === undefined) return false
  if (!(n.kind !== 'punct' || n.value === '[' || n.value === '*')) return false
  return isMemberStart(tokens, i)
}

function isReference(tokens: Token[], i: number): boolean {
  if (memberName(tokens, i) !== undefined) return false
  const next = tokens[i + 1]
  if (next?.colon === 'label') return false
  const p = tokens[i - 1]
  return !(p?.kind === 'name' && (p.value === 'break' || p.value === 'continue') && !tokens[i].nl)
}

/** `typeof x` and `typeof (x)`: the one use of an undeclared name that throws nothing. */
function isTypeofGuarded(tokens: Token[], i: number): boolean {
  const isTypeof = (t: Token | undefined): boolean => t?.kind === 'name' && t.value === 'typeof'
  // Not `typeof x.y`, `typeof x[0]`, `typeof x()`, typeof x`…`: those read x.
  const ends = (t: Token | undefined): boolean => t === undefined || !(t.kind === 'literal' || ['.', '?.', '[', '(', '`${'].includes(t.value))
  if (isTypeof(tokens[i - 1])) return ends(tokens[i + 1])
  return isTypeof(tokens[i - 2]) && tokens[i - 1].value === '(' && tokens[i + 1]?.value === ')' && ends(tokens[i + 2])
}
