// comlink@4.4.2 ships `dist/esm/node-adapter.mjs` next to a `node-adapter.d.ts`, but under
// `moduleResolution: NodeNext` an `.mjs` file needs a `.d.mts`, so TypeScript finds no types for it.
// This declares the one function it exports.
declare module 'comlink/dist/esm/node-adapter.mjs' {
  import type { Endpoint } from 'comlink';

  /** What the adapter needs of a Node `MessagePort` (or `Worker`, `parentPort`). */
  export interface NodeEndpoint {
    postMessage(message: unknown, transfer?: readonly unknown[]): void;
    on(type: 'message', listener: (data: unknown) => void): unknown;
    off(type: 'message', listener: (data: unknown) => void): unknown;
    start?: () => void;
  }

  /** Adapts a Node endpoint (`on('message')`, data not wrapped in an event) to comlink's DOM-style `Endpoint`. */
  export default function nodeEndpoint(endpoint: NodeEndpoint): Endpoint;
}
