// The spawn context's broker a thread uses (manager/spawn-context.ts): the one its starter used,
// given at start (ProcessData.broker), or the one it made itself. A child's objects then live
// where its parent's do, and outlive the child while someone holds them: made in a broker of the
// child's own, they ended with it, and a parent that had been sent one got OSError (Python refuses
// to send a Queue that way at all). A child also starts no broker thread of its own.
// Apart from spawn-context.ts, which a thread's first module must not load (node:crypto, node:net).

/** Where a broker listens, and its authkey. */
export interface BrokerAddress {
  address: string | [string, number]
  authkey: string
}

let broker: BrokerAddress | undefined

export function setThreadBroker(b: BrokerAddress | undefined): void {
  broker = b
}

export function threadBroker(): BrokerAddress | undefined {
  return broker
}
