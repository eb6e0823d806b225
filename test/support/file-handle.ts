import { open } from 'node:fs/promises';
import { join } from 'node:path';

/** The methods of node's FileHandle that tests wrap to hold or count I/O (a gate on fdatasync, a hook on reads). */
export interface FileHandleMethods {
  datasync: (...a: unknown[]) => Promise<void>;
  read: (...a: unknown[]) => Promise<unknown>;
}

/** The prototype every FileHandle shares (found by opening a scratch file in `dir`). */
export async function fileHandlePrototype(dir: string): Promise<FileHandleMethods> {
  const probe = await open(join(dir, 'probe'), 'w');
  const proto = Object.getPrototypeOf(probe) as FileHandleMethods;
  await probe.close();
  return proto;
}
