/** The pure Raft core: no I/O, no clock, no Math.random. See docs/raft.md. */
export { Raft, type ProgressView } from './raft.js';
export { raftDefaults, type RaftConfig } from './config.js';
export { MemoryLogStorage, type LogStorage } from './log-storage.js';
export { applyConfChange, decodeConfChangeEntry, encodeConfChangeEntry, type ConfChange, type ConfChangeEntry, type ConfChangeType } from './conf-change.js';
export { quorumSize } from './quorum.js';
export * from './types.js';
