import { EngineError, isEngineError, storageError } from '../base/errors.js';

/*
 * What an LMDB write that failed becomes. lmdb-js (3.5.6) reports a failed asynchronous commit
 * twice: each write of the transaction rejects with "Commit failed (see commitError for details)",
 * and that error's `commitError` is a second promise, rejected with the cause (ENOSPC arrives as
 * the errno number, `code: 28`). Node ends the process on an unhandled rejection, so the second
 * promise must be handled as well as the first, or a full disk under the catalog kills the node
 * (kriszyp/lmdb-js#368). The third such promise, the one lmdb-js's event-turn batching creates for
 * itself, cannot be reached at all: the catalog opens its environment with that batching off.
 */

const ENOSPC_ERRNO = 28;

function isEnospc(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ENOSPC' || code === ENOSPC_ERRNO || /No space left on device/.test(String((err as Error | null)?.message ?? ''));
}

/** The EngineError for a failed catalog write: DISK_FULL when the file system is full, else STORAGE_ERROR (both retriable). */
export function catalogWriteError(dir: string, what: string, err: unknown): EngineError {
  if (isEngineError(err)) return err;
  if (isEnospc(err)) {
    return new EngineError('DISK_FULL', `disk full: the catalog at ${dir} could not commit ${what} (ENOSPC); catalog writes fail until space is freed, what is committed is unaffected`, { dir }, { cause: err });
  }
  return storageError(`committing ${what} to the catalog at ${dir}`, err);
}

/**
 * An asynchronous LMDB write whose failure is an EngineError, with lmdb-js's second rejection
 * handled. The result is marked handled too: a caller that does not wait for it (index entries,
 * segment records) leaves nothing unhandled, and `report` hears of the failure.
 */
export function settledWrite<T>(write: Promise<T>, dir: string, what: string, report: ((err: EngineError) => void) | null): Promise<T> {
  const out = write.catch(async (err: unknown) => {
    const commit_error = (err as { commitError?: unknown } | null)?.commitError;
    const cause = commit_error instanceof Promise ? await commit_error.then(() => err, (e: unknown) => e) : err;
    throw catalogWriteError(dir, what, cause);
  });
  void out.catch((err: unknown) => report?.(err as EngineError));
  return out;
}
