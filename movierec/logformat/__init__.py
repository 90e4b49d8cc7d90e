"""The site's log format (SPEC section 1), in one place: reading it, checking it, writing it.

- `reference`: the reference parser, obviously correct and slow: `Kind`, `Event`, `REASONS`
  (why a line is rejected) and `parse_line`.
- `batch` (with its numba kernel in `batch_kernel` and `batch_fields`): `parse_batch`, the fast
  parser of whole batches, which must give exactly the reference's answers; `xxhash` is the
  XXH64 line hash it stores; `numba_cache` keys the compiled kernel's cache by its sources.
- `writer`: writes lines as the site does (used by the simulator).
- `strict`: the SPEC's patterns on their own, the simulator's second opinion on its dirt,
  deliberately sharing nothing with the parsers.
"""
