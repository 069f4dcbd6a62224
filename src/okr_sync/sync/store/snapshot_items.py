"""Snapshot explanations stored apart: one ``kr_items`` row per owner and content hash.

A snapshot document names each owner's row (``explain_refs``) instead of holding every
KR's items: a pass writes rows only for the owners whose explanation changed, an
untouched owner names the row an earlier snapshot wrote, and a reader reads only the
owners it needs. Documents stored before keep ``explain`` inline; both are read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Mapping
from itertools import chain, repeat
from typing import Any

import sqlalchemy as sa

from okr_sync.sync.store.base import StoreOps, chunks, to_jsonable
from okr_sync.sync.store.records import InvalidRecordError, NotFoundError
from okr_sync.sync.store.tables import kr_item_ids, kr_items, snapshots

#: ``kr_item_ids`` rows inserted per statement.
ID_BATCH = 2000

#: The ``issue_id`` of the row marking a ``kr_items`` row as indexed: a row without it
#: (written by a process predating the index, still running after ``db upgrade``) has
#: ids nobody wrote, so its absence from the index says nothing.
INDEXED = ""

#: Up to this many issue ids, the ids index is asked for them (one primary-key lookup
#: per row and id); past it, for every id of the rows a snapshot names (one range per
#: row), and the ids are matched here: a resync's thousands of ids times 400 rows
#: would be millions of lookups. (At 5,000 issues and 400 KRs on SQLite the two cost
#: the same near 300 ids.)
LOOKUP_IDS = 200

#: The JSON entry of an owner whose explanation is a stored row, named by its hash.
KEPT = "$kept"

#: The document key naming each owner's ``kr_items`` row in place of inline ``explain``.
EXPLAIN_REFS = "explain_refs"
#: Beside the references, each owner's reasons: a pass tells whether a stored row is
#: still exact for an untouched owner without decoding its items.
EXPLAIN_REASONS = "explain_reasons"
#: Explanation rows encoded and written at once when a snapshot is saved.
ITEM_BATCH = 10


#: Snapshot layouts whose explanations are stored apart (2: items as objects, 3: as rows).
SPLIT_VERSIONS = (2, 3)


def split_explain(document: Mapping[str, Any]
                   ) -> tuple[dict[str, Any], dict[tuple[str, str], Any]]:
    """``document`` with its explanations replaced by per-owner content hashes, and the
    rows those hashes name. Documents of another layout keep theirs inline."""
    explain = document.get("explain")
    if document.get("version") not in SPLIT_VERSIONS or not isinstance(explain, Mapping):
        return to_jsonable(document), {}
    stored = to_jsonable({key: value for key, value in document.items() if key != "explain"})
    refs: dict[str, str] = {}
    reasons: dict[str, list[str]] = {}
    rows: dict[tuple[str, str], Any] = {}
    for owner, entry in explain.items():
        if not isinstance(owner, str):
            raise InvalidRecordError(f"JSON object keys must be strings, got {owner!r}")
        if isinstance(entry, Mapping) and isinstance(entry.get(KEPT), str):
            # Equal to a row an earlier snapshot stored (the one this pass started from).
            refs[owner] = entry[KEPT]
            reasons[owner] = to_jsonable(list(entry.get("reasons") or ()))
            continue
        plain, text = _canonical(entry)
        reasons[owner] = list(plain.get("reasons") or ()) if isinstance(plain, dict) else []
        digest = hashlib.sha256(text.encode()).hexdigest()
        refs[owner] = digest
        rows[(owner, digest)] = plain
    stored[EXPLAIN_REFS] = refs
    stored[EXPLAIN_REASONS] = reasons
    return stored, rows


#: The types a JSON scalar is written as (a subclass takes the slow path).
_SCALARS = frozenset((str, int, float, bool, type(None)))


def _plain(entry: Any) -> bool:
    """Whether ``entry`` is a dict with string keys whose values are JSON scalars, lists
    of them, or lists of such lists: what :meth:`Explanation.to_json` writes. Checked by
    C-level maps over the types, no Python call per item; anything else (a tuple, a
    nested dict, a key ``json.dumps`` would quietly make a string) is not."""
    if type(entry) is not dict or not set(map(type, entry)) <= {str}:
        return False
    for value in entry.values():
        if type(value) is list:
            kinds = set(map(type, value))
            if list in kinds:
                if len(kinds) > 1:
                    return False
                kinds = set(chain.from_iterable(map(map, repeat(type), value)))
            if not kinds <= _SCALARS:
                return False
        elif type(value) not in _SCALARS:
            return False
    return True


def _canonical(entry: Any) -> tuple[Any, str]:
    """``entry`` as JSON values and its canonical text (what its content hash is of).

    An entry as :meth:`PassSnapshot.to_json` writes it is plain JSON already: the text
    is then written in one pass of the C encoder, which also refuses non-finite numbers,
    rather than after a walk of every item in Python (a pass writes tens of thousands).
    Anything else is converted (tuples become lists, which the ids index reads) or
    refused (a non-string key) by :func:`to_jsonable` first.
    """
    if _plain(entry):
        try:
            return entry, json.dumps(entry, sort_keys=True, separators=(",", ":"),
                                     allow_nan=False)
        except ValueError:
            pass  # a non-finite number: refused below, with the reason
    plain = to_jsonable(entry)
    return plain, json.dumps(plain, sort_keys=True, separators=(",", ":"))


def referenced_item_keys(document: Mapping[str, Any]) -> set[tuple[str, str]]:
    """The ``kr_items`` rows a stored document names (none for an inline one)."""
    refs = document.get(EXPLAIN_REFS)
    return set(refs.items()) if isinstance(refs, dict) else set()


def item_ids(entry: Any) -> set[str]:
    """The issue ids a stored explanation (JSON) holds items of."""
    items = entry.get("items") if isinstance(entry, Mapping) else None
    ids = set()
    for item in items or ():
        # Version 3 stores an item as a row, its id first (a tuple before it is stored);
        # version 2 as an object.
        ident = (item[0] if isinstance(item, list | tuple) and item
                 else item.get("id") if isinstance(item, Mapping) else None)
        if ident is not None:
            ids.add(str(ident))
    return ids


class SnapshotItemOps(StoreOps):
    #: ``kr_items`` rows this object has written and read (tests and benchmarks check a
    #: pass writes only the owners whose items changed and reads only those it needs).
    kr_item_rows_written: int = 0
    kr_item_rows_read: int = 0
    #: ``kr_item_ids`` rows the ids index answered with (markers aside).
    kr_item_id_rows_read: int = 0

    def _write_items(self, conn: sa.Connection, rows: Mapping[tuple[str, str], Any]) -> None:
        """Insert the rows not stored yet: an owner whose items did not change names
        the row an earlier snapshot wrote."""
        if not rows:
            return
        present: set[tuple[str, str]] = set()
        for part in chunks(sorted({digest for _, digest in rows})):
            present.update(
                (row.owner, row.hash) for row in conn.execute(
                    sa.select(kr_items.c.owner, kr_items.c.hash).where(kr_items.c.hash.in_(part))
                )
            )
        missing = [{"owner": owner, "hash": digest, "document": entry}
                   for (owner, digest), entry in rows.items() if (owner, digest) not in present]
        if missing:
            conn.execute(sa.insert(kr_items), missing)
            self.kr_item_rows_written += len(missing)
            self._write_item_ids(conn, missing)

    @staticmethod
    def _write_item_ids(conn: sa.Connection, rows: Iterable[Mapping[str, Any]]) -> None:
        """Index the issue ids of new ``kr_items`` rows and mark each indexed, a batch at
        a time: a first pass writes every KR's items, and one list of all their ids
        would raise peak memory.

        A row's ids left behind (its ``kr_items`` row deleted by a process predating
        the index, or by hand) are replaced: the same content stored again would
        otherwise fail every later pass on the primary key."""
        stale = sa.delete(kr_item_ids).where(kr_item_ids.c.owner == sa.bindparam("o"),
                                             kr_item_ids.c.hash == sa.bindparam("h"))
        keys: list[dict[str, str]] = []
        batch: list[dict[str, str]] = []
        for row in rows:
            owner, digest = row["owner"], row["hash"]
            keys.append({"o": owner, "h": digest})
            batch += ({"owner": owner, "hash": digest, "issue_id": issue_id}
                      for issue_id in sorted(item_ids(row["document"]) | {INDEXED}))
            if len(batch) >= ID_BATCH:
                conn.execute(stale, keys)
                conn.execute(sa.insert(kr_item_ids), batch)
                keys, batch = [], []
        if batch:
            conn.execute(stale, keys)
            conn.execute(sa.insert(kr_item_ids), batch)

    def _write_explained(self, conn: sa.Connection, document: Mapping[str, Any]
                         ) -> dict[str, Any]:
        """Write the ``kr_items`` rows of ``document``'s explanations; the document to
        store, naming them. Each owner's entry is encoded when its turn comes and the
        rows are written :data:`ITEM_BATCH` owners at a time: the explanations are most
        of a snapshot, and a lazy ``explain`` mapping then never exists whole as JSON."""
        explain, version = document.get("explain"), document.get("version")
        if version not in SPLIT_VERSIONS or not isinstance(explain, Mapping):
            stored, rows = split_explain(document)
            self._write_items(conn, rows)
            return stored
        stored, _ = split_explain({**{k: v for k, v in document.items() if k != "explain"},
                                   "explain": {}})
        batch: dict[tuple[str, str], Any] = {}
        for owner in explain:
            part, rows = split_explain({"version": version, "explain": {owner: explain[owner]}})
            stored[EXPLAIN_REFS].update(part[EXPLAIN_REFS])
            stored[EXPLAIN_REASONS].update(part[EXPLAIN_REASONS])
            batch.update(rows)
            if len(batch) >= ITEM_BATCH:
                self._write_items(conn, batch)
                batch = {}
        self._write_items(conn, batch)
        return stored

    def _read_items(self, conn: sa.Connection, refs: Mapping[str, str],
                    owners: Iterable[str] | None = None) -> dict[str, Any]:
        """Per owner (all of ``refs``, or those of ``owners``), its stored explanation."""
        wanted = {owner: refs[owner] for owner in (refs if owners is None else owners)
                  if owner in refs}
        by_key: dict[tuple[str, str], Any] = {}
        for part in chunks(sorted(set(wanted.values()))):
            for row in conn.execute(
                sa.select(kr_items.c.owner, kr_items.c.hash, kr_items.c.document)
                .where(kr_items.c.hash.in_(part))
            ):
                by_key[(row.owner, row.hash)] = row.document
        found = {owner: by_key[(owner, digest)] for owner, digest in wanted.items()
                 if (owner, digest) in by_key}
        self.kr_item_rows_read += len(found)
        return found

    def snapshot_explanations(self, snapshot_id: int,
                              owners: Iterable[str] | None = None) -> dict[str, Any]:
        """The stored explanations (JSON) of snapshot ``snapshot_id``: all, or only those
        of ``owners``; reads only those owners' rows when they are stored apart."""
        doc = snapshots.c.document
        with self._connection() as conn:
            row = conn.execute(
                sa.select(doc[EXPLAIN_REFS].label("refs"), doc["explain"].label("explain"))
                .where(snapshots.c.id == snapshot_id)
            ).first()
            if row is None:
                raise NotFoundError(f"no snapshot {snapshot_id}")
            if isinstance(row.refs, dict):
                return self._read_items(conn, row.refs, owners)
        explain = row.explain if isinstance(row.explain, dict) else {}
        return dict(explain) if owners is None else {
            owner: explain[owner] for owner in owners if owner in explain}

    def snapshot_item_refs(self, snapshot_id: int) -> dict[str, tuple[str, tuple[str, ...]]]:
        """Per owner, the hash of its stored explanation row and its reasons (empty for a
        snapshot holding its explanations inline)."""
        doc = snapshots.c.document
        with self._connection() as conn:
            row = conn.execute(
                sa.select(doc[EXPLAIN_REFS].label("refs"),
                          doc[EXPLAIN_REASONS].label("reasons"))
                .where(snapshots.c.id == snapshot_id)
            ).first()
        if row is None or not isinstance(row.refs, dict) or not isinstance(row.reasons, dict):
            return {}
        return {owner: (digest, tuple(row.reasons.get(owner) or ()))
                for owner, digest in row.refs.items()}

    def snapshot_explained_owners(self, snapshot_id: int) -> list[str]:
        """The owners snapshot ``snapshot_id`` holds explanations for, without their items
        when they are stored apart."""
        doc = snapshots.c.document
        with self._connection() as conn:
            refs = conn.execute(
                sa.select(doc[EXPLAIN_REFS]).where(snapshots.c.id == snapshot_id)
            ).scalar_one_or_none()
        if isinstance(refs, dict):
            return list(refs)
        return list(self.snapshot_explanations(snapshot_id))

    def snapshot_owners_holding(self, snapshot_id: int, issue_ids: Collection[str],
                                owners: Collection[str] | None = None) -> set[str] | None:
        """The owners (all, or those of ``owners``) whose explanation in snapshot
        ``snapshot_id`` holds an item of one of ``issue_ids``, read from the ids index
        without decoding any items.

        None when the index cannot tell: the snapshot holds its explanations inline, or
        a row it names was never indexed (stored by a process predating the index).
        The caller then reads the items. Only the asked owners' rows are read: a pass
        asks about the few owners it could reuse, not every owner's thousands of ids."""
        doc = snapshots.c.document
        with self._connection() as conn:
            refs = conn.execute(
                sa.select(doc[EXPLAIN_REFS]).where(snapshots.c.id == snapshot_id)
            ).scalar_one_or_none()
            if not isinstance(refs, dict):
                return None
            if owners is not None:
                refs = {owner: refs[owner] for owner in owners if owner in refs}
            wanted = set(issue_ids) - {INDEXED}
            if not wanted or not refs:
                return set()
            # Only the rows this snapshot names, by primary key (hash, issue_id): not
            # every stored version of each owner that ever held one of the ids.
            look = [INDEXED, *sorted(wanted)] if len(wanted) <= LOOKUP_IDS else None
            indexed: set[str] = set()
            holders: set[str] = set()
            for digests in chunks(sorted(set(refs.values()))):
                query = sa.select(kr_item_ids.c.owner, kr_item_ids.c.hash,
                                  kr_item_ids.c.issue_id).where(kr_item_ids.c.hash.in_(digests))
                if look is not None:
                    query = query.where(kr_item_ids.c.issue_id.in_(look))
                for row in conn.execute(query):
                    if refs.get(row.owner) != row.hash:
                        continue  # another owner's row of the same content
                    if row.issue_id == INDEXED:
                        indexed.add(row.owner)
                    else:
                        self.kr_item_id_rows_read += 1
                        if row.issue_id in wanted:
                            holders.add(row.owner)
        return holders if indexed.issuperset(refs) else None
