// workerpool worker: registers its methods.
import workerpool from 'workerpool'
import { run, type Job } from './task.js'
workerpool.worker({ run: (job: Job) => run(job) })
