// poolifier worker: a ThreadWorker around the task.
import { ThreadWorker } from 'poolifier'
import { run, type Job } from './task.js'
export default new ThreadWorker((job?: Job) => run(job!))
