"""Downloading the built-in sets: official URLs, sha256 check, atomic write.

Nothing downloads implicitly: :func:`download` runs only when a user asks for it
(``open_dataset(..., download=True)``). When the files are missing the error
says which files to put where, so offline machines work too.
"""

from __future__ import annotations

import hashlib
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cnnlab.errors import CnnlabError
from cnnlab.files import atomic_path


@dataclass(frozen=True)
class RemoteFile:
    name: str
    url: str
    sha256: str


_MNIST = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_FASHION = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

REMOTE: dict[str, list[RemoteFile]] = {
    "mnist": [
        RemoteFile("train-images-idx3-ubyte.gz", _MNIST + "train-images-idx3-ubyte.gz",
                   "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        RemoteFile("train-labels-idx1-ubyte.gz", _MNIST + "train-labels-idx1-ubyte.gz",
                   "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        RemoteFile("t10k-images-idx3-ubyte.gz", _MNIST + "t10k-images-idx3-ubyte.gz",
                   "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        RemoteFile("t10k-labels-idx1-ubyte.gz", _MNIST + "t10k-labels-idx1-ubyte.gz",
                   "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    ],
    "fashion-mnist": [
        RemoteFile("train-images-idx3-ubyte.gz", _FASHION + "train-images-idx3-ubyte.gz",
                   "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
        RemoteFile("train-labels-idx1-ubyte.gz", _FASHION + "train-labels-idx1-ubyte.gz",
                   "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
        RemoteFile("t10k-images-idx3-ubyte.gz", _FASHION + "t10k-images-idx3-ubyte.gz",
                   "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
        RemoteFile("t10k-labels-idx1-ubyte.gz", _FASHION + "t10k-labels-idx1-ubyte.gz",
                   "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
    ],
    "cifar10": [
        RemoteFile("cifar-10-python.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                   "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"),
    ],
    "cifar100": [
        RemoteFile("cifar-100-python.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                   "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7"),
    ],
}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(name: str, folder: Path, *, timeout: float = 60.0) -> list[Path]:
    """Download the files of built-in set ``name`` into ``folder``; return their paths.

    Each file goes to a temporary file beside its target and is renamed only when
    its sha256 matches, so an interrupted or corrupted download leaves nothing.
    Files already present with the right hash are kept.
    """
    if name not in REMOTE:
        raise CnnlabError(f"no download for data set {name!r}", fix=f"choose one of {', '.join(REMOTE)}")
    paths = []
    for remote in REMOTE[name]:
        target = folder / remote.name
        paths.append(target)
        if target.is_file() and sha256_of(target) == remote.sha256:
            continue
        try:
            with atomic_path(target) as tmp:
                digest = hashlib.sha256()
                with urllib.request.urlopen(remote.url, timeout=timeout) as response, open(tmp, "wb") as out:
                    for block in iter(lambda: response.read(1 << 20), b""):
                        digest.update(block)
                        out.write(block)
                if digest.hexdigest() != remote.sha256:
                    raise CnnlabError(
                        f"sha256 mismatch for {remote.url}: got {digest.hexdigest()}, expected {remote.sha256}",
                        where=str(target), fix="retry the download or put a good copy of the file there by hand")
        except OSError as error:
            raise CnnlabError(
                f"could not download {remote.url} ({error})", where=str(target),
                fix=f"put the file {remote.name} in {folder} by hand (from {remote.url})") from None
    return paths


def missing_files_error(name: str, folder: Path, expected: list[str]) -> CnnlabError:
    """The error for a built-in set whose files are absent: where to put what."""
    urls = ", ".join(r.url for r in REMOTE.get(name, []))
    return CnnlabError(
        f"data set {name!r} not found: expected {', '.join(expected)} in {folder}",
        where=str(folder),
        fix=(f"put the files there (official: {urls}), or download them with "
             f"`cnnlab data download {name}`, or point --data / $CNNLAB_DATA at the folder that holds {folder.name}/"),
    )
