// CPython's multiprocessing.connection authkey handshake, both forms: the legacy raw HMAC-MD5 of
// Python <= 3.11 and the '{digest}'-prefixed one of 3.12+. Written once as a generator of
// send/recv steps, so that a blocking and an awaitable driver run the same code.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { AuthenticationError } from '../core/errors.js'

const CHALLENGE = Buffer.from('#CHALLENGE#')
const WELCOME = Buffer.from('#WELCOME#')
const FAILURE = Buffer.from('#FAILURE#')
const MESSAGE_LENGTH = 40
/** Wire name → Node's hash name; the set CPython 3.12+ allows. */
const DIGESTS: Record<string, string> = { md5: 'md5', sha256: 'sha256', sha384: 'sha384', sha3_256: 'sha3-256', sha3_384: 'sha3-384' }
const LEGACY_LENGTHS = new Set([16, 20])
/** Every handshake receive is recv_bytes(256), as in CPython. */
export const HANDSHAKE_MAX = 256

export type Step = { send: Buffer } | { recv: number }

/** An authkey as it travels in a proxy record (hex) as the handshake takes it; null: none. */
export function keyBytes(authkey: string | null): Buffer | null {
  return authkey === null ? null : Buffer.from(authkey, 'hex')
}

function hmac(digest: string, key: Uint8Array, msg: Uint8Array): Buffer {
  return createHmac(DIGESTS[digest], key).update(msg).digest()
}

/** `{name}payload` → [name, payload]; undefined when there is no allowed prefix. */
function digestPrefix(b: Buffer): [string, Buffer] | undefined {
  if (b[0] !== 0x7b) return undefined
  const end = b.indexOf(0x7d)
  if (end < 0 || end > 10) return undefined
  const name = b.subarray(1, end).toString('latin1')
  return name in DIGESTS ? [name, b.subarray(end + 1)] : undefined
}

/** The response to a challenge payload (CPython 3.12's _create_response). */
export function createResponse(key: Uint8Array, message: Buffer): Buffer {
  if (LEGACY_LENGTHS.has(message.length)) return hmac('md5', key, message)
  const prefixed = digestPrefix(message)
  if (!prefixed) throw new AuthenticationError(`unsupported message length, missing digest prefix, or unsupported digest: ${message.subarray(0, 40).toString('hex')}`)
  return Buffer.concat([Buffer.from(`{${prefixed[0]}}`), hmac(prefixed[0], key, message)])
}

/** Whether `response` answers `message` (CPython 3.12's _verify_challenge, constant time). */
export function verifyResponse(key: Uint8Array, message: Buffer, response: Buffer): boolean {
  let digest = 'md5'
  let mac = response
  if (!LEGACY_LENGTHS.has(response.length)) {
    const prefixed = digestPrefix(response)
    if (!prefixed) return false
    ;[digest, mac] = prefixed
  }
  const expected = hmac(digest, key, message)
  return expected.length === mac.length && timingSafeEqual(expected, mac)
}

/** Challenges the peer; throws AuthenticationError if its answer is wrong (after telling it). */
export function* deliverChallenge(key: Uint8Array): Generator<Step, void, Buffer> {
  const message = Buffer.concat([Buffer.from('{sha256}'), randomBytes(MESSAGE_LENGTH)])
  yield { send: Buffer.concat([CHALLENGE, message]) }
  const response = yield { recv: HANDSHAKE_MAX }
  if (verifyResponse(key, message, response)) {
    yield { send: WELCOME }
    return
  }
  try {
    yield { send: FAILURE }
  } catch {
    // The peer may have gone already; the verdict stands.
  }
  throw new AuthenticationError('digest received was wrong')
}

/** Answers the peer's challenge; throws AuthenticationError if the peer rejects the answer. */
export function* answerChallenge(key: Uint8Array): Generator<Step, void, Buffer> {
  const challenge = yield { recv: HANDSHAKE_MAX }
  if (!challenge.subarray(0, CHALLENGE.length).equals(CHALLENGE)) {
    throw new AuthenticationError(`protocol error: expected a challenge, got ${challenge.subarray(0, 20).toString('hex')}`)
  }
  const message = challenge.subarray(CHALLENGE.length)
  if (message.length < 20) throw new AuthenticationError(`challenge too short: ${message.length} bytes`)
  yield { send: createResponse(key, message) }
  const verdict = yield { recv: HANDSHAKE_MAX }
  if (!verdict.equals(WELCOME)) throw new AuthenticationError('digest sent was rejected')
}

/** The server's side (Listener.accept): challenge, then answer. */
export function* serverHandshake(key: Uint8Array): Generator<Step, void, Buffer> {
  yield* deliverChallenge(key)
  yield* answerChallenge(key)
}

/** The client's side (Client): answer, then challenge. */
export function* clientHandshake(key: Uint8Array): Generator<Step, void, Buffer> {
  yield* answerChallenge(key)
  yield* deliverChallenge(key)
}

/**
 * Drives a handshake over a stream, event-driven or blocking (sync-pipe.ts): `feed()` starts it, `feed(frame)` gives it each
 * frame received; it returns true once the handshake succeeded and throws AuthenticationError when
 * it failed. `send` writes one frame.
 */
export function handshakeDriver(gen: Generator<Step, void, Buffer>, send: (bytes: Buffer) => void): (input?: Buffer) => boolean {
  let step = gen.next()
  return (input?: Buffer): boolean => {
    while (!step.done) {
      const s = step.value
      if ('send' in s) {
        send(s.send)
        step = gen.next(Buffer.alloc(0))
        continue
      }
      if (input === undefined) return false // wait for the peer's next frame
      const got = input
      input = undefined
      step = gen.next(got)
    }
    return true
  }
}
