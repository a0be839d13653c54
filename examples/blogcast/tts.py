"""The tts job: render one paragraph to speech with espeak-ng, into the artifact
paragraph.wav. The text goes to espeak-ng on stdin, never as an argument."""

import json
import os
import subprocess
import sys

job = json.load(sys.stdin)
number = job["paragraph"]
print("::runway " + json.dumps({"progress": 0.1, "message": f"paragraph {number}"}), flush=True)
wav = os.path.join(os.environ["RUNWAY_ARTIFACTS"], "paragraph.wav")
subprocess.run(["espeak-ng", "-w", wav, "--stdin"], input=job["text"], text=True, check=True)
length = float(subprocess.run(["soxi", "-D", wav], capture_output=True, text=True, check=True).stdout)
print(f"paragraph {number}: {length:.2f} s")
print("::runway " + json.dumps({"progress": 1.0, "output": {"paragraph": number, "seconds": round(length, 3)}}))
