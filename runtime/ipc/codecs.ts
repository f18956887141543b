// Python's pickle (pickle.ts) as a connection with serializer 'pickle' uses it (connection.ts).
// connection.ts does not import pickle.ts: every thread loads connection.ts, a pool worker's among
// them, and pickle.ts is the library's largest module. A thread that holds such a connection has
// loaded pickle.ts, which provides itself here: the connection came from the library's public
// entry, which exports pickle, or arrived in a message, which loads that entry to rebuild it.

export interface PickleCodec {
  dumps(value: unknown): Buffer
  loads(data: Uint8Array): unknown
}

let pickle: PickleCodec | undefined

export function providePickle(codec: PickleCodec): void {
  pickle = codec
}

/** The pickle codec; this thread has loaded pickle.ts if it holds a connection that needs it. */
export function pickleCodec(): PickleCodec {
  if (!pickle) throw new Error("aioprocessing: a connection with serializer 'pickle' is used in a thread that has not loaded the library's pickle module (a bug of the library: please report it)")
  return pickle
}
