// Python's tuple, apart from pickle.ts: the library's own format (serialize.ts) carries it too.

/** Python's tuple: an Array whose class says it is a tuple, so it goes back as one. */
export class PyTuple<T = unknown> extends Array<T> {
  // map/filter/slice of a tuple give plain arrays, as in Python they give lists.
  static override get [Symbol.species](): ArrayConstructor {
    return Array
  }
}

/** A tuple of the given items (`tuple(1, 'a')` is Python's `(1, 'a')`). */
export function tuple<T extends unknown[]>(...items: T): PyTuple<T[number]> {
  const t = new PyTuple<T[number]>()
  for (const v of items) t.push(v)
  return t
}
