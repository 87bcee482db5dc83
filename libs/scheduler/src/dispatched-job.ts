/**
 * A job handed to one worker by `FairScheduler.next`: the parsed payload plus the BullMQ job
 * and the lock token that proves this worker holds it.
 */
import { UnrecoverableError, type Job } from "bullmq";
import type { CompletionJob } from "./job-catalog";

export interface DispatchedJob {
  job: CompletionJob;
  tenantId: string;
  completionId: string;
  /** the BullMQ job and the token of its lock */
  bullJob: Job;
  token: string;
  /** failed attempts so far (BullMQ attemptsMade) */
  attemptsMade: number;
  /** times this job was moved to active, this one included (> 1 after a stall or retry: replay) */
  attemptsStarted: number;
  /** set when BullMQ gave the job back after too many stalls: fail it, do not run it */
  deferredFailure: string | null;
  /** true once a renewal found the lock gone (another worker may run the job now) */
  readonly lockLost: boolean;
  /** extends the lock by lockDurationMs; false when the lock was lost */
  extendLock(): Promise<boolean>;
  /** moves to completed (throws if the lock was lost) */
  complete(result: object): Promise<void>;
  /** moves to failed; with retry the job goes back to its tenant's wait list while attempts remain */
  fail(err: Error, retry: boolean): Promise<void>;
}

export interface DispatchedJobHost {
  lockDurationMs: number;
  release(d: DispatchedJobImpl): void;
  requeued(tenantId: string): Promise<void>;
}

export class DispatchedJobImpl implements DispatchedJob {
  readonly completionId: string;
  readonly attemptsMade: number;
  readonly attemptsStarted: number;
  readonly deferredFailure: string | null;
  lockLost = false;
  private finished = false;

  constructor(
    readonly job: CompletionJob,
    readonly tenantId: string,
    readonly bullJob: Job,
    readonly token: string,
    private readonly host: DispatchedJobHost,
  ) {
    this.completionId = job.completionId;
    this.attemptsMade = bullJob.attemptsMade;
    this.attemptsStarted = bullJob.attemptsStarted;
    this.deferredFailure = (bullJob as unknown as { deferredFailure?: string }).deferredFailure ?? null;
  }

  async extendLock(): Promise<boolean> {
    if (this.finished || this.lockLost) return false;
    const r = await this.bullJob.extendLock(this.token, this.host.lockDurationMs);
    if (!r) this.lockLost = true;
    return !this.lockLost;
  }

  /** Gives the job up without touching Redis (its worker's heartbeat lapsed: peers may take it over). */
  markLost(): void {
    this.lockLost = true;
  }

  async complete(result: object): Promise<void> {
    this.finish();
    await this.bullJob.moveToCompleted(result, this.token, false);
  }

  async fail(err: Error, retry: boolean): Promise<void> {
    this.finish();
    const e = retry ? err : Object.assign(new UnrecoverableError(err.message), { stack: err.stack });
    await this.bullJob.moveToFailed(e, this.token, false);
    if (retry) await this.host.requeued(this.tenantId);
  }

  private finish(): void {
    if (this.finished) throw new Error(`job ${this.completionId} already finished`);
    this.finished = true;
    this.host.release(this);
  }
}
