/** Ends the sessions of a NATS connection when it closes, without keeping closed ones alive. */

import type { NatsConnectionLike } from "../transport.js";
import type { Session } from "./session.js";
/**
 * The sessions of each NATS connection that end when it closes. One watcher per connection,
 * and a session leaves the set when it ends: a borrowed connection that outlives many
 * sessions does not keep each closed one (and its buffers) alive.
 */
export const watchers = new WeakMap<NatsConnectionLike, Set<Session>>();

export function watchNatsClosed(nc: NatsConnectionLike, session: Session): void {
  let set = watchers.get(nc);
  if (!set) {
    const sessions = new Set<Session>();
    set = sessions;
    watchers.set(nc, sessions);
    const onClosed = () => {
      watchers.delete(nc);
      for (const s of [...sessions]) s.natsClosed();
    };
    nc.closed().then(onClosed, onClosed);
  }
  set.add(session);
}
