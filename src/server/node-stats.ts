/** Counters behind `/ws/stats` (the OpenTelemetry instruments carry the same figures to Grafana). */

export class NodeStats {
  resumeHits = 0;
  resumeMisses = 0;
  confirmed = 0;
  timedOut = 0;
  confirmTotalMs = 0;
  slowConsumerCloses = 0;
  publishes = 0;
  rejectedFrames = 0;
  refusedUpgrades = 0;
  /** Non-critical events the periodic trim dropped from history. */
  trimmedDropped = 0;

  confirmations() {
    return {
      confirmed: this.confirmed,
      timedOut: this.timedOut,
      meanMs: this.confirmed === 0 ? 0 : Math.round((this.confirmTotalMs / this.confirmed) * 100) / 100,
    };
  }
}
