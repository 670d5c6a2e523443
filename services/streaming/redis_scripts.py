"""The Redis stream log's server-side scripts (services/streaming/redis_log.py), what they
answer, and its key names. One script call writes a generation's batch of frames, its
content and its seqs together, so a snapshot is always consistent with the frames."""

SAFETY_TTL_MS = 24 * 3600 * 1000  # keys of a generation nobody expires (crashes) go after a day

# Results of the append script
APPLIED, DUPLICATE, CONFLICT, LOST, SEALED, NOT_CONTIGUOUS = 1, 2, -1, -2, -3, -4

APPEND_LUA = r"""
-- KEYS: 1 stream, 2 content, 3 meta
-- ARGV: 1 maxlen, 2 channel, 3 force, 4 has base, 5 base content, 6 base chunk seq,
--       7 text of this group's chunks, 8 seq of its last chunk (0: none), 9 safety ttl ms,
--       then seq, type, data for each frame, in seq order
local meta = KEYS[3]
local n = #ARGV
local first = tonumber(ARGV[10])
local last = tonumber(ARGV[n - 2])
for i = 13, n, 3 do  -- seqs must follow each other: check before writing anything
  if tonumber(ARGV[i]) ~= tonumber(ARGV[i - 3]) + 1 then return -4 end
end
local ls = redis.call('HGET', meta, 'ls')
if ls then
  ls = tonumber(ls)
  if first <= ls then
    local e = redis.call('XRANGE', KEYS[1], last .. '-1', last .. '-1')
    if e[1] and e[1][2][4] == ARGV[n] then return 2 end
    return -1
  end
  if ARGV[3] ~= '1' and redis.call('HEXISTS', meta, 'sealed') == 1 then return -3 end
  -- frames missing before this one (Redis restarted from a persistence file a little
  -- behind): rebuild like a lost log, so readers get a snapshot instead of a hole
  if first > ls + 1 and ARGV[4] ~= '1' then return -2 end
elseif first > 1 and ARGV[4] ~= '1' then
  return -2
end
if ARGV[4] == '1' then
  redis.call('SET', KEYS[2], ARGV[5])
  redis.call('HSET', meta, 'cs', ARGV[6])
end
for i = 10, n, 3 do
  redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], ARGV[i] .. '-1', 't', ARGV[i + 1], 'd', ARGV[i + 2])
end
if ARGV[8] ~= '0' then
  redis.call('APPEND', KEYS[2], ARGV[7])
  redis.call('HSET', meta, 'cs', ARGV[8])
end
redis.call('HSET', meta, 'ls', last)
if ARGV[n - 1] == 'done' then redis.call('HSET', meta, 'fin', 1) end
if not ls or first == 1 then
  redis.call('HSETNX', meta, 'cs', 0)
  for k = 1, 3 do redis.call('PEXPIRE', KEYS[k], ARGV[9]) end
end
local note = {ARGV[10]}
for i = 10, n, 3 do note[#note + 1] = ARGV[i + 1] .. '\t' .. ARGV[i + 2] end
redis.call('PUBLISH', ARGV[2], table.concat(note, '\n'))
return 1
"""

SEAL_LUA = """
local m = redis.call('HMGET', KEYS[3], 'ls', 'cs')
if not m[1] then return false end
redis.call('HSET', KEYS[3], 'sealed', 1)
return {redis.call('GET', KEYS[2]) or '', m[2] or '0', m[1]}
"""


class Keys:
    """The Redis names of one deployment (prefix `P`): a generation's keys and channel
    (services/streaming/redis_log.py describes them), and keys outside any generation."""

    __slots__ = ("prefix",)

    def __init__(self, prefix: str):
        self.prefix = prefix

    def of(self, generation_id: str) -> tuple[str, str, str]:
        """Stream, content, meta."""
        base = f"{self.prefix}{{{generation_id}}}"
        return f"{base}:s", f"{base}:c", f"{base}:m"

    def channel(self, generation_id: str) -> bytes:
        return f"{self.prefix}{{{generation_id}}}:n".encode()

    def key(self, *parts: str) -> str:
        """A key of this deployment outside any generation (leases, liveness, kicks)."""
        return self.prefix + ":".join(parts)
