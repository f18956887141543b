// A private folder in the temporary folder, found as Python's tempfile finds it: TMPDIR (Node's
// os.tmpdir()), else /tmp, else /var/tmp, whichever first takes a folder. A TMPDIR that does not
// exist or is not writable broke managers and the spawn context (ENOENT, EACCES), where Python's
// Manager() goes on in /tmp.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { OSError } from './errors.js'

/**
 * Makes a folder `<base>/<prefix>XXXXXX` (mode 0700) in the first base that `fits` and takes it;
 * OSError naming each base and why not when none does.
 */
export function makeTempFolder(prefix: string, fits: (base: string) => string | undefined = () => undefined): string {
  const bases = [...new Set([tmpdir(), ...(process.platform === 'win32' ? [] : ['/tmp', '/var/tmp'])])]
  const why: string[] = []
  for (const base of bases) {
    const unfit = fits(base)
    if (unfit) {
      why.push(`${base}: ${unfit}`)
      continue
    }
    try {
      return mkdtempSync(join(base, prefix))
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      // Out of fds, or of space: another base would fare no better.
      if (code === 'EMFILE' || code === 'ENFILE' || code === 'ENOSPC') throw error
      why.push(`${base}: ${code ?? (error as Error).message}`)
    }
  }
  throw new OSError(`no temporary folder takes a folder of ours (${why.join('; ')}): set TMPDIR to a writable folder`)
}

/** Folders of ours to remove when this process exits, if still there (a manager's sockets, its fast lanes' FIFOs). */
const atExit = new Set<string>()
let exitHook = false

/**
 * Removes `dir` when this process exits. One exit listener for all folders, for the process's life:
 * one per folder tripped Node's leak warning past ten (eleven managers started and shut down one
 * after another added eleven).
 */
export function removeAtExit(dir: string): void {
  // Each on its own, and quietly: a process out of fds cannot list a folder (EMFILE), and the
  // folders after it must still go. A socket folder left so is swept by a later process (its
  // OWNER is gone: spawn-context.ts); a lane folder stays.
  if (!exitHook) process.once('exit', () => atExit.forEach((d) => {
    try {
      rmSync(d, { recursive: true, force: true })
    } catch {
      // left for the sweep
    }
  }))
  exitHook = true
  atExit.add(dir)
}

/** Takes `dir` off the exit's list (it was removed already); false when it was not on it. */
export function forgetAtExit(dir: string): boolean {
  return atExit.delete(dir)
}
