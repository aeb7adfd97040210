// A tiny explicit state machine (after grpc-js' transitionToState): every transition names
// the states it may leave, and anything else is a bug that throws instead of silently
// corrupting pool bookkeeping.
export class StateMachine<S extends string> {
  private current: S;

  constructor(
    initial: S,
    private readonly name: string,
    private readonly onChange: (from: S, to: S) => void = () => {},
  ) {
    this.current = initial;
  }

  get state(): S {
    return this.current;
  }

  is(...states: S[]): boolean {
    return states.includes(this.current);
  }

  /** Moves to `to` if the machine is in one of `from`; throws otherwise. */
  transition(from: readonly S[], to: S): void {
    if (!from.includes(this.current)) {
      throw new Error(`${this.name}: unexpected transition ${this.current} -> ${to}`);
    }
    const prev = this.current;
    this.current = to;
    this.onChange(prev, to);
  }
}
