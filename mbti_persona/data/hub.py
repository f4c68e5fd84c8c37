"""The Machine Mindset data from the Hugging Face hub (dataset ``FarReelAILab/Machine_Mindset``).

The hub copy has the GitHub layout (``datasets/behaviour/{en,zh}/*.json``, ``datasets/dpo/*.json``);
it is downloaded once into the hub cache with :func:`huggingface_hub.snapshot_download` and then read
like any local folder (the loaders search folders recursively). Offline (``HF_HUB_OFFLINE=1`` or no
network) the cached copy is used if there is one; otherwise a :class:`DataError` says what to do.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable

from .behaviour import DataError

__all__ = ["HUB_DATASET", "is_hub_id", "download_hub_dataset", "resolve_data_dirs"]

#: The authors' release on the hub.
HUB_DATASET = "FarReelAILab/Machine_Mindset"
_HUB_RE = re.compile(r"^(hf://|hub:)?(datasets/)?[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _offline() -> bool:
    return any(os.environ.get(v, "0").lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def is_hub_id(value: str) -> bool:
    """'FarReelAILab/Machine_Mindset', 'hub:org/name' or 'hf://datasets/org/name' that is not an
    existing local path."""
    v = str(value)
    return bool(_HUB_RE.match(v)) and not Path(v).expanduser().exists()


def _strip(value: str) -> str:
    v = str(value)
    for prefix in ("hf://", "hub:"):
        if v.startswith(prefix):
            v = v[len(prefix):]
    if v.startswith("datasets/"):
        v = v[len("datasets/"):]
    return v


def download_hub_dataset(repo_id: str = HUB_DATASET, *, revision: str | None = None,
                         cache_dir: str | os.PathLike | None = None) -> Path:
    """Download (or find in the cache) the JSON files of a hub dataset; return its local folder."""
    repo_id = _strip(repo_id)
    try:
        from huggingface_hub import snapshot_download
    except ImportError as e:  # pragma: no cover - a dependency of transformers
        raise DataError("loading data from the hub needs huggingface_hub: pip install "
                        "huggingface_hub") from e
    kwargs = dict(repo_id=repo_id, repo_type="dataset", revision=revision,
                  allow_patterns=["*.json", "*.md"], cache_dir=cache_dir)
    try:
        path = snapshot_download(local_files_only=_offline(), **kwargs)
    except Exception as e:  # offline, unknown repo, network error: all end here
        if _offline():
            hint = ("the hub is offline (HF_HUB_OFFLINE=1) and the dataset is not in the local "
                    "cache: download it once online, e.g. `huggingface-cli download --repo-type "
                    f"dataset {repo_id}`, or pass a local folder of its JSON files with --data DIR")
        else:
            hint = ("check the dataset id and your network, or download the JSON files yourself "
                    "and pass their folder with --data DIR")
        raise DataError(f"could not get hub dataset {repo_id!r} ({type(e).__name__}: "
                        f"{str(e).rstrip('.')}): {hint}") from e
    return Path(path)


def resolve_data_dirs(sources: Iterable[str | os.PathLike], *, revision: str | None = None
                      ) -> list[Path]:
    """Local folders for a mix of folders and hub dataset ids (downloaded on demand)."""
    out: list[Path] = []
    for s in sources:
        s = str(s)
        p = Path(s).expanduser()
        if p.exists():
            out.append(p)
        elif is_hub_id(s):
            out.append(download_hub_dataset(s, revision=revision))
        else:
            raise DataError(f"data source {s!r} is neither an existing folder nor a hub dataset "
                            f"id such as {HUB_DATASET!r}")
    if not out:
        raise DataError("no data source given: pass --data DIR (several may be given) or "
                        f"--data {HUB_DATASET}")
    return out
