// Kubernetes Events on allocated GameServers, as agones-allocator records them: a Normal event
// with reason "Allocated" for each allocation, and a Warning (CounterActionError/ListActionError)
// when a counter or list action of the request was skipped because the GameServer lacks it.
import type { AllocationRequest, GameServer } from '../allocation/types.ts';

export interface GameServerEvent {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly resourceVersion: string;
  readonly type: 'Normal' | 'Warning';
  readonly reason: string;
  readonly message: string;
}

/** Where events go; record() must be cheap and never throw (it runs on the request path). */
export interface EventRecorder {
  record(event: GameServerEvent): void;
  close(): Promise<void>;
}

/** The events one allocation produces, warnings first (Agones' order). */
export function allocationEvents(written: GameServer, req: AllocationRequest): GameServerEvent[] {
  const base = { namespace: written.namespace, name: written.name, uid: written.uid ?? '', resourceVersion: written.resourceVersion };
  const events: GameServerEvent[] = [];
  const missingCounters = Object.keys(req.counters).filter((k) => !(k in written.counters)).sort();
  if (missingCounters.length > 0) {
    events.push({ ...base, type: 'Warning', reason: 'CounterActionError', message: `counter action skipped: the GameServer has no counter ${missingCounters.map((k) => JSON.stringify(k)).join(', ')}` });
  }
  const missingLists = Object.keys(req.lists).filter((k) => !(k in written.lists)).sort();
  if (missingLists.length > 0) {
    events.push({ ...base, type: 'Warning', reason: 'ListActionError', message: `list action skipped: the GameServer has no list ${missingLists.map((k) => JSON.stringify(k)).join(', ')}` });
  }
  events.push({ ...base, type: 'Normal', reason: 'Allocated', message: 'Allocated' });
  return events;
}
