import type { Actor } from 'xstate';
import type { BuildMachine } from '../../machines/build.machine.js';
import type { BuildKind } from '../model/index.js';
import type { OsPlugin } from '../os/plugin.js';
import type { Template } from '../tdl/index.js';

/** What the engine holds in memory for a build while it is not final. */
export interface Build {
  readonly id: string;
  readonly kind: BuildKind;
  actor: Actor<BuildMachine>;
  /** The machine's state value last recorded, to see transitions. */
  lastValue: string | null;
  /** The step running now, so that undo can wait for it to let go. */
  inflight: Promise<unknown> | null;
  admitted: boolean;
  /** A parent build created by the same request, cancelled with this one. */
  ownedParent: string | null;
  /** Credentials live only in memory, only for the build that needs them. */
  credentials: string | null;
  /** The template, parsed once per build in this process (at submission, or when a restored build first needs it). */
  template: Template | null;
  osPlugin: OsPlugin | null;
}
