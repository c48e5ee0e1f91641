"""Writing a scenario file, shared by the generators whose command line is
`[--focused] SEED N OUT.jsonl` (foreman, history and UI scenarios). Standard library only."""
import json
import random


def write_scenarios(argv: list, usage: str, focused: list, gen_scenario, prefix: str) -> None:
    """One scenario per line of OUT: with --focused the hand-written `focused` ones
    first, then N from gen_scenario(rng, "<prefix><SEED>-<i>"). Same arguments, same bytes."""
    with_focused = "--focused" in argv
    argv = [a for a in argv if a != "--focused"]
    if len(argv) != 4:
        raise SystemExit(usage)
    seed, n, out = int(argv[1]), int(argv[2]), argv[3]
    rng = random.Random(seed)
    scenarios = (focused if with_focused else []) + [gen_scenario(rng, f"{prefix}{seed}-{i + 1}") for i in range(n)]
    with open(out, "w") as f:
        f.writelines(json.dumps(sc, separators=(",", ":")) + "\n" for sc in scenarios)
