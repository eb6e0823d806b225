/** Time is an input: engine code reads it through a Clock so tests can drive it. */
export interface Clock {
  now_ms(): number;
}

export const systemClock: Clock = { now_ms: () => Date.now() };

/** A clock that only moves when told to; for tests and simulations. */
export class ManualClock implements Clock {
  constructor(private t_ms = 1_700_000_000_000) {}
  now_ms(): number {
    return this.t_ms;
  }
  advance(ms: number): void {
    this.t_ms += ms;
  }
  set(ms: number): void {
    this.t_ms = ms;
  }
}
