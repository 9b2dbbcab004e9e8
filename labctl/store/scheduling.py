"""What a flush cycle does with the rows: journal them (moving old tails ahead of the ring), and compact.

Kept apart from :mod:`labctl.store.writer` (which owns the cycle, the locks and the file) because these are
the policies: which rows go to the journal, when a tail is journaled again, how much is compressed per
cycle, when an idle block's partial chunk is compressed.
"""

from __future__ import annotations

import numpy as np

from labctl.clock import real_elapsed_s
from labctl.store import journal as jr
from labctl.store.blocks import BlockWriter

#: Raw bytes of whole chunks compressed per cycle at most (gzip runs at ~50-100 MB/s): 64 channels
#: reaching a chunk boundary together are compacted over several cycles instead of one long one.
COMPACT_BUDGET_BYTES = 1 << 20


def journal_rows(blocks: list[BlockWriter], journal: jr.JournalWriter | None,
                 pending: list[tuple[BlockWriter, np.ndarray]]) -> tuple[int, int]:
    """Big appends straight to their compressed datasets; every other new row to the journal.

    Returns (tails journaled again, 1 if the ring could not take the rows and they were compressed).
    """
    parts = [(b, rest) for b, rows in pending if (rest := b.direct(rows)).shape[1]]
    if journal is None:
        return 0, 0  # a version-1 file: its blocks refuse rows before they get here
    # Tails whose records the ring will reach within half a lap are journaled again now, while
    # the space they move to is free; their old records are dropped by a later cycle's header.
    horizon = journal.head - journal.capacity // 2
    moving = [b for b in blocks if (s := b.oldest_seq()) is not None and s < horizon]
    n = sum(b.records_for(b.n_tail) for b in moving) + sum(b.records_for(rows.shape[1]) for b, rows in parts)
    if n > journal.free():
        # More than the ring can take without overwriting records still needed (far more channels
        # than it was sized for): compress those rows now, partial chunks and all.
        for b, rows in parts:
            b.tail_append(rows, np.full(rows.shape[1], journal.head, dtype=np.int64))
        for b in blocks:
            b.compact(b.n_tail)
        return 0, 1
    records = []
    seq = journal.head
    for b in moving:
        records.append(b.rejournal_records(seq))
        seq += len(records[-1])
    # One vectorised encoding per row width (usually one for all channels): per-block Python work
    # would make the cycle grow with the number of channels.
    by_width: dict[int, list[tuple[BlockWriter, np.ndarray]]] = {}
    for b, rows in parts:
        by_width.setdefault(rows.shape[0], []).append((b, rows))
    for group in by_width.values():
        counts = np.array([rows.shape[1] for _, rows in group])
        values = np.concatenate([rows for _, rows in group], axis=1) if len(group) > 1 else group[0][1]
        block_ids = np.repeat(np.array([b.index for b, _ in group], dtype=np.float64), counts)
        starts = np.array([b.first_row_to_journal() for b, _ in group], dtype=np.float64)
        offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        recs = jr.encode_many(block_ids, np.repeat(starts, counts) + offsets, values, seq)
        per_row = jr.records_per_row(values.shape[0])
        first = 0
        for (b, rows), k in zip(group, counts.tolist(), strict=True):
            b.tail_append(rows, seq + per_row * np.arange(first, first + k, dtype=np.int64))
            first += k
        records.append(recs)
        seq += len(recs)
    if records:
        journal.append(np.concatenate(records) if len(records) > 1 else records[0])
    return len(moving), 0


def compact(blocks: list[BlockWriter], finishing: set[str], idle_s: float) -> None:
    """Whole chunks within the cycle's budget (oldest journal records first); finished blocks, and idle
    ones whose partial chunk may be written (the doubling rule), whole."""
    budget = COMPACT_BUDGET_BYTES
    due = sorted((b for b in blocks if b.whole_chunk_rows()), key=lambda b: b.oldest_seq() or 0)
    for b in due:
        if budget <= 0:
            break
        k = b.whole_chunk_rows()
        b.compact(k)
        budget -= k * 8 * len(b.columns)
    now = real_elapsed_s()
    for b in blocks:
        if b.n_tail and (b.name in finishing or (now - b.last_append_s >= idle_s and b.may_write_partial())):
            b.compact(b.n_tail)
