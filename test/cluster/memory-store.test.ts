// MemoryStore (the embedded cluster) against the same ClusterStore contract as the Kubernetes
// store: the engine must not be able to tell them apart.
import { MemoryStore } from '../../src/cluster/memory/memory-store.ts';
import type { GameServer, GameServerState } from '../../src/allocation/types.ts';
import { storeContract, type GameServerSeed } from './store-contract.ts';

/** A seed as the embedded cluster's own loader would hold it (written past update(), as a controller would). */
function fromSeed(s: GameServerSeed): GameServer {
  return {
    namespace: s.namespace, name: s.name, resourceVersion: '', state: s.state as GameServerState,
    labels: { ...s.labels }, annotations: { ...s.annotations }, address: s.address ?? '', addresses: [],
    ports: (s.ports ?? []).map((p) => ({ ...p })), nodeName: s.nodeName ?? '',
    counters: Object.fromEntries(Object.entries(s.counters ?? {}).map(([k, c]) => [k, { ...c }])),
    lists: Object.fromEntries(Object.entries(s.lists ?? {}).map(([k, l]) => [k, { capacity: l.capacity, values: [...l.values] }])),
    players: null, deleting: false,
  };
}

storeContract('MemoryStore (embedded cluster)', async () => {
  const store = new MemoryStore();
  return {
    store,
    async seed(s) {
      store.upsert(fromSeed(s));
    },
    async remove(namespace, name) {
      store.delete(namespace, name);
    },
  };
});
