/**
 * The EC2 instance metadata service, version 2: a session token from `PUT /latest/api/token`
 * (with its TTL header), then every read with the token in `X-aws-ec2-metadata-token`. Off EC2
 * nothing answers at 169.254.169.254: `probe` says so within a second and the caller carries on.
 */
import { ServiceError } from '../errors.js';

export class ImdsError extends ServiceError<'IMDS_UNREACHABLE' | 'IMDS_REFUSED'> {
  override readonly name = 'ImdsError';
}

/** Where an instance of an Auto Scaling group is going (`autoscaling/target-lifecycle-state`). */
export type TargetLifecycleState =
  | 'InService'
  | 'Terminated'
  | 'Warmed:Stopped'
  | 'Warmed:Running'
  | 'Warmed:Hibernated'
  | 'Detached'
  | 'Standby'
  | string;

const TOKEN_TTL_SECONDS = 21_600;

export class InstanceMetadata {
  private token: { value: string; expiresAt: number } | undefined;

  constructor(
    private readonly endpoint: string,
    private readonly timeoutMs = 2_000,
  ) {}

  /** True when the service answers with a token (on EC2), false when nothing answers in `timeoutMs`. */
  async probe(): Promise<boolean> {
    try {
      await this.freshToken();
      return true;
    } catch (err) {
      if (err instanceof ImdsError && err.code === 'IMDS_UNREACHABLE') return false;
      throw err;
    }
  }

  instanceId(): Promise<string> {
    return this.get('/latest/meta-data/instance-id');
  }

  /** `InService`, `Terminated`, `Warmed:Stopped`...; the service updates it as the group moves the instance. */
  targetLifecycleState(): Promise<TargetLifecycleState> {
    return this.get('/latest/meta-data/autoscaling/target-lifecycle-state');
  }

  private async freshToken(): Promise<string> {
    if (this.token && Date.now() < this.token.expiresAt) return this.token.value;
    const response = await this.request('PUT', '/latest/api/token', {
      'X-aws-ec2-metadata-token-ttl-seconds': String(TOKEN_TTL_SECONDS),
    });
    const value = (await response.text()).trim();
    if (!response.ok || value === '') {
      throw new ImdsError('IMDS_REFUSED', `the metadata service refused a token (HTTP ${response.status})`, {
        endpoint: this.endpoint,
        status: response.status,
      });
    }
    // Renewed a minute before it runs out.
    this.token = { value, expiresAt: Date.now() + (TOKEN_TTL_SECONDS - 60) * 1000 };
    return value;
  }

  private async get(path: string): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      const response = await this.request('GET', path, { 'X-aws-ec2-metadata-token': await this.freshToken() });
      // An expired or revoked token: get a new one once.
      if (response.status === 401 && attempt === 0) {
        this.token = undefined;
        continue;
      }
      const text = (await response.text()).trim();
      if (!response.ok)
        throw new ImdsError('IMDS_REFUSED', `the metadata service answered ${path} with HTTP ${response.status}`, {
          endpoint: this.endpoint,
          path,
          status: response.status,
        });
      return text;
    }
  }

  private async request(method: string, path: string, headers: Record<string, string>): Promise<Response> {
    try {
      return await fetch(`${this.endpoint}${path}`, { method, headers, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (cause) {
      throw new ImdsError(
        'IMDS_UNREACHABLE',
        `the instance metadata service at ${this.endpoint} did not answer ${method} ${path} (not on EC2?)`,
        { endpoint: this.endpoint, path },
        { cause },
      );
    }
  }
}
