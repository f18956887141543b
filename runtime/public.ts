// The runtime names the package exports beside the generated classes.
export * from './errors.js'
export { currentProcess, type CurrentProcess } from './current.js'
export type { Timeout } from './args.js'
export type { CoroOptions } from './wait.js'
export type { ProcessOptions, Target } from './process.js'
export type { QueueOptions } from './queue.js'

import type { AioConnection } from '../generated/connection.generated.js'
import { pipeEnds } from './connection.js'

/**
 * Python's `Pipe(duplex = true)`: two connected AioConnections over shared memory, usable from any
 * threads they are passed to. With `duplex = false` the first only receives and the second only sends.
 */
export function AioPipe(duplex = true): [AioConnection, AioConnection] {
  return pipeEnds<AioConnection>(duplex)
}
