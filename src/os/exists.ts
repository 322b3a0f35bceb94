import { stat } from 'node:fs/promises';

/** Whether something is at `path` (steps check what an earlier attempt left before redoing it). */
export async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
