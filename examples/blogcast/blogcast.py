"""The blogcast job: split a post into paragraphs and render each as a `tts` child (first
run), then join their WAV files into episode.wav (RUNWAY_PHASE=join)."""

import json
import os
import re
import subprocess
import sys


def message(**fields):
    """A line to runway: progress, output or children to spawn."""
    print("::runway " + json.dumps(fields), flush=True)


def split():
    post = json.load(sys.stdin)
    paragraphs = [part.strip() for part in re.split(r"\n\s*\n", post["text"]) if part.strip()]
    if not paragraphs:
        sys.exit("the post has no text to read")
    # The key is the paragraph's number: a retried split finds the children it made before.
    message(spawn=[
        {"type": "tts", "key": str(number), "input": {"paragraph": number, "text": text}}
        for number, text in enumerate(paragraphs, 1)
    ])
    print(f"{post['title']}: {len(paragraphs)} paragraphs to render")


def seconds(path):
    answer = subprocess.run(["soxi", "-D", path], capture_output=True, text=True, check=True)
    return float(answer.stdout)


def join():
    post = json.load(sys.stdin)
    with open(os.environ["RUNWAY_CHILDREN"]) as manifest:
        children = json.load(manifest)["children"]
    children.sort(key=lambda child: int(child["key"]))
    parts = []
    for child in children:
        wav = [artifact for artifact in child["artifacts"] if artifact["name"] == "paragraph.wav"]
        if child["status"] != "succeeded" or not wav:
            sys.exit(f"paragraph {child['key']} has no audio ({child['status']})")
        parts.append(wav[0]["path"])
    episode = os.path.join(os.environ["RUNWAY_ARTIFACTS"], "episode.wav")
    message(progress=0.5, message=f"joining {len(parts)} paragraphs")
    # sox concatenates files given one after the other; one part alone is copied.
    subprocess.run(["sox", *parts, episode], check=True)
    length = seconds(episode)
    print(f"{post['title']}: {len(parts)} paragraphs, {length:.1f} s")
    message(output={"title": post["title"], "paragraphs": len(parts), "seconds": round(length, 3)})


if __name__ == "__main__":
    if os.environ.get("RUNWAY_PHASE") == "join":
        join()
    else:
        split()
