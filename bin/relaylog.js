#!/usr/bin/env node
// Thin launcher: the CLI is TypeScript compiled to dist/ by `npm run build` (run by `npm ci`).
import('../dist/server/cli/main.js').then((m) => m.main(process.argv)).catch((err) => {
  process.stderr.write(`relaylog: ${err && err.message ? err.message : String(err)}\n`);
  process.exit(1);
});
