"""``FileStore``: the Store protocol over one directory (see the package docstring).

Its parts live in ``_puts``, ``_journal``, ``_claims``, ``_leases`` and ``_reads`` (shared
helpers in ``_base``); this class only puts them together.
"""

from __future__ import annotations

from typing import Any

from leaseq.stores.file._claims import Claims
from leaseq.stores.file._core import Core
from leaseq.stores.file._journal import Batches
from leaseq.stores.file._leases import Leases
from leaseq.stores.file._reads import Reads

__all__ = ["FileStore"]


class FileStore(Batches, Claims, Leases, Reads):
    """One handle on a ``file://`` directory. Handles of one directory in one process
    share a ``Core`` (caches, notifier); ``close`` closes only this handle."""

    def __init__(self, core: Core, codec: Any, url: str) -> None:
        super().__init__(core, codec, url)
        if core.recover is None:  # the first handle of this process: finish crashed batches
            core.recover = self._recover
            self._recover_at_open()
