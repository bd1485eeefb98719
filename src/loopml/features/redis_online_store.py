"""The production online store: Redis, one hash per (namespace, entity key) with fields ts, c, v."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from loopml.errors import StoreUnavailable
from loopml.features.online_store import Stored

# Keeps the row with the highest (ts, created) per key, in one round trip for a whole batch of keys.
_UPSERT = """
for i = 1, #KEYS do
  local b = (i - 1) * 3
  local ts = tonumber(ARGV[b + 1])
  local c = tonumber(ARGV[b + 2])
  local cur = redis.call('HMGET', KEYS[i], 'ts', 'c')
  local cts = tonumber(cur[1])
  if (not cts) or ts > cts or (ts == cts and c >= tonumber(cur[2])) then
    redis.call('HSET', KEYS[i], 'ts', ARGV[b + 1], 'c', ARGV[b + 2], 'v', ARGV[b + 3])
  end
end
return #KEYS
"""
BATCH = 2000


class RedisOnlineStore:
    def __init__(self, url: str) -> None:
        try:
            import redis
        except ImportError:  # pragma: no cover - the redis extra is part of dev
            raise StoreUnavailable(
                "the Redis online store needs the redis client: pip install 'loopml[redis]'"
            ) from None
        self._redis: Any = redis.Redis.from_url(url, socket_timeout=10)
        self._errors = redis.RedisError
        self.name = url.split("@")[-1] if "@" in url else url  # never keep a password in a record
        self._upsert = self._redis.register_script(_UPSERT)

    @staticmethod
    def _key(namespace: str, key: bytes) -> bytes:
        return b"lm:" + namespace.encode() + b":" + key

    def write(
        self,
        namespace: str,
        keys: Sequence[bytes],
        times: Sequence[int],
        created: Sequence[int],
        values: Sequence[bytes],
    ) -> None:
        try:
            pipe = self._redis.pipeline(transaction=False)
            for start in range(0, len(keys), BATCH):
                stop = start + BATCH
                args: list[Any] = []
                for ts, c, v in zip(times[start:stop], created[start:stop], values[start:stop], strict=True):
                    args += (ts, c, v)
                self._upsert(keys=[self._key(namespace, k) for k in keys[start:stop]], args=args, client=pipe)
            pipe.execute()
        except self._errors as error:
            raise StoreUnavailable(f"the Redis online store failed: {error}") from None

    def read(self, lookups: Sequence[tuple[str, Sequence[bytes]]]) -> list[list[Stored | None]]:
        try:
            pipe = self._redis.pipeline(transaction=False)
            for namespace, keys in lookups:
                for key in keys:
                    pipe.hmget(self._key(namespace, key), "ts", "v")
            answers = iter(pipe.execute())
        except self._errors as error:
            raise StoreUnavailable(f"the Redis online store failed: {error}") from None
        out: list[list[Stored | None]] = []
        for _namespace, keys in lookups:
            row: list[Stored | None] = []
            for _key in keys:
                ts, value = next(answers)
                row.append(None if ts is None else (int(ts), value))
            out.append(row)
        return out

    def close(self) -> None:
        self._redis.close()
