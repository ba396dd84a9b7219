/**
 * Per-user connection slots of a single node, without an entry per connected user: a user's slots
 * are their connections open on this node, which the connection manager counts anyway, plus a
 * difference kept here. The difference is an upgrade in flight (+1 from `acquireConnection` until
 * its connection opens or the upgrade gives the slot back) or a connection counted apart from its
 * slot for a moment (closed but not yet released: +1; a takeover's two connections on one slot:
 * −1). At rest it is 0 and the user has no entry.
 *
 * Every step keeps the count the embedded engine's per-user table had: `opened` and `closed`
 * move a slot between the two parts, `acquireConnection` and `releaseConnection` change the sum.
 *
 * @example
 * const slots = new LocalSlots();
 * slots.countOpenIn(manager); // the manager calls `opened`/`closed` as connections come and go
 * if (!(await slots.acquireConnection(user, 3))) refuse429();
 */
import type { ConnectionSlots, LocalSlotsAbility, OpenConnectionCount } from "./types.ts";

export class LocalSlots implements ConnectionSlots, LocalSlotsAbility {
  #open: OpenConnectionCount = { countOf: () => 0 };
  /** Slots minus open connections, per user; users at 0 are absent. */
  readonly #apart = new Map<string, number>();

  countOpenIn(open: OpenConnectionCount): void {
    this.#open = open;
  }

  async acquireConnection(user: string, max: number): Promise<boolean> {
    if (this.#used(user) >= max) return false;
    this.#shift(user, 1);
    return true;
  }

  /** Never below zero slots: releasing more than was taken frees nothing more. */
  async releaseConnection(user: string): Promise<void> {
    if (this.#used(user) > 0) this.#shift(user, -1);
  }

  opened(user: string): void {
    this.#shift(user, -1);
  }

  closed(user: string): void {
    this.#shift(user, 1);
  }

  #used(user: string): number {
    return this.#open.countOf(user) + (this.#apart.get(user) ?? 0);
  }

  #shift(user: string, by: 1 | -1): void {
    const apart = (this.#apart.get(user) ?? 0) + by;
    if (apart === 0) this.#apart.delete(user);
    else this.#apart.set(user, apart);
  }
}
