// First module of a process's worker thread: its start (boot.ts), run as a first module's work
// (core/first-module.ts: no top-level await, and exitcode 13 for a target awaiting a promise that
// can never settle, as Node gives a thread whose top-level await never settles).
import { boot } from './boot.js'
import { runAsFirstModule } from '../core/first-module.js'

runAsFirstModule(boot)
