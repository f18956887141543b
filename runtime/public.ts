// The runtime names the package exports beside the generated classes.
export * from './errors.js'
export { currentProcess, type CurrentProcess } from './current.js'
export type { Timeout } from './args.js'
export type { CoroOptions } from './wait.js'
export type { ProcessOptions, Target } from './process.js'
