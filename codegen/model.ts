// The validated spec model. Emitters and checks read only this, never the YAML.

export interface Located {
  /** `spec/lock.yaml:12:5` */
  readonly at: string
}

export interface ParamModel extends Located {
  readonly name: string
  readonly type: string
  /** TS type annotation (from `ts`, or derived from `type`). */
  readonly tsType: string
  /** A TS expression, or undefined for none (timeouts default to null). */
  readonly default?: string
  readonly optional: boolean
  readonly min?: number
  readonly doc: string
}

export type OnTimeout = { readonly return: string } | { readonly throw: string; readonly message?: string } | { readonly call: string }

export interface BlockingModel extends Located {
  readonly fast?: string
  readonly begin?: string
  /** The coro_ twin's begin, when its state must differ (one that never parks the thread). */
  readonly coroBegin?: string
  readonly attempt: string
  readonly block?: string
  readonly timeout?: string
  readonly timeoutFallback?: string
  readonly onTimeout: OnTimeout
  /** 'core', 'state' (the begin call's result) or a member of the core that is a Waiter. */
  readonly parksOn: string
  /**
   * Core call giving a promise that settles when this thread's own event loop changes the state
   * (a pool's results): the coro_ twin awaits it instead of parking on a word.
   */
  readonly awaits?: string
}

export interface ThrowsModel {
  readonly error: string
  readonly when: string
}

export interface MethodModel extends Located {
  readonly name: string
  readonly doc: string
  readonly params: readonly ParamModel[]
  readonly returns: { readonly type: string; readonly doc: string }
  readonly throws: readonly ThrowsModel[]
  /** Exactly one of these three says how the method works. */
  readonly blocking?: BlockingModel
  readonly call?: string
  readonly composite?: string
  /** For a `call` method: also emit a `coro_` twin (Python's aioprocessing has one). */
  readonly coro: boolean
  /** Type parameters of the method, e.g. `R` for a pool call's result type. */
  readonly typeParams?: string
}

export interface PropertyModel extends Located {
  readonly name: string
  readonly type: string
  readonly doc: string
  readonly get: string
  readonly set?: string
}

export interface StepModel extends Located {
  readonly do?: string
  readonly expect?: string
  readonly returns?: string
  readonly equals?: string
  readonly throws?: string
  readonly message?: string
  readonly matches?: string
  readonly elapsedAtLeast?: number
  /** Binds the step's value to a const of this name for the later steps. */
  readonly as?: string
}

export interface CaseModel extends Located {
  readonly name: string
  /** Names bound before `setup`, in order: `[name, expression]`. */
  readonly given: readonly (readonly [string, string])[]
  readonly setup?: string
  readonly steps: readonly StepModel[]
  readonly teardown?: string
  /** false: the case is about this process's memory or threads, and is not run on proxies (`proxy_skip` says why). */
  readonly proxy?: boolean
  /** false: the case cannot hold for objects kept in Redis (`redis_skip` or `proxy_skip` says why). */
  readonly redis?: boolean
}

export interface ClassModel extends Located {
  readonly name: string
  /** `lock` for spec/lock.yaml: names the generated files. */
  readonly stem: string
  readonly specFile: string
  readonly doc: string
  /** Type parameters of the class, e.g. `T = unknown` for a queue's item type. */
  readonly typeParams?: string
  /** The spec class this one takes its surface and conformance cases from. */
  readonly extends?: string
  /**
   * For a class with `extends`: the members it takes from its parent. The generated class extends
   * the parent's (only its own members are emitted), and the parent's cases run on it from the
   * parent's test file, so `conformance` holds its own cases only.
   */
  readonly inherited?: { readonly methods: ReadonlySet<string>; readonly properties: ReadonlySet<string> }
  /** `module` is an absolute path (the spec writes it relative to the spec file). */
  readonly core: { readonly module: string; readonly class: string; readonly create: string; readonly at: string }
  readonly constructorParams: readonly ParamModel[]
  readonly constructorDoc: string
  /** A complete program using the class, shown in the API reference and run by the docs test. */
  readonly example?: string
  /** What the example prints (the docs test compares). */
  readonly prints?: string
  readonly describe?: string
  readonly transfer: boolean
  readonly context?: { readonly enter: string; readonly exit: string }
  /** A blocking method returning IteratorResult: the class becomes iterable, and async iterable through its coro_ twin. */
  readonly iterator?: string
  /** Methods that `using` calls in order on disposal; `await using` awaits the coro_ twins of the blocking ones. */
  readonly dispose?: readonly string[]
  /**
   * The class can live in a manager server: `typeid` is its Python name there (`Lock`), `hide`
   * the members a proxy does not offer. The generator emits `<Class>Proxy` and the server's table.
   */
  readonly proxy?: { readonly typeid: string; readonly hide: readonly string[] }
  readonly imports: ReadonlyMap<string, readonly string[]>
  readonly methods: readonly MethodModel[]
  readonly properties: readonly PropertyModel[]
  readonly conformance: readonly CaseModel[]
}

export interface SpecModel {
  readonly classes: readonly ClassModel[]
}

/** A problem in the spec, with its place. */
export interface Problem {
  readonly at: string
  readonly path: string
  readonly message: string
}

export class SpecError extends Error {
  constructor(readonly problems: readonly Problem[]) {
    super(problems.map((p) => `${p.at}: ${p.path}: ${p.message}`).join('\n') + `\n${problems.length} problem${problems.length === 1 ? '' : 's'} in the spec`)
    this.name = 'SpecError'
  }
}

/** Known parameter types: their TS type and the runtime check (if any) the emitter calls. */
export const PARAM_TYPES: Record<string, { ts: string; check?: string }> = {
  boolean: { ts: 'boolean', check: 'checkBoolean' },
  timeout: { ts: 'Timeout', check: 'checkTimeout' },
  integer: { ts: 'number', check: 'checkInteger' },
  number: { ts: 'number', check: 'checkNumber' },
  string: { ts: 'string', check: 'checkString' },
  function: { ts: '(...args: any[]) => unknown', check: 'checkFunction' },
  unknown: { ts: 'unknown' },
}

/** The names of a `type_params` declaration (`T = unknown, C extends Typecode = Typecode` → `T, C`). */
export function typeParamNames(typeParams: string): string {
  return typeParams.split(',').map((t) => t.split('=')[0].trim().split(/\s+extends\s+/)[0].replace(/^(?:in|out)\s+/, '')).join(', ')
}

/** A `type_params` declaration without variance annotations (`out C` → `C`), for a function's type parameters. */
export function withoutVariance(typeParams: string): string {
  return typeParams.split(',').map((t) => t.trim().replace(/^(?:in|out)\s+/, '')).join(', ')
}
