// First module of a process's worker thread: its start (boot.ts) under a top-level await, so that
// a target awaiting a promise that can never settle ends the thread with Node's exitcode 13.
import { boot } from './boot.js'

await boot()
