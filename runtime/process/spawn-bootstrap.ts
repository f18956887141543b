// First code of a process of the 'spawn' start method: a new Node process (see supervisor-thread.ts).
// Its proxies' first blocking calls go through the I/O thread: it starts before anything else
// loads, so that it boots while the library does (a first call otherwise waits for it), and then
// spawn-main.ts runs the process (named by URL, as every thread's first module is: in the bundle,
// the entry beside this one).
import { ioThread } from '../ipc/io-start.js'

ioThread()
await import(new URL('./spawn-main.js', import.meta.url).href)
