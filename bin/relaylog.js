#!/usr/bin/env node
// Thin launcher: the CLI is TypeScript compiled to dist/ by `npm run build` (run by `npm ci`).
// File I/O runs on libuv's thread pool (4 threads by default), sized when first used, so here:
// replaying readers and the append path's writes and fsyncs each get room (engine/base/slots.ts).
process.env.UV_THREADPOOL_SIZE ??= '16';
import('../dist/server/cli/main.js').then((m) => m.main(process.argv)).catch((err) => {
  process.stderr.write(`relaylog: ${err && err.message ? err.message : String(err)}\n`);
  process.exit(1);
});
