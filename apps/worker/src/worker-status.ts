/** What the registry heartbeat reports of a worker: the jobs in progress and the frames rendered so far. */
export class WorkerStatus {
  private readonly jobs = new Set<string>();
  private frames = 0;

  /** Runs `work` with `jobId` counted as in progress. */
  async during<T>(jobId: string, work: () => Promise<T>): Promise<T> {
    this.jobs.add(jobId);
    try {
      return await work();
    } finally {
      this.jobs.delete(jobId);
    }
  }

  frameDone(): void {
    this.frames++;
  }

  snapshot(): { currentJob: string | null; framesDone: number } {
    return { currentJob: this.jobs.size ? [...this.jobs].sort().join(',') : null, framesDone: this.frames };
  }
}
