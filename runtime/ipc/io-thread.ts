// The I/O thread: owns every socket of the thread that started it, runs each one's authkey
// handshake and then pumps frames between the socket and its connection's two rings, so that a
// blocking recv() or accept() elsewhere is a wait on a shared word (a thread parked in
// Atomics.wait runs no socket callbacks). The handshake and the framing are framed-socket.ts's.
import net from 'node:net'
import { parentPort } from 'node:worker_threads'
import { FramedSocket, HANDSHAKE_TIMEOUT_MS } from './framed-socket.js'
import { CUT_OFF, EOF, GetState, Ring } from './ring.js'
import { PENDING, coroBlockOn, type Waiter } from '../core/wait.js'
import { AuthenticationError, EOFError, OSError } from '../core/errors.js'
import { ERROR_KIND, STATUS, type Address, type IoMessage } from './io-protocol.js'
import { MAX_MESSAGE_BYTES } from './framing.js'
import { killAtEnd } from './parent-death.js'

interface Offer {
  status: Int32Array
  rx: SharedArrayBuffer
  tx: SharedArrayBuffer
}

/**
 * A connection that passed its handshake, or the error of one that failed it, waiting for accept().
 * Connections are handshaken as they arrive, not in accept() as Python does, so that a silent or
 * hostile peer never holds up the ones behind it.
 */
type Admitted = { link: Link; peer: string; port: number } | { error: Error }

interface ListenerState {
  server: net.Server
  admitted: Admitted[]
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

/** Gives each admitted connection (or a failed handshake's error) to a waiting offer, unless the offer was withdrawn. */
function match(l: ListenerState): void {
  while (l.admitted.length > 0 && l.offers.length > 0) {
    const offer = l.offers.shift()!
    const next = l.admitted[0]
    if ('error' in next) {
      if (Atomics.compareExchange(offer.status, 0, STATUS.WAITING, STATUS.CONNECTED_PENDING) !== STATUS.WAITING) continue
      l.admitted.shift()
      setFailed(offer.status, next.error)
      continue
    }
    offer.status[1] = next.port
    setText(offer.status, next.peer)
    if (Atomics.compareExchange(offer.status, 0, STATUS.WAITING, STATUS.CONNECTED) !== STATUS.WAITING) continue
    l.admitted.shift()
    next.link.bind(offer)
    Atomics.notify(offer.status, 0)
  }
}

/** Runs a new connection's handshake at once; admits it (or its failure) for accept(). */
function admit(l: ListenerState, socket: net.Socket): void {
  const peer = socket.remoteAddress ?? 'unix'
  const port = socket.remotePort ?? 0
  let entry: Admitted | undefined
  const drop = (): void => {
    const i = entry ? l.admitted.indexOf(entry) : -1
    if (i >= 0) l.admitted.splice(i, 1)
  }
  const link: Link = new Link(socket, 'server', l.authkey, l.maxMessageSize, {
    ready() {
      l.admitted.push((entry = { link, peer, port }))
      match(l)
    },
    failed(error) {
      // Its socket is closed already; as in Python, an accept() raises the error (a server loops
      // on accept()), but only once its turn comes, so the connections behind it are not held up.
      l.admitted.push({ error })
      match(l)
    },
    gone: drop,
  })
}

function listen(m: Extract<IoMessage, { op: 'listen' }>): void {
  const status = new Int32Array(m.status)
  const server = net.createServer({ pauseOnConnect: true })
  const l: ListenerState = { server, admitted: [], offers: [], authkey: m.authkey, maxMessageSize: m.maxMessageSize }
  server.maxConnections = Number.MAX_SAFE_INTEGER
  server.on('connection', (socket) => admit(l, socket))
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

/**
 * Connects to `m.address` and runs the client's handshake; `ready` gets the link once it passed.
 * A caller that gave up meanwhile (an aborted AioClient.coro, a timeout) has the socket dropped.
 */
function connectLink(m: { address: Address; status: SharedArrayBuffer; authkey: Uint8Array | null }, maxMessageSize: number, ready: (link: Link, status: Int32Array) => void): void {
  const status = new Int32Array(m.status)
  const socket = typeof m.address === 'string' ? net.connect({ path: m.address }) : net.connect({ host: m.address[0], port: m.address[1] })
  socket.once('error', (e) => setStatus(status, STATUS.ERROR, e.message))
  socket.once('connect', () => {
    socket.removeAllListeners('error')
    if (Atomics.compareExchange(status, 0, STATUS.WAITING, STATUS.CONNECTED_PENDING) !== STATUS.WAITING) {
      socket.destroy()
      return
    }
    const link: Link = new Link(socket, 'client', m.authkey, maxMessageSize, {
      ready: () => ready(link, status),
      failed(error) {
        if (Atomics.load(status, 0) !== STATUS.WITHDRAWN) setFailed(status, error)
      },
    })
    dropWhenWithdrawn(status, link.channel)
  })
}

/** CONNECTED, with the peer's text, unless the caller withdrew (then false); the caller is woken after. */
function claim(status: Int32Array, peer: string): boolean {
  setText(status, peer)
  return Atomics.compareExchange(status, 0, STATUS.CONNECTED_PENDING, STATUS.CONNECTED) === STATUS.CONNECTED_PENDING
}

function connect(m: Extract<IoMessage, { op: 'connect' }>): void {
  connectLink(m, m.maxMessageSize, (link, status) => {
    if (!claim(status, addressText(m.address))) return link.channel.abort(new OSError('the operation was withdrawn'))
    link.bind({ status, rx: m.rx, tx: m.tx })
    Atomics.notify(status, 0)
  })
}

/** Sockets handed over to their callers by fd (connectDetached): kept here, paused, until closeDetached. */
const detached = new Map<number, net.Socket>()

function connectDetached(m: Extract<IoMessage, { op: 'connectDetached' }>): void {
  connectLink(m, MAX_MESSAGE_BYTES, (link, status) => {
    const socket = link.channel.socket
    // Nothing more is read here. pause() alone lets libuv go on reading into the stream's buffer,
    // and any later read(0) of the stream would start the handle again: stop the handle, and keep
    // it stopped.
    socket.pause()
    const handle = (socket as unknown as { _handle?: { fd?: number; reading?: boolean; readStop?(): number; readStart?(): number } })._handle
    if (handle) {
      handle.readStop?.()
      handle.reading = false
      handle.readStart = () => 0
    }
    ;(socket as unknown as { _read(): void })._read = () => {}
    const fd = handle?.fd
    if (typeof fd !== 'number' || fd < 0) {
      setFailed(status, new OSError('the socket has no file descriptor to hand over'))
      socket.destroy()
      return
    }
    // The handshake's last write must be on the wire before the caller writes to the fd itself.
    socket.write(Buffer.alloc(0), () => {
      status[1] = fd
      if (!claim(status, addressText(m.address))) return void socket.destroy()
      detached.set(fd, socket)
      Atomics.notify(status, 0)
    })
  })
}

function addressText(a: Address): string {
  return typeof a === 'string' ? a : `${a[0]}:${a[1]}`
}

/**
 * One socket: its handshake, then, once bound to an offer's rings, frames arriving become records
 * in `rx` and records put in `tx` become frames. Frames that come before the binding (a client may
 * send right after its last handshake message) wait in order and go into rx first.
 */
class Link {
  readonly channel: FramedSocket
  private rx: Ring | undefined
  private tx: Ring | undefined
  private early: Uint8Array[] = []
  private writing = Promise.resolve()
  private attached = false
  private closed = false
  private w: Waiter | undefined
  /** Between the handshake and bind(): the socket reads nothing more until an accept() takes it. */
  private waitingForBind = false
  private bound!: () => void
  private readonly untilBound = new Promise<void>((resolve) => (this.bound = resolve))

  constructor(
    readonly socket: net.Socket,
    role: 'server' | 'client',
    authkey: Uint8Array | null,
    maxMessageSize: number,
    on: { ready(): void; failed(error: Error): void; gone?(): void },
  ) {
    socket.setNoDelay(true)
    const write = (part: Uint8Array): void => this.write(part)
    this.channel = new FramedSocket(socket, {
      role,
      authkey,
      // A server drops a peer that does not finish its handshake, so that silent ones never hold fds for ever.
      handshakeMs: role === 'server' ? HANDSHAKE_TIMEOUT_MS : undefined,
      maxMessageBytes: maxMessageSize,
      frames: {
        start(size) {
          const len = Buffer.allocUnsafe(4)
          len.writeUInt32LE(size, 0)
          write(len)
        },
        part: write,
      },
      backlog: () => (this.waitingForBind ? this.untilBound : this.writing),
      ready: () => {
        this.waitingForBind = true
        on.ready()
      },
      ended: (error) => {
        if (!this.attached) {
          on.gone?.()
          if (error) on.failed(error)
          return
        }
        if (error) this.cutOff()
        else void this.writing.then(() => this.rx!.closeWriter())
      },
      closed: () => {
        on.gone?.()
        if (!this.attached) return
        this.tx!.closeReader()
        this.tx!.fail()
        void this.writing.then(() => this.rx!.closeWriter())
      },
    })
  }

  /** Connects the socket to the offer's rings and starts both directions. */
  bind(offer: Offer): void {
    this.rx = new Ring(new Int32Array(offer.rx))
    this.tx = new Ring(new Int32Array(offer.tx))
    this.w = { i32: this.rx.i32, waitIndex: 0, waitValue: 0, waitCapMs: Infinity }
    this.attached = true
    for (const part of this.early.splice(0)) this.write(part)
    void send(this.channel, this.tx, () => this.closed)
    this.waitingForBind = false
    this.bound()
  }

  // The I/O thread is rx's only writer, so it needs no WLOCK. Writes into rx are chained; the
  // socket pauses while they lag behind (the reader is slower than the wire).
  private write(part: Uint8Array): void {
    if (!this.rx) {
      this.early.push(Buffer.from(part))
      return
    }
    const rx = this.rx
    const w = this.w!
    this.writing = this.writing.then(async () => {
      for (let off = 0; off < part.length && !this.closed && !rx.readerClosed(); ) {
        off += await coroBlockOn(w, () => rx.writeSome(part, off, part.length, w), Infinity, () => PENDING, undefined)
      }
    })
  }

  /** A bad frame, a reset, or EOF inside a message: readers and senders both see CUT_OFF. */
  private cutOff(): void {
    if (this.closed) return
    this.closed = true
    this.rx!.fail()
    // Senders must not wait for a socket that is gone: their ring is closed and failed too.
    this.tx!.closeReader()
    this.tx!.fail()
  }
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
    case 'connectDetached':
      return connectDetached(m)
    case 'closeDetached':
      detached.get(m.fd)?.destroy()
      detached.delete(m.fd)
      return
    case 'closeListener': {
      const l = listeners.get(m.id)
      listeners.delete(m.id)
      if (!l) return
      l.server.close()
      for (const a of l.admitted) if ('link' in a) a.link.socket.destroy()
      for (const o of l.offers) setFailed(o.status, new OSError('the listener is closed'))
      return
    }
    case 'exitWithParent':
      killAtEnd(m.fd)
      return
    default:
      throw new Error(`unknown message to the I/O thread: ${JSON.stringify(m)}`)
  }
})
