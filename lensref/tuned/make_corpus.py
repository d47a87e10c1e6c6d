"""Write the tuned lens's default training text: what the model itself writes from a varied set of openings.

    python -m lensref.tuned.make_corpus [--out lensref/tuned/model_text.json] [--samples 3] [--new-tokens 150]

The lesson reads short, plain English sentences (facts, places, people, colours, counting); the tuned lens
should learn to translate states of text like that, not of programming documentation. Sampling the default
model from openings of that kind gives such text with no download, and its states are exactly the ones the
lens will read. The openings deliberately avoid the lesson's own prompts (no "... is located in the city
of", no "The capital of ... is"), so the lesson never reads a sentence the lens was trained on.

Sampling is seeded; the result is committed (``model_text.json``, about 45,000 tokens) because generating
it takes a few minutes of CPU, too long for every book build. :mod:`lensref.tuned.data` reads it.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from ..models import LoadedModel

DEFAULT_OUT = Path(__file__).with_name("model_text.json")

# Each opening starts one "topic" of the corpus; held-out text is whole openings the lens never trained on.
OPENINGS = [
    # places and travel
    "The old harbour town is famous for",
    "Last summer we travelled by train through",
    "The river that flows through the valley",
    "In the centre of the village there is",
    "The museum on the main square",
    "Our hotel was close to the",
    "The mountains in the north of the country",
    "The island can only be reached by",
    "Tourists who visit the city usually",
    "The bridge was built in the year",
    "The market opens every Saturday and sells",
    "From the top of the hill you can see",
    # history and people
    "The king ruled the country for",
    "During the war, the factory",
    "The famous painter was born in",
    "The scientist spent most of her life",
    "The first railway in the region",
    "The explorer set sail from",
    "The old castle was built by",
    "The composer wrote his first symphony",
    "In ancient times, people believed that",
    "The president gave a speech about",
    "The writer is best known for her novel",
    "The empire reached its largest size",
    # science and nature
    "Water boils at a temperature of",
    "The largest animal that ever lived is",
    "Plants need sunlight because",
    "The planet closest to the sun",
    "A healthy diet should include",
    "Bees are important because they",
    "The human heart pumps blood",
    "When the weather gets colder, birds",
    "The moon goes around the earth",
    "The forest is home to many animals, such as",
    "Volcanoes form when",
    "Light travels faster than",
    # everyday life
    "Every morning, my grandmother",
    "The best way to cook rice is",
    "On weekends I like to",
    "My favourite colour has always been",
    "The children were playing in the",
    "She opened the door and saw",
    "He bought a new car because",
    "The recipe calls for two cups of",
    "After school, the students",
    "The shop on the corner sells",
    "My brother works as a",
    "We painted the kitchen a",
    # stories
    "Once upon a time, in a small village,",
    "The dragon looked down at the knight and",
    "It was a dark and stormy night when",
    "The little girl found a key under",
    "The cat jumped onto the table and",
    "When the clock struck midnight,",
    "The detective looked at the clues and",
    "The ship sailed into the storm, and",
    "Nobody in the town knew that",
    # lists, numbers, time
    "The days of the week are",
    "The seasons of the year are",
    "Count from one to ten:",
    "The primary colours are",
    "The months of the year begin with",
    "The first three letters of the alphabet",
    "The train leaves at seven o'clock and arrives",
    "There are twelve months in a year, and",
    "The price of the ticket was",
    # sport, music, food
    "The football match ended with",
    "The orchestra played a piece by",
    "The most popular sport in the country is",
    "Her favourite fruit is",
    "The band released their first album",
    "The restaurant is known for its",
    "The team won the championship after",
    "For breakfast we usually eat",
    "The song was written by",
    # language, school, work
    "The word for 'house' in French is",
    "In the English language, the letter",
    "The teacher asked the class to",
    "The company was founded in",
    "The new library has more than",
    "The doctor told him to",
    "The newspaper reported that",
    "Students who study hard",
    "The book is divided into",
    # geography and facts (not the lesson's prompts)
    "The longest river in Africa is",
    "The official language of Brazil is",
    "The Great Barrier Reef is",
    "Mount Kilimanjaro is the highest mountain in",
    "The Amazon rainforest covers",
    "The Sahara is a desert in",
    "Tokyo is a city where",
    "Venice is famous for its",
    "Canada is a large country with",
    "The Pacific Ocean is",
    "The Statue of Liberty was a gift from",
    "The pyramids of Egypt were built",
    # explanations and opinions
    "The main reason people move to cities is",
    "A good friend is someone who",
    "The internet has changed the way",
    "It is important to sleep well because",
    "Learning a new language helps you",
    "The biggest problem with cars is",
    "Music can make people feel",
    "Reading books is useful because",
    "A simple way to save money is",
]

BATCH = 64


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


@torch.no_grad()
def generate(
    lm: LoadedModel, openings: list[str], samples: int, new_tokens: int, seed: int = 0
) -> dict[str, list[str]]:
    """``{opening: [text, ...]}``: ``samples`` continuations per opening (opening included), sampled with a fixed seed."""
    tok = lm.tokenizer
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    generating: Any = lm.model  # a transformers model: generate() is not in nn.Module's type
    torch.manual_seed(seed)
    jobs = [o for o in openings for _ in range(samples)]
    out: dict[str, list[str]] = {o: [] for o in openings}
    for first in range(0, len(jobs), BATCH):
        batch = jobs[first : first + BATCH]
        enc = tok(batch, return_tensors="pt", padding=True)
        ids = generating.generate(
            **enc,
            max_new_tokens=new_tokens,
            do_sample=True,
            temperature=0.8,
            top_p=0.95,
            repetition_penalty=1.15,
            pad_token_id=tok.pad_token_id,
        )
        for opening, row in zip(batch, ids[:, enc["input_ids"].shape[1] :]):
            text = tok.decode(row, skip_special_tokens=True)
            out[opening].append((opening + text).strip())
        print(f"  {min(first + BATCH, len(jobs))}/{len(jobs)} samples", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    """Generate the corpus's texts with the model and write them to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--samples", type=int, default=3, help="continuations per opening")
    parser.add_argument("--new-tokens", type=int, default=150, help="tokens generated per continuation")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from ..models import load_model

    torch.set_num_threads(1)  # on a shared 2-core machine one thread is several times faster than two
    lm = load_model()
    start = time.perf_counter()
    texts = generate(lm, OPENINGS, args.samples, args.new_tokens, args.seed)
    n_tokens = sum(len(lm.tokenizer.encode(t, add_special_tokens=False)) for ts in texts.values() for t in ts)
    payload = {
        "model": lm.name,
        "how": (
            f"python -m lensref.tuned.make_corpus --samples {args.samples} --new-tokens {args.new_tokens} "
            f"--seed {args.seed} (temperature 0.8, top-p 0.95, repetition penalty 1.15)"
        ),
        "n_tokens": n_tokens,
        "texts": texts,
    }
    _atomic_write(Path(args.out), json.dumps(payload, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {n_tokens} tokens from {len(texts)} openings to {args.out} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
