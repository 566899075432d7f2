"""Log STEPS steps of three metrics at a steady pace, print progress, finish, print the result."""

import sys
import time

import runyard

steps = int(sys.argv[1])
pace_s = float(sys.argv[2])
run = runyard.init(
    project="e2e", experiment="steady", name="steady", config={"steps": steps}, flush_interval_s=0.05
)
print(f"RUN {run.id}", flush=True)
for step in range(steps):
    run.log({"a": float(step), "b": step * 0.5, "c": -float(step)}, step=step)
    if step % 1000 == 0:
        print(f"STEP {step}", flush=True)
        time.sleep(pace_s)
result = run.finish()
print(
    f"DONE synced={result.synced} sent={result.points_sent} journaled={result.points_journaled}", flush=True
)
