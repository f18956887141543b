import { AioPool } from '/work/main/dist/generated/index.generated.js'
const T = (l) => process._rawDebug('T ' + (performance.timeOrigin + performance.now()).toFixed(2) + ' 0 ' + l)
T('ctor'); const p = new AioPool({ processes: 2 }); T('ctor-done')
await p.coro_apply({ module: 'file:///work/main/dist/bench/peers/task.js', name: 'run' }, [{ op: 'double', x: 1 }]); T('result'); p.terminate()
