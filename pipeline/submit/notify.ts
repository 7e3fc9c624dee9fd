/**
 * Telling someone a result is there. `notify` is a webhook URL or an SNS topic ARN:
 *
 *   webhook  POST of the JSON body, signed the way GitHub signs its webhooks — header
 *            `X-Signature-256: sha256=<hex HMAC-SHA256 of the body with WEBHOOK_SECRET>` — with
 *            `X-Event` naming what happened. Only to hosts of WEBHOOK_ALLOWED_HOSTS (so the service
 *            cannot be made to call internal addresses for anyone), redirects not followed.
 *   SNS      Publish of the same JSON to the topic (the instance role decides which topics).
 *
 * Delivery never blocks classification: it runs beside it, retried with exponential backoff and
 * jitter (a 2xx is delivered; a 4xx other than 408 and 429 will not get better), and reports whether
 * it got through.
 */
import { createHmac } from 'node:crypto';
import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import type { Config } from '../../lib/config.js';
import { ServiceError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';

export class NotifyError extends ServiceError<'BAD_NOTIFY' | 'NOTIFY_NOT_ALLOWED'> {
  override readonly name = 'NotifyError';
}

const SNS_TOPIC = /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$/;

export interface NotifierOptions {
  readonly sns: SNSClient;
  readonly webhooks: Config['webhooks'];
  readonly log: Logger;
  /** Attempts in all, and the first backoff (doubling): 6 attempts over about 30 s by default. */
  readonly attempts?: number;
  readonly firstBackoffMs?: number;
  /** How long one webhook call may take. */
  readonly timeoutMs?: number;
}

/** The signature header's value for `body` (what a receiver computes to check it). */
export const signature = (secret: string, body: string): string =>
  `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

/** Does `host` (`name` or `name:port`) match an allow-list entry (`name`, `name:port` or `*.domain`)? */
export function hostAllowed(url: URL, allowed: readonly string[]): boolean {
  const hostname = url.hostname.toLowerCase();
  const host = url.host.toLowerCase();
  return allowed.some((entry) => {
    const e = entry.toLowerCase();
    if (e.startsWith('*.')) return hostname.endsWith(e.slice(1)) && !e.includes(':');
    return e.includes(':') ? host === e : hostname === e;
  });
}

export class Notifier {
  private readonly attempts: number;
  private readonly firstBackoffMs: number;
  private readonly timeoutMs: number;

  constructor(private readonly options: NotifierOptions) {
    this.attempts = options.attempts ?? 6;
    this.firstBackoffMs = options.firstBackoffMs ?? 1_000;
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** Checks a `notify` target before anything is accepted; throws a NotifyError saying what is wrong. */
  check(target: unknown): string {
    if (typeof target !== 'string' || target === '')
      throw new NotifyError('BAD_NOTIFY', 'notify must be a webhook URL or an SNS topic ARN, as a string', {});
    if (target.startsWith('arn:')) {
      if (!SNS_TOPIC.test(target))
        throw new NotifyError('BAD_NOTIFY', `${JSON.stringify(target.slice(0, 300))} is not an SNS topic ARN`, {});
      return target;
    }
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      throw new NotifyError(
        'BAD_NOTIFY',
        `notify ${JSON.stringify(target.slice(0, 300))} is neither a URL nor an SNS topic ARN`,
        {},
      );
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:')
      throw new NotifyError('BAD_NOTIFY', `a webhook must be http(s), got ${url.protocol}`, {});
    if (url.username || url.password)
      throw new NotifyError('BAD_NOTIFY', 'a webhook URL may not carry credentials', {});
    const { allowedHosts, secret } = this.options.webhooks;
    if (allowedHosts.length === 0 || secret === undefined) {
      throw new NotifyError(
        'NOTIFY_NOT_ALLOWED',
        'webhooks are off: WEBHOOK_ALLOWED_HOSTS (and WEBHOOK_SECRET) name where they may go',
        {},
      );
    }
    if (!hostAllowed(url, allowedHosts)) {
      throw new NotifyError('NOTIFY_NOT_ALLOWED', `${url.host} is not in WEBHOOK_ALLOWED_HOSTS`, { host: url.host });
    }
    return target;
  }

  /**
   * Delivers `body` to `target` (checked again), retrying; true when delivered, false when given up.
   * Never throws: a notification that cannot go out is logged, not a failure of the work it reports.
   */
  async deliver(target: string, event: string, body: unknown): Promise<boolean> {
    const text = JSON.stringify(body);
    try {
      this.check(target);
    } catch (err) {
      this.options.log.warn('notification not sent: its target is no longer allowed', { event, error: err });
      return false;
    }
    for (let attempt = 1; attempt <= this.attempts; attempt++) {
      const outcome = await this.once(target, event, text).catch((err: unknown) => ({
        retry: true,
        why: (err as Error).message,
      }));
      if (outcome === 'delivered') return true;
      if (!outcome.retry || attempt === this.attempts) {
        this.options.log.warn('notification given up', {
          event,
          target: redact(target),
          attempts: attempt,
          why: outcome.why,
        });
        return false;
      }
      const backoff = this.firstBackoffMs * 2 ** (attempt - 1);
      await new Promise((resolve) => setTimeout(resolve, backoff / 2 + Math.random() * backoff));
    }
    return false;
  }

  private async once(
    target: string,
    event: string,
    text: string,
  ): Promise<'delivered' | { retry: boolean; why: string }> {
    if (target.startsWith('arn:')) {
      await this.options.sns.send(
        new PublishCommand({ TopicArn: target, Message: text, Subject: event.slice(0, 100) }),
      );
      return 'delivered';
    }
    const response = await fetch(target, {
      method: 'POST',
      redirect: 'manual',
      signal: AbortSignal.timeout(this.timeoutMs),
      headers: {
        'content-type': 'application/json',
        'user-agent': 'elastic-image-recognition',
        'x-event': event,
        'x-signature-256': signature(this.options.webhooks.secret!, text),
      },
      body: text,
    });
    await response.body?.cancel();
    if (response.status >= 200 && response.status < 300) return 'delivered';
    const retry = response.status >= 500 || response.status === 408 || response.status === 429;
    return { retry, why: `HTTP ${response.status}` };
  }
}

/** A URL for the logs: host and path, never a query (it may carry a token). */
const redact = (target: string): string => {
  try {
    const url = new URL(target);
    return `${url.protocol}//${url.host}${url.pathname}`;
  } catch {
    return target.slice(0, 100);
  }
};
