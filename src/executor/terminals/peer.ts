/**
 * The far end of a terminal or a port relay, as they use it: Bun's ServerWebSocket on the executor's socket, or a
 * stream of the node link (src/executor/link/) for a browser the server relays. Both keep the same order and the
 * same backpressure signals, so one implementation serves both.
 */
export interface PeerSocket<T> {
  data: T;
  /** One text message (a JSON control message). */
  send(text: string): unknown;
  /** One binary message; -1 when the peer is not keeping up (wait for the drain), as Bun's `sendBinary` says. */
  sendBinary(bytes: Uint8Array): number;
  /** Bytes sent and not yet taken by the peer. */
  getBufferedAmount(): number;
  close(code?: number, reason?: string): void;
}
