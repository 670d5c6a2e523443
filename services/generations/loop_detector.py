"""Detects a model stuck repeating itself: the tail of the text is one unit repeated.

The tail is periodic with period p when its last p*r characters are r copies of its last
p characters. Candidate periods come from earlier occurrences of the last few characters
(str.rfind runs in C), so a check costs microseconds; checks run every `check_every` new
characters. Lists, tables and code repeat structure but rarely whole identical lines many
times in a row, which is why a loop needs both `min_repeats` copies and `min_chars` of
repeated text: "- item\\n" x 4 is 28 characters and passes; a paragraph said 4 times, or a
phrase said 40 times, is a loop."""

KEY = 12  # characters matched to find candidate periods
MAX_CANDIDATES = 16


class LoopDetector:
    __slots__ = ("min_repeats", "min_chars", "max_period", "window", "tail", "pending", "check_every")

    def __init__(self, min_repeats: int = 4, min_chars: int = 300, max_period: int = 500, check_every: int = 32):
        self.min_repeats = min_repeats
        self.min_chars = min_chars
        self.max_period = max_period
        self.window = max(max_period * min_repeats, min_chars) + KEY
        self.tail = ""
        self.pending = 0
        self.check_every = check_every

    def feed(self, text: str) -> bool:
        """Adds text; True once the tail is a loop."""
        self.tail += text
        self.pending += len(text)
        if self.pending < self.check_every:
            return False
        self.pending = 0
        if len(self.tail) > self.window:
            self.tail = self.tail[-self.window :]
        return self.is_loop(self.tail)

    def is_loop(self, tail: str) -> bool:
        n = len(tail)
        if n < self.min_chars:
            return False
        key = tail[-KEY:]
        end = n - 1  # search strictly before the final occurrence
        for _ in range(MAX_CANDIDATES):
            idx = tail.rfind(key, 0, end)
            if idx < 0:
                return False
            period = n - KEY - idx
            if period > self.max_period:
                return False
            repeats = max(self.min_repeats, -(-self.min_chars // period))
            span = period * repeats
            if span <= n and tail[-span:] == tail[-period:] * repeats:
                return True
            end = idx + KEY - 1
        return False
