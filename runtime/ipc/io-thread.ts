// The I/O thread: owns every socket of the thread that started it and pumps bytes between each
// socket and its connection's two rings, so that a blocking recv() or accept() elsewhere is a
// wait on a shared word (a thread parked in Atomics.wait runs no socket callbacks).
//
// Wire format: CPython's multiprocessing.connection framing — a signed 32-bit big-endian length,
// or -1 and an unsigned 64-bit length for larger messages, then the payload. A frame longer than
// `maxMessageSize`, or with another negative length, cuts the connection off: the peer is never
// trusted to size an allocation.
import net from 'node:net'
import { FrameReader, frameHeader } from './framing.js'
import { parentPort } from 'node:worker_threads'
import { EOF, GetState, Ring } from './queue.js'
import { PENDING, coroBlockOn, type Waiter } from '../core/wait.js'
import { STATUS, type Address, type IoMessage } from './sockets.js'

interface Offer {
  status: Int32Array
  rx: SharedArrayBuffer
  tx: SharedArrayBuffer
}

interface ListenerState {
  server: net.Server
  waiting: net.Socket[]
  offers: Offer[]
  maxMessageSize: number
}

const listeners = new Map<number, ListenerState>()

function setStatus(status: Int32Array, value: number, text = ''): void {
  const bytes = Buffer.from(text).subarray(0, (status.length - 4) * 4)
  new Uint8Array(status.buffer).set(bytes, 16)
  status[2] = bytes.length
  Atomics.store(status, 0, value)
  Atomics.notify(status, 0)
}

/** Gives a waiting socket to a waiting offer, unless the offer was withdrawn (CAS on its status). */
function match(l: ListenerState): void {
  while (l.waiting.length > 0 && l.offers.length > 0) {
    const offer = l.offers.shift()!
    if (Atomics.compareExchange(offer.status, 0, STATUS.WAITING, STATUS.CONNECTED_PENDING) !== STATUS.WAITING) continue
    const socket = l.waiting.shift()!
    offer.status[1] = socket.remotePort ?? 0
    pump(socket, offer, l.maxMessageSize)
    setStatus(offer.status, STATUS.CONNECTED, socket.remoteAddress ?? 'unix')
  }
}

function listen(m: Extract<IoMessage, { op: 'listen' }>): void {
  const status = new Int32Array(m.status)
  const server = net.createServer({ pauseOnConnect: true })
  const l: ListenerState = { server, waiting: [], offers: [], maxMessageSize: m.maxMessageSize }
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
    pump(socket, { status, rx: m.rx, tx: m.tx }, m.maxMessageSize)
    setStatus(status, STATUS.CONNECTED, addressText(m.address))
  })
}

function addressText(a: Address): string {
  return typeof a === 'string' ? a : `${a[0]}:${a[1]}`
}

/** Frames arriving on `socket` become records in `rx`; records put in `tx` become frames. */
function pump(socket: net.Socket, offer: Offer, maxMessageSize: number): void {
  const rx = new Ring(new Int32Array(offer.rx))
  const tx = new Ring(new Int32Array(offer.tx))
  socket.setNoDelay(true)
  let closed = false
  // A bad frame, a reset, or EOF inside a message: readers and senders both see CUT_OFF.
  const cutOff = () => {
    if (closed) return
    closed = true
    rx.fail()
    // Senders must not wait for a socket that is gone: their ring is closed and failed too.
    tx.closeReader()
    tx.fail()
    socket.destroy()
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
  const frames = new FrameReader(
    maxMessageSize,
    (size) => {
      const len = Buffer.allocUnsafe(4)
      len.writeUInt32LE(size, 0)
      write(len)
    },
    write,
    cutOff,
  )
  socket.on('data', (chunk: Buffer) => {
    if (closed || !frames.push(chunk)) return
    socket.pause()
    void writing.then(() => {
      if (!closed) socket.resume()
    })
  })
  socket.on('end', () => {
    void writing.then(() => {
      if (frames.inFrame) cutOff() // EOF inside a frame
      else rx.closeWriter()
    })
  })
  socket.on('error', cutOff)
  socket.on('close', () => {
    tx.closeReader()
    tx.fail()
    void writing.then(() => rx.closeWriter())
  })
  socket.resume()

  // Sending: take records out of tx and frame them (one write for small ones, as CPython does).
  void (async () => {
    const st = new GetState(tx.i32)
    const copy = (b: Buffer, s: number, e: number, owned: boolean) => (owned ? b.subarray(s, e) : Buffer.from(b.subarray(s, e)))
    for (;;) {
      let msg: Buffer | typeof EOF
      try {
        msg = await coroBlockOn(st, () => tx.takeAttempt(st, copy), Infinity, () => PENDING, undefined)
      } catch {
        break
      }
      if (msg === EOF || closed) break
      const head = frameHeader(msg.length)
      let ok: boolean
      const written = () => tx.countUnsent(-1)
      if (msg.length <= 16384) ok = socket.write(Buffer.concat([head, msg]), written)
      else {
        socket.write(head)
        ok = socket.write(msg, written)
      }
      if (!ok && !closed) await new Promise((r) => (socket.once('drain', r), socket.once('close', r)))
    }
    if (!closed) socket.end()
  })()
}

parentPort!.on('message', (m: IoMessage) => {
  switch (m.op) {
    case 'listen':
      return listen(m)
    case 'offer': {
      const l = listeners.get(m.id)
      if (!l) return setStatus(new Int32Array(m.status), STATUS.ERROR, 'the listener is closed')
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
      for (const o of l.offers) setStatus(o.status, STATUS.ERROR, 'the listener is closed')
      return
    }
    default:
      throw new Error(`unknown message to the I/O thread: ${JSON.stringify(m)}`)
  }
})
