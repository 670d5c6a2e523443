"""The loop detector ends real loops and leaves normal repetitive text alone."""

import random

from services.generations.loop_detector import LoopDetector


def feed_words(text: str, detector: LoopDetector | None = None) -> int | None:
    """Feeds text word by word; the character count at which a loop was found, or None."""
    detector = detector or LoopDetector(min_repeats=4, min_chars=300, max_period=500)
    seen = 0
    for piece in text.split(" "):
        piece += " "
        seen += len(piece)
        if detector.feed(piece):
            return seen
    return None


def test_a_repeated_phrase_is_a_loop_soon():
    at = feed_words("I am stuck in a loop. " * 100)
    assert at is not None and at < 400


def test_a_repeated_paragraph_is_a_loop():
    paragraph = (
        "The quarterly report shows revenue growth across all regions, with the strongest "
        "gains in the northern markets and a modest decline in the south. "
    )
    at = feed_words("Intro text here. " + paragraph * 6)
    assert at is not None and at < len(paragraph) * 5


def test_normal_prose_lists_tables_and_code_are_not_loops():
    rng = random.Random(7)
    words = "the a model answer stream token service queue reply user text data code list item value".split()
    prose = " ".join(rng.choice(words) for _ in range(3000))
    numbered = "".join(f"{i}. Item number {i} in the list\n" for i in range(1, 200))
    bullets = "".join(f"- {rng.choice(words)} {rng.choice(words)}\n" for _ in range(300))
    table = "| name | value |\n| --- | --- |\n" + "".join(f"| row{i} | {i * 7} |\n" for i in range(200))
    code = "\n".join(f"    result_{i} = compute(data[{i}], weight={i % 5})" for i in range(200))
    same_lines_few = "- item\n" * 4 + "done.\n"
    separator = "Heading\n" + "=" * 60 + "\nBody text follows here and goes on for a while.\n"
    for name, text in [
        ("prose", prose),
        ("numbered", numbered),
        ("bullets", bullets),
        ("table", table),
        ("code", code),
        ("few same lines", same_lines_few),
        ("separator", separator),
    ]:
        assert feed_words(text) is None, name


def test_thresholds_are_settings():
    strict = LoopDetector(min_repeats=2, min_chars=40, max_period=100)
    assert feed_words("ab cd ef gh ij kl. " * 4, strict) is not None
    lenient = LoopDetector(min_repeats=50, min_chars=5000, max_period=100)
    assert feed_words("ab cd ef gh ij kl. " * 40, lenient) is None
