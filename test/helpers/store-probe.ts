// Preloaded into a child gateway (node --import) so a test can read the embedded cluster's
// GameServers by name without asking the gateway: src/main.ts runs unchanged, and this hook keeps
// a reference to each MemoryStore the engine subscribes to. On an IPC message {type:'snapshot'}
// it answers with every GameServer (name, state, annotations); at exit it writes them to
// STORE_PROBE_FILE, so a gateway that drained and exited can still be audited.
import { writeFileSync } from 'node:fs';
import { MemoryStore } from '../../src/cluster/memory/memory-store.ts';

const stores = new Set<MemoryStore>();
const subscribe = MemoryStore.prototype.subscribe;
MemoryStore.prototype.subscribe = function (this: MemoryStore, listener) {
  stores.add(this);
  return subscribe.call(this, listener);
};

const snapshot = () => [...stores].flatMap((s) => s.list().map((g) => ({ name: g.name, state: g.state, annotations: g.annotations })));

process.on('message', (m: { type?: string; id?: number }) => {
  if (m?.type === 'snapshot') process.send?.({ type: 'snapshot', id: m.id, gameServers: snapshot() });
});
process.channel?.unref();
process.on('exit', () => {
  if (process.env.STORE_PROBE_FILE) writeFileSync(process.env.STORE_PROBE_FILE, JSON.stringify(snapshot()));
});
