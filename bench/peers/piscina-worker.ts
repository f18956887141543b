// piscina and tinypool worker: the default export handles one task.
import { run, type Job } from './task.js'
export default (job: Job): number => run(job)
