// Shared vocabulary of the gateway: the GameServer as the engine sees it and the
// allocation request as a validated domain object. Plain data, no I/O.
import type { Int64 } from './int64.ts';

/** Lifecycle state of a GameServer; only Ready and Allocated are allocatable. */
export type GameServerState = 'Ready' | 'Allocated' | (string & {});

/** A port published by a GameServer. */
export interface GameServerPort {
  readonly name: string;
  readonly port: number;
}

/** An address of the GameServer's node. */
export interface GameServerAddress {
  readonly type: string;
  readonly address: string;
}

/** A counter: count within [0, capacity]. */
export interface CounterStatus {
  readonly count: Int64;
  readonly capacity: Int64;
}

/** A list: distinct values, at most capacity of them. */
export interface ListStatus {
  readonly capacity: Int64;
  readonly values: readonly string[];
}

/** Player tracking (Agones alpha feature). */
export interface PlayerStatus {
  readonly count: Int64;
  readonly capacity: Int64;
}

/** A GameServer as cached by a ClusterStore. Immutable: writes produce a new object. */
export interface GameServer {
  readonly namespace: string;
  readonly name: string;
  /** Opaque version for optimistic concurrency; changes on every write. */
  readonly resourceVersion: string;
  /** metadata.uid on a Kubernetes cluster (Events name their object by it); absent in memory. */
  readonly uid?: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly state: GameServerState;
  readonly address: string;
  readonly addresses: readonly GameServerAddress[];
  readonly ports: readonly GameServerPort[];
  readonly nodeName: string;
  readonly counters: Readonly<Record<string, CounterStatus>>;
  readonly lists: Readonly<Record<string, ListStatus>>;
  readonly players: PlayerStatus | null;
  /** True once deletion started; such a GameServer is never allocated. */
  readonly deleting: boolean;
}

/** Key of a GameServer within a cluster. */
export function gameServerKey(gs: { readonly namespace: string; readonly name: string }): string {
  return `${gs.namespace}/${gs.name}`;
}

export type Scheduling = 'Packed' | 'Distributed';
export type SelectorState = 'Ready' | 'Allocated';

/** Bounds on a counter; max 0 = unbounded. */
export interface CounterSelector {
  readonly minCount: Int64;
  readonly maxCount: Int64;
  readonly minAvailable: Int64;
  readonly maxAvailable: Int64;
}

/** Bounds on a list; max 0 = unbounded; containsValue "" = any. */
export interface ListSelector {
  readonly containsValue: string;
  readonly minAvailable: Int64;
  readonly maxAvailable: Int64;
}

/** Room for players; maxAvailable 0 = not checked. */
export interface PlayerSelector {
  readonly minAvailable: Int64;
  readonly maxAvailable: Int64;
}

/** One GameServerSelector, defaults applied. */
export interface GameServerSelector {
  readonly matchLabels: Readonly<Record<string, string>>;
  readonly gameServerState: SelectorState;
  readonly players: PlayerSelector | null;
  readonly counters: Readonly<Record<string, CounterSelector>>;
  readonly lists: Readonly<Record<string, ListSelector>>;
}

export interface Priority {
  readonly type: 'Counter' | 'List';
  readonly key: string;
  readonly order: 'Ascending' | 'Descending';
}

/** Counter change; null = unset (distinct from 0). */
export interface CounterAction {
  readonly action: string | null;
  readonly amount: Int64 | null;
  readonly capacity: Int64 | null;
}

export interface ListAction {
  readonly addValues: readonly string[];
  readonly capacity: Int64 | null;
  readonly deleteValues: readonly string[];
}

export interface MetaPatch {
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

export interface MultiClusterSetting {
  readonly enabled: boolean;
  readonly policySelector: Readonly<Record<string, string>>;
}

/**
 * A validated allocation request with Agones' defaults applied and the deprecated
 * fields resolved: `selectors` is what the engine tries, in order.
 */
export interface AllocationRequest {
  readonly namespace: string;
  readonly multiClusterSetting: MultiClusterSetting;
  readonly scheduling: Scheduling;
  /** gameServerSelectors, or preferred… then required (absent required = any Ready). */
  readonly selectors: readonly GameServerSelector[];
  readonly metadata: MetaPatch;
  readonly priorities: readonly Priority[];
  readonly counters: Readonly<Record<string, CounterAction>>;
  readonly lists: Readonly<Record<string, ListAction>>;
}

/** The allocated GameServer as returned to callers. */
export interface Allocation {
  readonly gameServerName: string;
  readonly namespace: string;
  readonly address: string;
  readonly addresses: readonly GameServerAddress[];
  readonly ports: readonly GameServerPort[];
  readonly nodeName: string;
  readonly metadata: MetaPatch;
  readonly counters: Readonly<Record<string, CounterStatus>>;
  readonly lists: Readonly<Record<string, ListStatus>>;
  /** "local" or the remote endpoint dialled. */
  readonly source: string;
}
