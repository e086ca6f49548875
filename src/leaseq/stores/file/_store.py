"""``FileStore``: the Store protocol over one directory (see the package docstring).

Its parts live in ``_puts``, ``_claims``, ``_leases`` and ``_reads`` (shared
helpers in ``_base``); this class only puts them together.
"""

from __future__ import annotations

from leaseq.stores.file._claims import Claims
from leaseq.stores.file._leases import Leases
from leaseq.stores.file._puts import Puts
from leaseq.stores.file._reads import Reads

__all__ = ["FileStore"]


class FileStore(Puts, Claims, Leases, Reads):
    """One handle on a ``file://`` directory. Handles of one directory in one process
    share a ``Core`` (caches, notifier); ``close`` closes only this handle."""
