// Builders for GameServers in tests.
import type { GameServer } from '../../src/allocation/types.ts';

export type GameServerInit = Partial<Omit<GameServer, 'name'>> & { name: string };

/** A Ready GameServer in `default` on node-1 unless told otherwise. */
export function gameServer(init: GameServerInit): GameServer {
  return {
    namespace: 'default',
    resourceVersion: '0',
    labels: {},
    annotations: {},
    state: 'Ready',
    address: '10.0.0.1',
    addresses: [{ type: 'InternalIP', address: init.address ?? '10.0.0.1' }],
    ports: [{ name: 'default', port: 7000 }],
    nodeName: 'node-1',
    counters: {},
    lists: {},
    players: null,
    deleting: false,
    ...init,
  };
}

/** `count` Ready GameServers named prefix-0…, spread over `nodes` nodes. */
export function readyPool(count: number, opts: { prefix?: string; nodes?: number; namespace?: string; labels?: Record<string, string> } = {}): GameServer[] {
  const nodes = opts.nodes ?? 4;
  return Array.from({ length: count }, (_, i) =>
    gameServer({
      name: `${opts.prefix ?? 'gs'}-${String(i).padStart(4, '0')}`,
      namespace: opts.namespace ?? 'default',
      nodeName: `node-${i % nodes}`,
      labels: opts.labels ?? {},
      ports: [{ name: 'default', port: 7000 + i }],
    }),
  );
}

/** Names every JavaScript object inherits (or treats specially); as map keys they must be ordinary strings. */
export const OBJECT_PROPERTY_NAMES = [
  'constructor', 'toString', 'valueOf', 'hasOwnProperty', '__proto__', 'isPrototypeOf', 'propertyIsEnumerable',
  'toLocaleString', '__defineGetter__', '__lookupSetter__',
] as const;
