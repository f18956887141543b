// The I/O thread: owns every socket of the thread that started it, runs each one's authkey
// handshake and then pumps frames between the socket and its connection's two rings, so that a
// blocking recv() or accept() elsewhere is a wait on a shared word (a thread parked in
// Atomics.wait runs no socket callbacks). The handshake and the framing are framed-socket.ts's.
import net from 'node:net'
import { parentPort } from 'node:worker_threads'
import { FramedSocket } from './framed-socket.js'
import { CUT_OFF, EOF, GetState, Ring } from './queue.js'
import { PENDING, coroBlockOn, type Waiter } from '../core/wait.js'
import { AuthenticationError, EOFError, OSError } from '../core/errors.js'
import { ERROR_KIND, STATUS, type Address, type IoMessage } from './sockets.js'

interface Offer {
  status: Int32Array
  rx: SharedArrayBuffer
  tx: SharedArrayBuffer
}

interface ListenerState {
  server: net.Server
  waiting: net.Socket[]
  offers: Offer[]
  authkey: Uint8Array | null
  maxMessageSize: number
}

const listeners = new Map<number, ListenerState>()

function setText(status: Int32Array, text: string): void {
  const bytes = Buffer.from(text).subarray(0, (status.length - 4) * 4)
  new Uint8Array(status.buffer).set(bytes, 16)
  status[2] = bytes.length
}

function setStatus(status: Int32Array, value: number, text = ''): void {
  setText(status, text)
  Atomics.store(status, 0, value)
  Atomics.notify(status, 0)
}

/** The error the caller of accept() or Client() throws when the handshake failed. */
function setFailed(status: Int32Array, error: Error): void {
  const known = error instanceof AuthenticationError || error instanceof EOFError || error instanceof OSError
  // A reset during the handshake reads as any other cut-off connection.
  status[3] = error instanceof AuthenticationError ? ERROR_KIND.AUTHENTICATION : error instanceof EOFError ? ERROR_KIND.EOF : ERROR_KIND.OS
  setStatus(status, STATUS.ERROR, known ? error.message : CUT_OFF)
}

/** Gives a waiting socket to a waiting offer, unless the offer was withdrawn (CAS on its status). */
function match(l: ListenerState): void {
  while (l.waiting.length > 0 && l.offers.length > 0) {
    const offer = l.offers.shift()!
    if (Atomics.compareExchange(offer.status, 0, STATUS.WAITING, STATUS.CONNECTED_PENDING) !== STATUS.WAITING) continue
    const socket = l.waiting.shift()!
    offer.status[1] = socket.remotePort ?? 0
    attach(socket, offer, 'server', l.authkey, l.maxMessageSize, socket.remoteAddress ?? 'unix')
  }
}

function listen(m: Extract<IoMessage, { op: 'listen' }>): void {
  const status = new Int32Array(m.status)
  const server = net.createServer({ pauseOnConnect: true })
  const l: ListenerState = { server, waiting: [], offers: [], authkey: m.authkey, maxMessageSize: m.maxMessageSize }
  server.maxConnections = Number.MAX_SAFE_INTEGER
  server.on('connection', (socket) => {
    l.waiting.push(socket)
    socket.on('close', () => {
      const i = l.waiting.indexOf(socket)
      if (i >= 0) l.waiting.splice(i, 1)
    })
    match(l)
  })
  server.on('error', (e) => setStatus(status, STATUS.ERROR, e.message))
  const onListening = () => {
    const a = server.address()
    status[1] = typeof a === 'object' && a ? a.port : 0
    setStatus(status, STATUS.CONNECTED, typeof a === 'string' ? a : `${(a as net.AddressInfo).address}`)
  }
  if (typeof m.address === 'string') server.listen({ path: m.address, backlog: m.backlog }, onListening)
  else server.listen({ host: m.address[0], port: m.address[1], backlog: m.backlog }, onListening)
  listeners.set(m.id, l)
}

function connect(m: Extract<IoMessage, { op: 'connect' }>): void {
  const status = new Int32Array(m.status)
  const socket = typeof m.address === 'string' ? net.connect({ path: m.address }) : net.connect({ host: m.address[0], port: m.address[1] })
  socket.once('error', (e) => setStatus(status, STATUS.ERROR, e.message))
  socket.once('connect', () => {
    socket.removeAllListeners('error')
    // The caller may have given up (an aborted AioClient.coro): then the socket is not wanted.
    if (Atomics.compareExchange(status, 0, STATUS.WAITING, STATUS.CONNECTED_PENDING) !== STATUS.WAITING) {
      socket.destroy()
      return
    }
    attach(socket, { status, rx: m.rx, tx: m.tx }, 'client', m.authkey, m.maxMessageSize, addressText(m.address))
  })
}

function addressText(a: Address): string {
  return typeof a === 'string' ? a : `${a[0]}:${a[1]}`
}

/**
 * Runs the handshake on `socket`, then connects it to the offer's rings: frames arriving become
 * records in `rx`, records put in `tx` become frames. The offer's status says CONNECTED (with
 * `peer`) or ERROR once the handshake is over; a caller that withdrew meanwhile (timeout, abort)
 * has its socket dropped.
 */
function attach(socket: net.Socket, offer: Offer, role: 'server' | 'client', authkey: Uint8Array | null, maxMessageSize: number, peer: string): void {
  const status = offer.status
  const rx = new Ring(new Int32Array(offer.rx))
  const tx = new Ring(new Int32Array(offer.tx))
  socket.setNoDelay(true)
  let attached = false
  let closed = false
  // A bad frame, a reset, or EOF inside a message: readers and senders both see CUT_OFF.
  const cutOff = () => {
    if (closed) return
    closed = true
    rx.fail()
    // Senders must not wait for a socket that is gone: their ring is closed and failed too.
    tx.closeReader()
    tx.fail()
  }

  // Receiving. The I/O thread is rx's only writer, so it needs no WLOCK. Writes into rx are
  // chained; the socket pauses while they lag behind (the reader is slower than the wire).
  const w: Waiter = { i32: rx.i32, waitIndex: 0, waitValue: 0, waitCapMs: Infinity }
  let writing = Promise.resolve()
  const write = (part: Uint8Array) => {
    writing = writing.then(async () => {
      for (let off = 0; off < part.length && !closed && !rx.readerClosed(); ) {
        off += await coroBlockOn(w, () => rx.writeSome(part, off, part.length, w), Infinity, () => PENDING, undefined)
      }
    })
  }
  const channel: FramedSocket = new FramedSocket(socket, {
    role,
    authkey,
    maxMessageBytes: maxMessageSize,
    frames: {
      start(size) {
        const len = Buffer.allocUnsafe(4)
        len.writeUInt32LE(size, 0)
        write(len)
      },
      part: write,
    },
    backlog: () => writing,
    ready() {
      setText(status, peer)
      if (Atomics.compareExchange(status, 0, STATUS.CONNECTED_PENDING, STATUS.CONNECTED) !== STATUS.CONNECTED_PENDING) {
        channel.abort(new OSError('the operation was withdrawn'))
        return
      }
      attached = true
      Atomics.notify(status, 0)
      void send(channel, tx, () => closed)
    },
    ended(error) {
      if (!attached) return error && Atomics.load(status, 0) !== STATUS.WITHDRAWN && setFailed(status, error)
      if (error) cutOff()
      else rx.closeWriter()
    },
    closed() {
      if (!attached) return
      tx.closeReader()
      tx.fail()
      void writing.then(() => rx.closeWriter())
    },
  })
  if (!attached) dropWhenWithdrawn(status, channel)
}

/** A caller that gives up during the handshake (timeout, abort) withdraws; its socket is then dropped. */
function dropWhenWithdrawn(status: Int32Array, channel: FramedSocket): void {
  const r = Atomics.waitAsync(status, 0, STATUS.CONNECTED_PENDING)
  const check = () => {
    if (Atomics.load(status, 0) === STATUS.WITHDRAWN) channel.abort(new OSError('the operation was withdrawn'))
  }
  if (r.async) void r.value.then(check)
  else check()
}

/** Takes records out of tx and sends each as a frame, until tx ends or the socket is gone. */
async function send(channel: FramedSocket, tx: Ring, isClosed: () => boolean): Promise<void> {
  const st = new GetState(tx.i32)
  const copy = (b: Buffer, s: number, e: number, owned: boolean) => (owned ? b.subarray(s, e) : Buffer.from(b.subarray(s, e)))
  const written = () => tx.countUnsent(-1)
  for (;;) {
    let msg: Buffer | typeof EOF
    try {
      msg = await coroBlockOn(st, () => tx.takeAttempt(st, copy), Infinity, () => PENDING, undefined)
    } catch {
      break
    }
    if (msg === EOF || isClosed()) break
    if (!channel.send(msg, true, written) && !isClosed()) await channel.drain()
  }
  if (!isClosed()) channel.socket.end()
}

parentPort!.on('message', (m: IoMessage) => {
  switch (m.op) {
    case 'listen':
      return listen(m)
    case 'offer': {
      const l = listeners.get(m.id)
      if (!l) return setFailed(new Int32Array(m.status), new OSError('the listener is closed'))
      l.offers.push({ status: new Int32Array(m.status), rx: m.rx, tx: m.tx })
      return match(l)
    }
    case 'connect':
      return connect(m)
    case 'closeListener': {
      const l = listeners.get(m.id)
      listeners.delete(m.id)
      if (!l) return
      l.server.close()
      for (const s of l.waiting) s.destroy()
      for (const o of l.offers) setFailed(o.status, new OSError('the listener is closed'))
      return
    }
    case 'exitWithParent': {
      const pipe = new net.Socket({ fd: m.fd, readable: true, writable: false })
      const die = (): void => void process.kill(process.pid, 'SIGKILL')
      pipe.on('end', die).on('close', die).on('error', die)
      pipe.resume()
      return
    }
    default:
      throw new Error(`unknown message to the I/O thread: ${JSON.stringify(m)}`)
  }
})
