/**
 * Appends to agent streams (PROTOCOL §8), batched: the appends to one stream made within one
 * tick travel as one `{"texts":[…]}` request, and batches of one stream go one after another, so
 * the stored text is in call order however fast tokens arrive.
 */

/** Sends one batch of appends and answers the last one's offset. */
export type PostAppends = (body: { channel: string; stream: string; text: string } | { channel: string; stream: string; texts: string[] }) => Promise<{ offset: number }>;

interface Pending {
  text: string;
  resolve: (answer: { offset: number }) => void;
  reject: (error: unknown) => void;
}

interface Queue {
  pending: Pending[];
  scheduled: boolean;
  /** Settles when every batch sent so far is answered. */
  tail: Promise<void>;
  /** Set once a batch failed: later appends would leave a hole in the text, so they fail too. */
  failed?: unknown;
}

/**
 * Batches appends per stream.
 *
 * @example
 * const appender = new StreamAppender({ post: (body) => http("/v1/streams/append", body) });
 * for await (const token of llm) appender.append("user:alice", stream, token);
 * await appender.settled("user:alice", stream);
 */
export class StreamAppender {
  readonly #post: PostAppends;
  readonly #defer: (run: () => void) => void;
  readonly #queues = new Map<string, Queue>();

  constructor(options: { post: PostAppends; defer?: (run: () => void) => void }) {
    this.#post = options.post;
    this.#defer = options.defer ?? ((run) => setTimeout(run, 0));
  }

  /** Queues `text`; resolves with the offset of the batch it travelled in. */
  append(channel: string, stream: string, text: string): Promise<{ offset: number }> {
    const key = `${channel}\n${stream}`;
    let queue = this.#queues.get(key);
    if (!queue) {
      queue = { pending: [], scheduled: false, tail: Promise.resolve() };
      this.#queues.set(key, queue);
    }
    if (queue.failed !== undefined) return Promise.reject(queue.failed);
    // Not Promise.withResolvers: Node 20 lacks it.
    const promise = new Promise<{ offset: number }>((resolve, reject) => queue!.pending.push({ text, resolve, reject }));
    if (!queue.scheduled) {
      queue.scheduled = true;
      const q = queue;
      this.#defer(() => this.#flush(key, q, channel, stream));
    }
    return promise;
  }

  /** Sends what is queued for the stream now and waits for every batch of it to be answered. */
  async settled(channel: string, stream: string): Promise<void> {
    const key = `${channel}\n${stream}`;
    const queue = this.#queues.get(key);
    if (!queue) return;
    if (queue.pending.length > 0) this.#flush(key, queue, channel, stream);
    await queue.tail;
    if (queue.failed !== undefined) throw queue.failed;
  }

  /** Forgets a stream once it ended. */
  forget(channel: string, stream: string): void {
    this.#queues.delete(`${channel}\n${stream}`);
  }

  #flush(key: string, queue: Queue, channel: string, stream: string): void {
    queue.scheduled = false;
    const batch = queue.pending.splice(0);
    if (batch.length === 0) return;
    const body = batch.length === 1 ? { channel, stream, text: batch[0]!.text } : { channel, stream, texts: batch.map((p) => p.text) };
    const tail = queue.tail.then(async () => {
      if (queue.failed !== undefined) {
        for (const p of batch) p.reject(queue.failed);
        return;
      }
      try {
        const answer = await this.#post(body);
        for (const p of batch) p.resolve(answer);
      } catch (error) {
        queue.failed = error;
        for (const p of batch) p.reject(error);
      }
    });
    queue.tail = tail;
    // A stream nobody ends keeps no memory once its last batch is answered.
    tail.then(() => {
      if (queue.tail === tail && queue.pending.length === 0 && !queue.scheduled && queue.failed === undefined && this.#queues.get(key) === queue) this.#queues.delete(key);
    });
  }
}
