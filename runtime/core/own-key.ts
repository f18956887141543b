// A plain object's key set as an own data property, whatever its name: `out[k] = v` with k
// '__proto__' sets the object's prototype instead (a JSON.parse'd object may have such a key,
// and a peer may send one), so the key vanished in transit or the value became the prototype.

/** `o[k] = v` as an own property, '__proto__' included; returns `o`. */
export function setOwnKey(o: Record<string, unknown>, k: string, v: unknown): Record<string, unknown> {
  if (k === '__proto__') Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true })
  else o[k] = v
  return o
}
