// `aioprocessing/extend`: what a user's own primitive needs, its hand-written core and the class
// `aioprocessing-codegen` generates over it. Everything else in runtime/ is internal.

// The wait core: an attempt either returns a result or parks on a word (see DESIGN.md).
export { PENDING, park, blockOn, coroBlockOn, coroAwaitOn, type Pending, type Waiter, type CoroOptions } from '../core/wait.js'
// Argument checks the generated methods call.
export { checkBoolean, checkTimeout, checkInteger, checkNumber, checkString, checkFunction, checkSignal, deadlineOf, describeValue, type Timeout } from '../core/args.js'
// Transfer: a core reduces to a cloneable record and is rebuilt over the same memory elsewhere.
export { CORE, REDUCE, registerType, registerWrapper, registerClassModule, type Reduced, type Shareable } from '../core/transfer.js'
export { coroHolding, guard, holding } from '../core/guard.js'
// What getContext(method, options) applies to a generated context.
export { withContextOptions, type ContextOptions } from './context-options.js'
export * from '../core/errors.js'
// Proxies: a generated proxy class, and what a manager server may call on the hosted object.
export { ProxyCore, PROXY_CLASSES, wrapProxy } from '../manager/proxy.js'
export { BaseProxy } from '../manager/proxy-base.js'
export { registerHostedType, type HostedSpec } from '../manager/manager-types.js'
